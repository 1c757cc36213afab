//! Urlencoded forms with repeated fields (checkbox groups), and the CSRF check every signed-in
//! form post goes through before it reaches the service.

use axum::body::Bytes;
use mamori_service::{Principal, Service, ServiceError};

pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &Bytes) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn check_csrf(&self, svc: &Service, p: &Principal) -> Result<(), ServiceError> {
        svc.check_csrf(p, Some(&self.get("csrf")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_and_escapes() {
        let f = Fields::parse(&Bytes::from_static(
            b"grant=read%3A*&grant=write%3Amedical_record&name=%E5%8C%BB%E5%B8%AB+A",
        ));
        assert_eq!(f.all("grant"), ["read:*", "write:medical_record"]);
        assert_eq!(f.get("name"), "医師 A");
        assert_eq!(f.get("missing"), "");
    }
}

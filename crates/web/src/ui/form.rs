//! Urlencoded forms with repeated fields (checkbox groups), and the CSRF check every signed-in
//! form post goes through before it reaches the service.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mamori_service::{Principal, Service, ServiceError};

use crate::extract::client_of;
use crate::ui::{error_page, signed_in};

/// The signed-in person of a page; without a live session the browser goes to the login page.
pub struct SignedIn(pub Principal);

impl FromRequestParts<Arc<Service>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        signed_in(svc, &parts.headers, client_of(parts))
            .await
            .map(SignedIn)
    }
}

/// A urlencoded form posted by the signed-in person, its CSRF token already checked.
pub struct SignedForm {
    pub p: Principal,
    pub fields: Fields,
}

impl FromRequest<Arc<Service>> for SignedForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &Arc<Service>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let SignedIn(p) = SignedIn::from_request_parts(&mut parts, svc).await?;
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, svc)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(&bytes);
        if let Err(e) = fields.check_csrf(svc, &p) {
            return Err(error_page(svc, &headers, Some(&p), &e));
        }
        Ok(Self { p, fields })
    }
}

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

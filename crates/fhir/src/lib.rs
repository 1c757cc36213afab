//! HL7 FHIR R4 (4.0.1) with the JP Core profiles, for the systems around mamori: the resources
//! it speaks, mapped to and from its own model, and the OperationOutcome every refusal becomes.
//! No I/O: the web adapter serves them, the service decides who may do what and writes the
//! ledger.

pub mod audit;
pub mod bundle;
pub mod capability;
pub mod clins;
pub mod document;
pub mod outcome;
pub mod patient;
pub mod provenance;
pub mod smart;
pub mod transaction;

/// The FHIR release spoken.
pub const FHIR_VERSION: &str = "4.0.1";
/// The media type of every response (and the one requests should use).
pub const MEDIA_TYPE: &str = "application/fhir+json";

/// What the mapping needs to know about this instance.
#[derive(Clone, Debug)]
pub struct Context {
    /// The system of the facility's patient IDs: JP Core's
    /// `urn:oid:1.2.392.100495.20.3.51.1` + the 10-digit 保険医療機関コード when it is configured.
    pub patient_id_system: String,
}

impl Context {
    /// The context of a facility with `institution_code` (10 digits), or without one.
    pub fn new(institution_code: &str) -> Self {
        let code = institution_code.trim();
        Self {
            patient_id_system: if code.len() == 10 && code.bytes().all(|b| b.is_ascii_digit()) {
                format!("{JP_PATIENT_ID_OID}{code}")
            } else {
                MAMORI_PATIENT_ID.to_owned()
            },
        }
    }
}

/// JP Core's OID arc of a medical institution's patient IDs (followed by its 10-digit code).
pub const JP_PATIENT_ID_OID: &str = "urn:oid:1.2.392.100495.20.3.51.1";
/// The patient-ID system of a facility that has not configured its 保険医療機関コード.
pub const MAMORI_PATIENT_ID: &str = "urn:mamori:patient-id";

/// Milliseconds since the epoch as a FHIR `instant` (UTC, millisecond precision).
pub fn instant(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = mamori_domain::bookkeeping::calendar::civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_utc_with_milliseconds() {
        assert_eq!(instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(instant(1_796_000_000_123), "2026-11-30T00:53:20.123Z");
        assert_eq!(instant(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn the_patient_id_system_names_the_institution_when_it_is_known() {
        assert_eq!(
            Context::new("1311234567").patient_id_system,
            "urn:oid:1.2.392.100495.20.3.51.11311234567"
        );
        assert_eq!(Context::new("").patient_id_system, MAMORI_PATIENT_ID);
        assert_eq!(Context::new("12345").patient_id_system, MAMORI_PATIENT_ID);
    }
}

//! Every parser that takes input from outside mamori, as fuzz targets: one list, used by
//! cargo-fuzz (`fuzz/`, nightly, coverage-guided) and by the bounded property tests that run
//! on stable in CI (`tests/bounded.rs`, random and mutated seeds). A target takes any bytes;
//! it fails by panicking, which is what both runners look for.

pub mod parsers;
pub mod pki;
pub mod restore;
pub mod seeds;
pub mod web;

/// One fuzz target: its name (the cargo-fuzz target and corpus directory), the function, and
/// well-formed inputs to start from.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<Vec<u8>>,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "upload_type",
        run: parsers::upload_type,
        seeds: seeds::upload,
    },
    Target {
        name: "asset_csv",
        run: parsers::asset_csv,
        seeds: seeds::asset_csv,
    },
    Target {
        name: "jp_pint_invoice",
        run: parsers::jp_pint_invoice,
        seeds: seeds::jp_pint,
    },
    Target {
        name: "signer_crl",
        run: parsers::signer_crl,
        seeds: seeds::signer_crl,
    },
    Target {
        name: "fhir_resource",
        run: parsers::fhir_resource,
        seeds: seeds::fhir_resource,
    },
    Target {
        name: "client_assertion",
        run: parsers::client_assertion,
        seeds: seeds::client_assertion,
    },
    Target {
        name: "pades_pdf",
        run: parsers::pades_pdf,
        seeds: parsers::pades_seeds,
    },
    Target {
        name: "hc_role",
        run: parsers::hc_role,
        seeds: seeds::hc_role,
    },
    Target {
        name: "catalogue_toml",
        run: parsers::catalogue_toml,
        seeds: seeds::catalogue,
    },
    Target {
        name: "multipart_form",
        run: web::multipart_form,
        seeds: web::multipart_seeds,
    },
    Target {
        name: "api_json",
        run: web::api_json,
        seeds: web::api_seeds,
    },
    Target {
        name: "tsp_response",
        run: parsers::tsp_response,
        seeds: seeds::tsp_response,
    },
    Target {
        name: "ocsp_request",
        run: parsers::ocsp_request,
        seeds: seeds::ocsp_request,
    },
    Target {
        name: "certificate",
        run: parsers::certificate,
        seeds: seeds::certificate,
    },
    Target {
        name: "pkcs12",
        run: parsers::pkcs12,
        seeds: seeds::pkcs12,
    },
    Target {
        name: "webauthn",
        run: parsers::webauthn,
        seeds: seeds::webauthn,
    },
    Target {
        name: "cades_signature",
        run: parsers::cades_signature,
        seeds: seeds::cades,
    },
    Target {
        name: "evidence_record",
        run: parsers::evidence_record,
        seeds: seeds::evidence_record,
    },
    Target {
        name: "backup_manifest",
        run: parsers::backup_manifest,
        seeds: seeds::backup_manifest,
    },
    Target {
        name: "backup_restore",
        run: restore::damaged_restore,
        seeds: restore::seeds,
    },
    Target {
        name: "forwarded_for",
        run: parsers::forwarded_for,
        seeds: seeds::forwarded_for,
    },
    Target {
        name: "sntp_reply",
        run: parsers::sntp_reply,
        seeds: seeds::sntp,
    },
];

pub fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

//! The seeds are worth mutating only if they pass the parsers: each well-formed seed is
//! accepted all the way, so a mutation starts from a real input and not from a refusal.

use mamori_evidence::{cades, ers, tsp};
use mamori_fuzzing::parsers::*;
use mamori_fuzzing::{pki::pki, seeds, web};

#[test]
fn a_seeded_time_stamp_response_verifies() {
    let resp = &seeds::tsp_response()[0];
    let token = tsp::token_from_response(resp, &TSP_DIGEST, &TSP_NONCE).unwrap();
    tsp::verify_token(&token, &TSP_DIGEST, std::slice::from_ref(&pki().ca)).unwrap();
}

#[test]
fn a_seeded_signature_and_evidence_record_verify() {
    let p = pki();
    let ca = std::slice::from_ref(&p.ca);
    cades::verify_detached(&seeds::cades()[0], SIGNED_CONTENT, ca, ca).unwrap();
    ers::verify(&seeds::evidence_record()[0], &er_objects(), ca).unwrap();
}

#[test]
fn seeded_passkey_ceremonies_verify() {
    let s = seeds::webauthn();
    let rp = mamori_passkey::RelyingParty {
        id: RP_ID.into(),
        origins: vec![ORIGIN.into()],
    };
    let r = split(&s[0][1..], 2);
    mamori_passkey::verify_registration(&rp, &CHALLENGE, r[0], r[1]).unwrap();
    let a = split(&s[1][1..], 4);
    assert_eq!(
        mamori_passkey::verify_assertion(&rp, &CHALLENGE, a[0], 0, a[1], a[2], a[3]).unwrap(),
        1
    );
}

#[test]
fn seeded_pkcs12_manifest_csv_and_sntp_parse() {
    let p12 = &seeds::pkcs12()[0];
    let store = p12_keystore::KeyStore::from_pkcs12(p12, P12_PASSWORD).unwrap();
    assert!(store.private_key_chain().is_some());
    let m = mamori_backup::SignedManifest::from_object(&seeds::backup_manifest()[0]).unwrap();
    m.verified(None).unwrap();
    assert_eq!(
        mamori_compliance::assets::parse_csv(&seeds::asset_csv()[0])
            .unwrap()
            .len(),
        2
    );
    let sent = mamori_domain::timesync::request(mamori_fuzzing::pki::NOW);
    mamori_domain::timesync::parse_reply(&seeds::sntp()[0], &sent).unwrap();
}

#[test]
fn the_seeded_ocsp_request_gets_a_successful_answer() {
    use der::Decode;
    let p = pki();
    let key = mamori_evidence::cms::EcdsaP256::from_pkcs8(&p.ca_pkcs8).unwrap();
    let out = mamori_evidence::ocsp::respond(&seeds::ocsp_request()[0], &p.ca, &key, 0, |_| {
        mamori_evidence::ocsp::Status::Good
    });
    let r = x509_ocsp::OcspResponse::from_der(&out).unwrap();
    assert_eq!(r.response_status, x509_ocsp::OcspResponseStatus::Successful);
}

#[test]
fn a_seeded_form_is_read_and_api_bodies_reach_the_handlers() {
    let (fields, files) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(mamori_web::hostile::read_form(
            &format!("multipart/form-data; boundary={}", web::BOUNDARY),
            web::multipart_seeds()[0].clone(),
        ))
        .unwrap();
    assert_eq!(fields, vec![("title".to_owned(), "診療録".to_owned())]);
    assert_eq!(files[0].0, "a.pdf");
    // Every chosen operation answers the fuzzer's token: none says "sign in first".
    for (i, r) in web::json_routes().iter().enumerate() {
        let (status, body) = web::send_for_test(i, b"{}");
        assert!(
            status != 401 && !body.contains("この URL の API はありません"),
            "{} → {status} {body}",
            r.op
        );
    }
}

#[test]
fn an_undamaged_repository_restores() {
    // Mode 1 with nothing to XOR leaves the object as it was.
    mamori_fuzzing::restore::damaged_restore(&[0, 1]);
    assert!(mamori_fuzzing::restore::last_restore_succeeded());
}

#[test]
fn seeded_e_invoices_are_read() {
    use mamori_domain::bookkeeping::{Direction, ubl};
    let s = seeds::jp_pint();
    for seed in &s[..3] {
        let p = ubl::parse(seed, Direction::Received).unwrap();
        assert!(p.fields.amount.is_some());
    }
    assert_eq!(
        ubl::parse(&s[2], Direction::Received)
            .unwrap()
            .fields
            .invoice_kind,
        Some(mamori_domain::bookkeeping::InvoiceKind::Return)
    );
}

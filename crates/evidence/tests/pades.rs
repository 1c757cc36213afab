//! PAdES signatures on mamori's own PDFs, checked here and by pyHanko, poppler's pdfsig,
//! qpdf and OpenSSL as independent verifiers; a changed byte in the signed range fails each.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::*;
use mamori_evidence::cades::{self, EcdsaP256};
use mamori_evidence::pades;
use mamori_evidence::tsp::{self, DevTsa};
use mamori_evidence::{UnixMs, sha256};
use mamori_pdf::{Field, FontFile, Letter, SigningRequest};

const ROOM: usize = 16 * 1024;

fn letter_pdf() -> Vec<u8> {
    let font = FontFile {
        data: std::fs::read("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
            .expect("the tests need Noto Sans CJK: apt-get install fonts-noto-cjk"),
        index: 0,
    };
    mamori_pdf::render(
        &Letter {
            title: "紹介状 — 診療情報提供書".into(),
            heading: vec!["守りクリニック".into(), "患者: 山田 太郎（P01001）".into()],
            body: "下記の患者様をご紹介いたします。".into(),
            footer: "記録 1 版 1".into(),
            created_unix: NOW / 1000,
            author: "田中 花子".into(),
            language: "ja".into(),
        },
        &font,
    )
    .unwrap()
}

fn stamp(tsa: &DevTsa, digest: &[u8; 32], at: UnixMs) -> Vec<u8> {
    let nonce = [9u8; 8];
    let resp = tsa.respond(&tsp::request(digest, &nonce).unwrap(), at, &[4, 5, 6]);
    tsp::token_from_response(&resp, digest, &nonce).unwrap()
}

/// A PAdES-B-T (or B-B without `tsa`) signature on the letter.
fn signed(pki: &Pki, signer: &Holder, tsa: Option<&DevTsa>) -> Vec<u8> {
    signed_at(pki, signer, tsa, NOW)
}

fn signed_at(pki: &Pki, signer: &Holder, tsa: Option<&DevTsa>, at: UnixMs) -> Vec<u8> {
    let p = mamori_pdf::prepare_signature(
        &letter_pdf(),
        &SigningRequest {
            field: Field::Signature,
            signing_unix: Some(at / 1000),
            name: Some("田中 花子".into()),
            reason: Some("作成者として".into()),
            location: None,
            room: ROOM,
        },
    )
    .unwrap();
    let key = EcdsaP256::from_pkcs8(&signer.pkcs8).unwrap();
    let mut cms = pades::sign(
        &p.signed_bytes(),
        &signer.cert,
        std::slice::from_ref(&pki.ca),
        &key,
    )
    .unwrap();
    if let Some(tsa) = tsa {
        let token = stamp(tsa, &sha256(&cades::signature_value(&cms).unwrap()), at);
        cms = cades::with_signature_timestamp(&cms, &token).unwrap();
    }
    mamori_pdf::with_contents(p, &cms).unwrap()
}

fn with_doc_timestamp(pdf: &[u8], tsa: &DevTsa, at: UnixMs) -> Vec<u8> {
    let p = mamori_pdf::prepare_signature(pdf, &SigningRequest::doc_timestamp(ROOM)).unwrap();
    let token = stamp(tsa, &sha256(&p.signed_bytes()), at);
    mamori_pdf::with_contents(p, &token).unwrap()
}

/// pyHanko's `sign validate` or its AdES validation (`adesverify`, ETSI EN 319 102-1) with
/// `ca` as the only trust anchor.
fn pyhanko_with(command: &str, extra: &[&str], pdf: &Path, ca: &Path) -> (bool, String) {
    let mut args = vec![OsStr::new("sign"), OsStr::new(command)];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("--trust"),
        ca.as_os_str(),
        OsStr::new("--trust-replace"),
        OsStr::new("--pretty-print"),
        pdf.as_os_str(),
    ]);
    run("pyhanko", &args)
}

fn pyhanko(pdf: &Path, ca: &Path) -> (bool, String) {
    pyhanko_with("validate", &["--no-revocation-check"], pdf, ca)
}

fn pyhanko_ades(pdf: &Path, ca: &Path) -> (bool, String) {
    pyhanko_with("adesverify", &["--no-revocation-check"], pdf, ca)
}

fn openssl_cms(dir: &Path, pdf: &[u8], ca: &Path) -> (bool, String) {
    let sig = &mamori_pdf::signatures(pdf).unwrap()[0];
    let content = write(
        dir,
        "range.bin",
        &sig.signed_bytes(pdf).collect::<Vec<_>>().concat(),
    );
    let cms = write(dir, "sig.p7s", &sig.contents);
    run(
        "openssl",
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ]
        .map(OsStr::new)
        .into_iter()
        .chain([OsStr::new("-in"), cms.as_os_str()])
        .chain([OsStr::new("-content"), content.as_os_str()])
        .chain([OsStr::new("-CAfile"), ca.as_os_str()])
        .collect::<Vec<_>>(),
    )
}

/// A clinic CA with one signer and a development TSA valid five years from `NOW`.
fn clinic() -> (Pki, Holder, DevTsa) {
    let pki = Pki::new("Test Clinic CA");
    let signer = pki.signer("田中 花子");
    let h = pki.tsa(
        "mamori 開発用TSA（法的効力なし）",
        NOW - DAY,
        NOW + 5 * 365 * DAY,
    );
    let tsa = DevTsa::new(&h.pkcs8, h.cert, vec![pki.ca.clone()]).unwrap();
    (pki, signer, tsa)
}

#[test]
fn a_b_t_signed_letter_verifies_here_and_in_pyhanko_pdfsig_qpdf_and_openssl() {
    let (pki, signer, tsa) = clinic();
    let pdf = signed(&pki, &signer, Some(&tsa));
    let anchors = std::slice::from_ref(&pki.ca);

    let reports = pades::verify(&pdf, anchors, anchors).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].level, "PAdES-B-T");
    let info = reports[0].signature.as_ref().unwrap();
    assert!(info.signer_subject.contains("田中"));
    assert_eq!(info.timestamp.as_ref().unwrap().gen_time, NOW);
    assert_eq!(info.claimed_signing_time, Some(NOW));

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "letter.pdf", &pdf);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let (ok, out) = pyhanko(&path, &ca);
    assert!(ok, "pyhanko: {out}");
    for line in [
        "The signer's certificate is trusted.",
        "The signature is cryptographically sound.",
        "The timestamp token is cryptographically sound.",
        "The signature is judged VALID.",
    ] {
        assert!(out.contains(line), "pyhanko did not say {line:?}: {out}");
    }
    let (ok, out) = pyhanko_ades(&path, &ca);
    assert!(
        ok && out.contains("judged VALID") && out.contains("Signature timestamp token"),
        "pyhanko adesverify: {out}"
    );
    let (ok, out) = run("pdfsig", &[path.as_os_str()]);
    assert!(ok && out.contains("Signature is Valid"), "pdfsig: {out}");
    assert!(out.contains("ETSI.CAdES.detached"), "pdfsig: {out}");
    let (ok, out) = run("qpdf", &[OsStr::new("--check"), path.as_os_str()]);
    assert!(ok, "qpdf: {out}");
    let (ok, out) = openssl_cms(dir.path(), &pdf, &ca);
    assert!(ok, "openssl cms -verify: {out}");

    // One changed byte inside the signed range (the document's producer) fails everyone.
    let mut bad = pdf.clone();
    let at = bad
        .windows(8)
        .position(|w| w == b"(mamori)")
        .expect("the producer in the first revision");
    bad[at + 6] = b'j';
    let e = pades::verify(&bad, anchors, anchors).unwrap_err();
    assert_eq!(e.code, "content_mismatch");
    let bad_path = write(dir.path(), "bad.pdf", &bad);
    let (ok, out) = pyhanko(&bad_path, &ca);
    assert!(!ok || !out.contains("judged VALID"), "pyhanko: {out}");
    let (_, out) = run("pdfsig", &[bad_path.as_os_str()]);
    assert!(!out.contains("Signature is Valid"), "pdfsig: {out}");
    let (ok, out) = openssl_cms(dir.path(), &bad, &ca);
    assert!(!ok, "openssl cms -verify accepted a changed range: {out}");
}

#[test]
fn b_b_without_a_time_stamp_and_a_later_document_time_stamp() {
    let (pki, signer, tsa) = clinic();
    let anchors = std::slice::from_ref(&pki.ca);
    let pdf = signed(&pki, &signer, None);
    let r = pades::verify(&pdf, anchors, anchors).unwrap();
    assert_eq!(r[0].level, "PAdES-B-B");
    assert_eq!(r[0].signature.as_ref().unwrap().validated_at, NOW);

    let later = with_doc_timestamp(&pdf, &tsa, NOW + DAY);
    let r = pades::verify(&later, anchors, anchors).unwrap();
    assert_eq!(r.len(), 2);
    assert!(!r[0].covers_whole_file);
    assert_eq!(r[1].level, "DocTimeStamp");
    assert_eq!(r[1].doc_timestamp.as_ref().unwrap().gen_time, NOW + DAY);

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "lta.pdf", &later);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let (ok, out) = pyhanko(&path, &ca);
    assert!(ok && out.contains("judged VALID"), "pyhanko: {out}");
    let (ok, out) = run("qpdf", &[OsStr::new("--check"), path.as_os_str()]);
    assert!(ok, "qpdf: {out}");

    // Bytes appended after the last signature are not covered by anything: refused.
    let mut tail = later.clone();
    tail.extend_from_slice(b"\n% appended\n");
    let e = pades::verify(&tail, anchors, anchors).unwrap_err();
    assert_eq!(e.code, "content_mismatch");
    // A signature by someone the facility does not trust is refused.
    let other = Pki::new("Other CA");
    let e = pades::verify(&pdf, std::slice::from_ref(&other.ca), anchors).unwrap_err();
    assert_ne!(e.code, "content_mismatch");
}

/// pyHanko's AdES validation at the machine's present: its past validation slides back from
/// now, so the test's years happen before today. Revocation is checked (the DSS and the CRL
/// served here).
fn pyhanko_now(pdf: &Path, ca: &Path) -> (bool, String) {
    pyhanko_with("adesverify", &[], pdf, ca)
}

#[test]
fn b_lta_renewed_before_the_tsa_expires_still_validates_years_later() {
    let year = 365 * DAY;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as UnixMs;
    // Signed three years ago; the first TSA's certificate ran out two years ago, the signer's a
    // year ago. Today the verifier fetches the CA's current CRL (served here on 127.0.0.1) for
    // the newest time-stamp; everything older is proven by what the file itself carries.
    let t0 = today - 3 * year;
    let mut pki = Pki::valid_from("Test Clinic CA", t0 - year);
    pki.crl_url = Some(serve_forever(pki.crl(today - 3_600_000)));
    let signer = pki.signer_valid("田中 花子", t0 - DAY, t0 + 2 * year);
    let h1 = pki.tsa("TSA 1", t0 - DAY, t0 + year);
    let tsa1 = DevTsa::new(&h1.pkcs8, h1.cert.clone(), vec![pki.ca.clone()]).unwrap();
    let h2 = pki.tsa("TSA 2", t0 + 300 * DAY, t0 + 10 * year);
    let tsa2 = DevTsa::new(&h2.pkcs8, h2.cert.clone(), vec![pki.ca.clone()]).unwrap();
    let anchors = std::slice::from_ref(&pki.ca);

    // B-T, then B-LT (certificates and the CA's CRL in the DSS), then B-LTA.
    let bt = signed_at(&pki, &signer, Some(&tsa1), t0);
    let lt = mamori_pdf::append_dss(
        &bt,
        &mamori_pdf::Dss {
            certs: vec![
                signer.cert.der.clone(),
                pki.ca.der.clone(),
                h1.cert.der.clone(),
            ],
            crls: vec![pki.crl(t0 + 60_000)],
            ocsps: vec![],
        },
    )
    .unwrap();
    let lta = with_doc_timestamp(&lt, &tsa1, t0 + 120_000);
    // Renewed at day 300, before TSA 1's certificate expired: validation data for the first
    // document time-stamp, then a new one by a TSA whose certificate lasts longer.
    let lt2 = mamori_pdf::append_dss(
        &lta,
        &mamori_pdf::Dss {
            certs: vec![h2.cert.der.clone()],
            crls: vec![pki.crl(t0 + 300 * DAY)],
            ocsps: vec![],
        },
    )
    .unwrap();
    let renewed = with_doc_timestamp(&lt2, &tsa2, t0 + 300 * DAY + 60_000);

    let r = pades::verify(&renewed, anchors, anchors).unwrap();
    let levels: Vec<&str> = r.iter().map(|x| x.level.as_str()).collect();
    assert_eq!(levels, ["PAdES-B-T", "DocTimeStamp", "DocTimeStamp"]);

    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let once = write(dir.path(), "lta.pdf", &lta);
    let twice = write(dir.path(), "renewed.pdf", &renewed);
    let (ok, out) = pyhanko_now(&twice, &ca);
    assert!(
        ok && out.contains("judged VALID") && out.contains("signature maintenance"),
        "the renewed file validates today, after both certificates expired: {out}"
    );
    // Without the renewal, the first TSA's expiry leaves nothing to stand on.
    let (ok, out) = pyhanko_now(&once, &ca);
    assert!(!ok && out.contains("judged INVALID"), "not renewed: {out}");
    let (ok, out) = run("qpdf", &[OsStr::new("--check"), twice.as_os_str()]);
    assert!(ok, "qpdf: {out}");
    // A changed byte in the first revision fails the renewed file here and in pyHanko.
    let mut bad = renewed.clone();
    let at = bad.windows(8).position(|w| w == b"(mamori)").unwrap();
    bad[at + 6] = b'j';
    assert!(pades::verify(&bad, anchors, anchors).is_err());
    let bad_path = write(dir.path(), "bad.pdf", &bad);
    let (ok, out) = pyhanko_now(&bad_path, &ca);
    assert!(!ok && !out.contains("judged VALID"), "{out}");
}

//! CAdES-B-B/B-T signatures and RFC 3161 tokens, checked by this crate and by OpenSSL and
//! pyHanko as independent verifiers.

mod common;

use std::ffi::OsStr;

use common::*;
use mamori_evidence::cades::{self, EcdsaP256, RawSigner};
use mamori_evidence::tsp::{self, DevTsa};
use mamori_evidence::{cert::Cert, sha256};

const DOC: &[u8] = "{\"title\":\"退院時要約\",\"body\":\"経過良好\"}".as_bytes();

fn b_t(pki: &Pki, signer: &Holder, tsa: &DevTsa, at: i64) -> Vec<u8> {
    let key = EcdsaP256::from_pkcs8(&signer.pkcs8).unwrap();
    let p7s =
        cades::sign_detached(DOC, &signer.cert, std::slice::from_ref(&pki.ca), &key, at).unwrap();
    let digest = sha256(&cades::signature_value(&p7s).unwrap());
    let nonce = [7u8; 8];
    let resp = tsa.respond(&tsp::request(&digest, &nonce).unwrap(), at, &[1, 2, 3]);
    let token = tsp::token_from_response(&resp, &digest, &nonce).unwrap();
    cades::with_signature_timestamp(&p7s, &token).unwrap()
}

fn dev_tsa(pki: &Pki, from: i64, to: i64) -> DevTsa {
    let h = pki.tsa("mamori 開発用TSA（法的効力なし）", from, to);
    DevTsa::new(&h.pkcs8, h.cert, vec![pki.ca.clone()]).unwrap()
}

#[test]
fn b_t_signature_verifies_here_and_in_openssl_and_pyhanko() {
    let pki = Pki::new("Test Clinic CA");
    let signer = pki.signer("山田 太郎");
    let tsa = dev_tsa(&pki, NOW - DAY, NOW + 5 * 365 * DAY);
    let p7s = b_t(&pki, &signer, &tsa, NOW);

    let info = cades::verify_detached(
        &p7s,
        DOC,
        std::slice::from_ref(&pki.ca),
        std::slice::from_ref(&pki.ca),
    )
    .unwrap();
    assert_eq!(info.level, "CAdES-B-T");
    assert!(info.signer_subject.contains("山田"));
    let ts = info.timestamp.unwrap();
    assert!(ts.development);
    assert_eq!(ts.gen_time, NOW);

    let dir = tempfile::tempdir().unwrap();
    let doc = write(dir.path(), "doc.json", DOC);
    let sig = write(dir.path(), "doc.json.p7s", &p7s);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let (ok, out) = run(
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
        .chain([OsStr::new("-in"), sig.as_os_str()])
        .chain([OsStr::new("-content"), doc.as_os_str()])
        .chain([OsStr::new("-CAfile"), ca.as_os_str()])
        .collect::<Vec<_>>(),
    );
    assert!(ok, "openssl cms -verify: {out}");

    // The signature time-stamp on its own: openssl ts over the signature value.
    let sv = write(
        dir.path(),
        "sigvalue.bin",
        &cades::signature_value(&p7s).unwrap(),
    );
    let tok = write(
        dir.path(),
        "sig.tst",
        &cades::signature_timestamp(&p7s).unwrap().unwrap(),
    );
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("ts"),
            OsStr::new("-verify"),
            OsStr::new("-token_in"),
        ]
        .into_iter()
        .chain([OsStr::new("-in"), tok.as_os_str()])
        .chain([OsStr::new("-data"), sv.as_os_str()])
        .chain([OsStr::new("-CAfile"), ca.as_os_str()])
        .collect::<Vec<_>>(),
    );
    assert!(
        ok && out.contains("Verification: OK"),
        "openssl ts -verify: {out}"
    );

    let (ok, out) = run(
        "pyhanko",
        &[
            OsStr::new("sign"),
            OsStr::new("validate"),
            OsStr::new("--no-revocation-check"),
            OsStr::new("--trust"),
            ca.as_os_str(),
            OsStr::new("--trust-replace"),
            OsStr::new("--pretty-print"),
            OsStr::new("--detached"),
            sig.as_os_str(),
            doc.as_os_str(),
        ],
    );
    assert!(ok, "pyhanko: {out}");
    for line in [
        "The signer's certificate is trusted.",
        "The timestamp token is cryptographically sound.",
        "The TSA certificate is trusted.",
        "The signature is judged VALID.",
    ] {
        assert!(out.contains(line), "pyhanko did not say {line:?}: {out}");
    }
}

#[test]
fn tampered_content_is_refused_here_and_by_openssl() {
    let pki = Pki::new("Test Clinic CA");
    let signer = pki.signer("山田 太郎");
    let tsa = dev_tsa(&pki, NOW - DAY, NOW + DAY);
    let p7s = b_t(&pki, &signer, &tsa, NOW);
    let tampered = "{\"title\":\"退院時要約\",\"body\":\"経過不良\"}".as_bytes();
    let e = cades::verify_detached(
        &p7s,
        tampered,
        std::slice::from_ref(&pki.ca),
        std::slice::from_ref(&pki.ca),
    )
    .unwrap_err();
    assert_eq!(e.code, "content_mismatch");

    let dir = tempfile::tempdir().unwrap();
    let doc = write(dir.path(), "doc.json", tampered);
    let sig = write(dir.path(), "doc.json.p7s", &p7s);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let (ok, _) = run(
        "openssl",
        &[
            OsStr::new("cms"),
            OsStr::new("-verify"),
            OsStr::new("-binary"),
            OsStr::new("-inform"),
            OsStr::new("DER"),
            OsStr::new("-purpose"),
            OsStr::new("any"),
            OsStr::new("-in"),
            sig.as_os_str(),
            OsStr::new("-content"),
            doc.as_os_str(),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
        ],
    );
    assert!(!ok, "openssl must refuse tampered content");
}

#[test]
fn a_signature_from_another_ca_or_with_a_swapped_certificate_is_refused() {
    let pki = Pki::new("Test Clinic CA");
    let other = Pki::new("Other CA");
    let tsa = dev_tsa(&pki, NOW - DAY, NOW + DAY);
    let p7s = b_t(&other, &other.signer("侵入者"), &tsa, NOW);
    let e = cades::verify_detached(
        &p7s,
        DOC,
        std::slice::from_ref(&pki.ca),
        std::slice::from_ref(&pki.ca),
    )
    .unwrap_err();
    assert_eq!(e.code, "untrusted");

    // Same name and serial, different certificate: the ESS binding catches the swap.
    // Certificates vary in length (ECDSA signature, serial); issue until two are the same
    // length, so that the impostor's DER fits in place of the signer's.
    let mut pool = Vec::new();
    let (signer, impostor) = loop {
        let c = pki.signer("山田 太郎");
        if let Some(i) = pool
            .iter()
            .position(|p: &Holder| p.cert.der.len() == c.cert.der.len())
        {
            break (pool.swap_remove(i), c);
        }
        pool.push(c);
        assert!(pool.len() < 1000, "no two certificates of the same length");
    };
    let key = EcdsaP256::from_pkcs8(&signer.pkcs8).unwrap();
    let prepared = cades::prepare(DOC, &signer.cert, NOW).unwrap();
    let sig = key.sign(&prepared.to_be_signed).unwrap();
    let e = cades::assemble(prepared, key.algorithm(), &sig[..sig.len() - 1], &[]).unwrap_err();
    assert_eq!(
        e.code, "bad_signature",
        "assemble checks an external signature"
    );
    let good = cades::sign_detached(DOC, &signer.cert, &[], &key, NOW).unwrap();
    let swapped = swap_certificate(&good, &signer.cert, &impostor.cert);
    let e = cades::verify_detached(&swapped, DOC, std::slice::from_ref(&pki.ca), &[]).unwrap_err();
    assert!(
        ["wrong_certificate", "signer_missing"].contains(&e.code),
        "{e:?}"
    );
}

fn swap_certificate(p7s: &[u8], from: &Cert, to: &Cert) -> Vec<u8> {
    let pos = p7s
        .windows(from.der.len())
        .position(|w| w == from.der.as_slice())
        .unwrap();
    assert_eq!(from.der.len(), to.der.len(), "same-size certificates");
    let mut out = p7s.to_vec();
    out[pos..pos + to.der.len()].copy_from_slice(&to.der);
    out
}

#[test]
fn three_step_signing_with_an_external_key() {
    // The key never enters mamori: openssl signs the signed attributes as a card would.
    let pki = Pki::new("Test Clinic CA");
    let signer = pki.signer("外部署名 医師");
    let dir = tempfile::tempdir().unwrap();
    let key_pem = {
        let k = rcgen::KeyPair::try_from(signer.pkcs8.as_slice()).unwrap();
        write(dir.path(), "key.pem", k.serialize_pem().as_bytes())
    };
    let prepared = cades::prepare(DOC, &signer.cert, NOW).unwrap();
    let tbs = write(dir.path(), "tbs.der", &prepared.to_be_signed);
    let sig_path = dir.path().join("sig.der");
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("dgst"),
            OsStr::new("-sha256"),
            OsStr::new("-sign"),
            key_pem.as_os_str(),
            OsStr::new("-out"),
            sig_path.as_os_str(),
            tbs.as_os_str(),
        ],
    );
    assert!(ok, "{out}");
    let sig = std::fs::read(&sig_path).unwrap();
    let p7s = cades::assemble(
        prepared,
        mamori_evidence::asn1::ECDSA_WITH_SHA256,
        &sig,
        std::slice::from_ref(&pki.ca),
    )
    .unwrap();
    let info = cades::verify_detached(&p7s, DOC, std::slice::from_ref(&pki.ca), &[]).unwrap();
    assert_eq!(info.level, "CAdES-B-B");
}

#[test]
fn time_stamp_checks_nonce_imprint_and_tsa_validity() {
    let pki = Pki::new("Test Clinic CA");
    let tsa = dev_tsa(&pki, NOW - DAY, NOW + DAY);
    let digest = sha256(b"signature value");
    let nonce = [1u8; 8];
    let resp = tsa.respond(&tsp::request(&digest, &nonce).unwrap(), NOW, &[9]);
    assert_eq!(
        tsp::token_from_response(&resp, &digest, &[2u8; 8])
            .unwrap_err()
            .code,
        "nonce_mismatch"
    );
    assert_eq!(
        tsp::token_from_response(&resp, &sha256(b"other"), &nonce)
            .unwrap_err()
            .code,
        "imprint_mismatch"
    );
    let token = tsp::token_from_response(&resp, &digest, &nonce).unwrap();
    assert_eq!(
        tsp::verify_token(&token, &sha256(b"x"), std::slice::from_ref(&pki.ca))
            .unwrap_err()
            .code,
        "imprint_mismatch"
    );
    tsp::verify_token(&token, &digest, std::slice::from_ref(&pki.ca)).unwrap();
    // A token dated after its TSA certificate expired proves nothing.
    let late = tsa.respond(&tsp::request(&digest, &nonce).unwrap(), NOW + 2 * DAY, &[9]);
    let late = tsp::token_from_response(&late, &digest, &nonce).unwrap();
    assert_eq!(
        tsp::verify_token(&late, &digest, std::slice::from_ref(&pki.ca))
            .unwrap_err()
            .code,
        "cert_not_valid"
    );
    // A signer certificate without the time-stamping purpose is not a TSA.
    let not_tsa = pki.signer("ただの署名者");
    let fake = DevTsa::new(&not_tsa.pkcs8, not_tsa.cert, vec![]).unwrap();
    let resp = fake.respond(&tsp::request(&digest, &nonce).unwrap(), NOW, &[1]);
    let token = tsp::token_from_response(&resp, &digest, &nonce).unwrap();
    assert_eq!(
        tsp::verify_token(&token, &digest, std::slice::from_ref(&pki.ca))
            .unwrap_err()
            .code,
        "not_a_tsa"
    );
    // Garbage in, a rejection out.
    assert_eq!(
        tsp::token_from_response(&tsa.respond(b"\x30\x03junk", NOW, &[1]), &digest, &nonce)
            .unwrap_err()
            .code,
        "tsa_rejected"
    );
}

#[test]
fn dev_tsa_answers_openssl_requests() {
    let pki = Pki::new("Test Clinic CA");
    let tsa = dev_tsa(&pki, NOW - DAY, NOW + 365 * DAY);
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "data.txt", b"checkpoint 42\n");
    let tsq = dir.path().join("req.tsq");
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("ts"),
            OsStr::new("-query"),
            OsStr::new("-data"),
            data.as_os_str(),
            OsStr::new("-sha256"),
            OsStr::new("-cert"),
            OsStr::new("-out"),
            tsq.as_os_str(),
        ],
    );
    assert!(ok, "{out}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let resp = tsa.respond(&std::fs::read(&tsq).unwrap(), now, &[5]);
    let tsr = write(dir.path(), "resp.tsr", &resp);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("ts"),
            OsStr::new("-verify"),
            OsStr::new("-queryfile"),
            tsq.as_os_str(),
            OsStr::new("-in"),
            tsr.as_os_str(),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
        ],
    );
    assert!(ok && out.contains("Verification: OK"), "{out}");
}

#[test]
fn an_rsa_key_from_pkcs8_signs_through_ring() {
    // An RSA key as an imported HPKI identity might carry (made by OpenSSL, not by us).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.der");
    let cert = dir.path().join("rsa.crt");
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("req"),
            OsStr::new("-x509"),
            OsStr::new("-newkey"),
            OsStr::new("rsa:2048"),
            OsStr::new("-nodes"),
            OsStr::new("-subj"),
            OsStr::new("/CN=RSA Signer"),
            OsStr::new("-days"),
            OsStr::new("3650"),
            OsStr::new("-addext"),
            OsStr::new("basicConstraints=critical,CA:TRUE"),
            OsStr::new("-keyout"),
            key.with_extension("pem").as_os_str(),
            OsStr::new("-outform"),
            OsStr::new("DER"),
            OsStr::new("-out"),
            cert.as_os_str(),
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("pkcs8"),
            OsStr::new("-topk8"),
            OsStr::new("-nocrypt"),
            OsStr::new("-in"),
            key.with_extension("pem").as_os_str(),
            OsStr::new("-outform"),
            OsStr::new("DER"),
            OsStr::new("-out"),
            key.as_os_str(),
        ],
    );
    assert!(ok, "{out}");
    let signer = cades::Pkcs8Signer::from_pkcs8(&std::fs::read(&key).unwrap()).unwrap();
    let cert = Cert::from_der(&std::fs::read(&cert).unwrap()).unwrap();
    assert!(signer.matches(&cert));
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let p7s = cades::sign_detached(DOC, &cert, &[], &signer, now).unwrap();
    let info = cades::verify_detached(&p7s, DOC, std::slice::from_ref(&cert), &[]).unwrap();
    assert_eq!(info.level, "CAdES-B-B");
    let other = Pki::new("x").signer("y");
    assert!(!signer.matches(&other.cert));
}

/// A token of `tsa` over some digest at `NOW`.
fn token_of(tsa: &DevTsa) -> Vec<u8> {
    let digest = sha256(b"signature value");
    let nonce = [3u8; 8];
    let resp = tsa.respond(&tsp::request(&digest, &nonce).unwrap(), NOW, &[4]);
    tsp::token_from_response(&resp, &digest, &nonce).unwrap()
}

#[test]
fn only_a_listed_tsa_under_a_listed_policy_counts_as_accredited_and_never_the_development_one() {
    use mamori_evidence::tsp::AccreditedTsas;
    let policy = der::asn1::ObjectIdentifier::new_unwrap("1.2.392.200999.1.1");
    // An outside TSA (its own CA), standing in for an accredited one.
    let outside = Pki::new("認定TSA事業者 CA");
    let h = outside.tsa("認定タイムスタンプ局", NOW - DAY, NOW + DAY);
    let accredited = DevTsa::new(&h.pkcs8, h.cert.clone(), vec![outside.ca.clone()])
        .unwrap()
        .with_policy(policy);
    let token = token_of(&accredited);
    // The facility's development TSA.
    let clinic = Pki::new("Test Clinic CA");
    let dev = dev_tsa(&clinic, NOW - DAY, NOW + DAY);
    let dev_token = token_of(&dev);

    let none = AccreditedTsas::default();
    assert!(!none.accepts(&token), "nothing listed: nothing accredited");
    let by_cert = AccreditedTsas {
        certs: vec![h.cert.clone()],
        policies: vec![],
    };
    assert!(by_cert.accepts(&token));
    let by_ca = AccreditedTsas {
        certs: vec![outside.ca.clone()],
        policies: vec!["1.2.392.200999.1.1".into()],
    };
    assert!(by_ca.accepts(&token));
    let other_policy = AccreditedTsas {
        certs: vec![outside.ca.clone()],
        policies: vec!["1.2.392.200999.9.9".into()],
    };
    assert!(!other_policy.accepts(&token));
    let other_ca = AccreditedTsas {
        certs: vec![clinic.ca.clone()],
        policies: vec![],
    };
    assert!(!other_ca.accepts(&token), "a TSA of another CA is not");
    // Listing the development TSA (or its CA) does not make it accredited.
    let dev_listed = AccreditedTsas {
        certs: vec![dev.certificate().clone(), clinic.ca.clone()],
        policies: vec![],
    };
    assert!(!dev_listed.accepts(&dev_token));
    assert!(!by_cert.accepts(b"not a token"));
}

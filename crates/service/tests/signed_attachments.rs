//! Uploaded PDFs signed by the version's author (PAdES, as the letter mamori makes), and the
//! signatures already in them: a patient's マイナンバーカード signature (a certificate in J-LIS's
//! profile, made here, applied by pyHanko as outside software does) verifies with the JPKI
//! roots configured; encrypted, broken, oversized, untrusted-signed or foreign files are
//! refused with the reason and nothing is stored.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use mamori_domain::Clock;
use mamori_service::records::{RecordInput, Upload};
use mamori_service::{Principal, Service};

/// OpenSSL makes the RSA keys: J-LIS issues RSA-2048, which rcgen cannot generate.
fn rsa_key(dir: &Path, name: &str) -> rcgen::KeyPair {
    let path = dir.join(name);
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{out:?}");
    rcgen::KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn around_now() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::days(30),
        now + time::Duration::days(730),
    )
}

/// A root and a leaf for signing PDFs: with `jpki`, the J-LIS signing CA and a 署名用電子証明書
/// of the holder `name` (critical policy 1.2.392.200149.8.5.1.1.20, the 氏名 as a SAN
/// otherName, opaque CN, nonRepudiation); without, a CA nobody configured.
/// Returns (root PEM, leaf PEM, leaf key PEM).
fn pdf_signer(dir: &Path, name: &str, jpki: bool) -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer,
        KeyUsagePurpose, SanType,
    };
    let (from, to) = around_now();
    let ca_key = rsa_key(dir, &format!("{name}-ca.pem"));
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CountryName, "JP");
    p.distinguished_name.push(
        DnType::OrganizationName,
        if jpki { "JPKI" } else { "Unknown CA" },
    );
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "JPKI for digital signature");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (p.not_before, p.not_after) = (from, to);
    let ca = p.self_signed(&ca_key).unwrap();
    let root = ca.pem();
    let issuer = Issuer::from_ca_cert_der(ca.der(), ca_key).unwrap();
    let key = rsa_key(dir, &format!("{name}-key.pem"));
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CountryName, "JP");
    p.distinguished_name.push(DnType::LocalityName, "Tokyo-to");
    p.distinguished_name
        .push(DnType::CommonName, "20261204123456789012345678AB");
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    (p.not_before, p.not_after) = (from, to);
    p.subject_alt_names = vec![SanType::OtherName((
        vec![1, 2, 392, 200149, 8, 5, 5, 1],
        name.into(),
    ))];
    if jpki {
        // certificatePolicies: { policyIdentifier 1.2.392.200149.8.5.1.1.20 }, critical.
        let policy = [
            0x30, 0x0f, 0x30, 0x0d, 0x06, 0x0b, 0x2a, 0x83, 0x08, 0x8c, 0x9b, 0x55, 0x08, 0x05,
            0x01, 0x01, 0x14,
        ];
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 32], policy.to_vec());
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    }
    let leaf = p.signed_by(&key, &issuer).unwrap();
    (root, leaf.pem(), key.serialize_pem())
}

/// `pdf` signed by outside software (pyHanko; `adbe.pkcs7.detached`, as most PDF tools write).
fn signed_elsewhere(dir: &Path, pdf: &[u8], cert: &str, key: &str) -> Vec<u8> {
    let (input, output) = (dir.join("unsigned.pdf"), dir.join("signed.pdf"));
    let (c, k) = (dir.join("signer.pem"), dir.join("signer-key.pem"));
    std::fs::write(&input, pdf).unwrap();
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    let (ok, out) = tool(
        "pyhanko",
        &[
            OsStr::new("sign"),
            OsStr::new("addsig"),
            OsStr::new("--field"),
            OsStr::new("Patient"),
            OsStr::new("pemder"),
            OsStr::new("--no-pass"),
            OsStr::new("--key"),
            k.as_os_str(),
            OsStr::new("--cert"),
            c.as_os_str(),
            input.as_os_str(),
            output.as_os_str(),
        ],
    );
    assert!(ok, "pyhanko addsig: {out}");
    std::fs::read(output).unwrap()
}

async fn patient(f: &Fixture, admin: &Principal) {
    let clerk = f.user(admin, "clerk1", "clerk").await;
    create_yamada(&f.svc, &clerk).await;
}

/// A finalised version of `kind` with one uploaded file; returns the record and the file's hash.
async fn with_upload(
    svc: &Arc<Service>,
    doctor: &Principal,
    kind: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (i64, String) {
    let sha = hex::encode(mamori_evidence::sha256(&bytes));
    let w = svc
        .create_record(
            doctor,
            RecordInput {
                patient_id: "P0001".into(),
                kind: kind.into(),
                title: "同意書（患者署名済み）".into(),
                body: "手術の説明を受け、同意しました。".into(),
                ..Default::default()
            },
            vec![Upload {
                name: name.into(),
                bytes,
            }],
        )
        .await
        .unwrap();
    svc.finalise_record(doctor, w.record_id).await.unwrap();
    (w.record_id, sha)
}

fn pyhanko_validates(dir: &Path, pdf: &[u8], trust: &[&str], at_ms: i64) -> String {
    let path = dir.join("countersigned.pdf");
    std::fs::write(&path, pdf).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(at_ms / 1000 + 60)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut args = vec![
        OsStr::new("sign").to_owned(),
        OsStr::new("validate").to_owned(),
        OsStr::new("--no-revocation-check").to_owned(),
        OsStr::new("--validation-time").to_owned(),
        OsStr::new(&at).to_owned(),
        OsStr::new("--trust-replace").to_owned(),
        OsStr::new("--pretty-print").to_owned(),
    ];
    for (i, pem) in trust.iter().enumerate() {
        let p = dir.join(format!("trust-{i}.pem"));
        std::fs::write(&p, pem).unwrap();
        args.push(OsStr::new("--trust").to_owned());
        args.push(p.into_os_string());
    }
    args.push(path.into_os_string());
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (ok, out) = tool("pyhanko", &refs);
    assert!(ok, "pyhanko validate: {out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consent_the_patient_signed_with_their_my_number_card_is_countersigned_by_its_author() {
    let work = tempfile::tempdir().unwrap();
    let (jpki_root, patient_cert, patient_key) = pdf_signer(work.path(), "山田 太郎", true);
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.jpki_trust = "jpki-roots.pem".into();
    })
    .await;
    std::fs::write(f.data().join("jpki-roots.pem"), &jpki_root).unwrap();
    let admin = f.admin().await;
    patient(&f, &admin).await;
    let doctor = f.signer(&admin, "dr_sato", "doctor").await;

    let consent = signed_elsewhere(
        work.path(),
        &mamori_testkit::pdf::one_page("Consent to surgery"),
        &patient_cert,
        &patient_key,
    );
    let (id, sha) = with_upload(&f.svc, &doctor, "consent", "同意書.pdf", consent.clone()).await;

    // Before anything is added: the patient's own signature, read as JPKI.
    let anchors =
        mamori_service::evidence::read::Anchors::load(&f.data(), &f.svc.config().evidence).unwrap();
    let found = mamori_service::evidence::uploaded_signatures(&consent, &anchors).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].jpki_holder.as_deref(), Some("山田 太郎"));
    assert!(!found[0].jpki_test_card);

    let level = f
        .svc
        .sign_attachment_pdf(&doctor, id, 1, &sha)
        .await
        .unwrap();
    assert_eq!(level, "PAdES-B-LTA");
    let pdf = f.svc.signed_pdf(&doctor, id, 1, Some(&sha)).await.unwrap();
    assert!(
        pdf.bytes.starts_with(&consent),
        "the patient's file stays byte for byte; the author's signature is an update"
    );
    let made = f.events("record.pdf_signed");
    assert!(
        made.iter().any(|e| e["detail"]["attachment_sha256"] == sha
            && e["detail"]["pdf_sha256"] == hex::encode(mamori_evidence::sha256(&pdf.bytes))),
        "{made:?}"
    );

    // mamori's check: the patient's signature (JPKI), the author's, the document time-stamp.
    let mut signers = anchors.signers.clone();
    signers.extend(anchors.jpki.iter().cloned());
    let r = mamori_evidence::pades::verify(&pdf.bytes, &signers, &anchors.tsa).unwrap();
    let sigs: Vec<_> = r.iter().filter_map(|x| x.signature.as_ref()).collect();
    assert_eq!(sigs.len(), 2, "{r:?}");
    assert_eq!(r[0].sub_filter, "adbe.pkcs7.detached");
    assert_eq!(sigs[0].jpki.as_ref().unwrap().name, "山田 太郎");
    assert!(sigs[1].signer_subject.contains("dr_sato") && sigs[1].jpki.is_none());
    assert_eq!(r.last().unwrap().level, "DocTimeStamp");
    // Without the JPKI roots the patient's signature is not trusted.
    assert!(mamori_evidence::pades::verify(&pdf.bytes, &anchors.signers, &anchors.tsa).is_err());

    // pyHanko, trusting the facility CA and the JPKI root, accepts both signatures.
    let ca = mamori_service::access::ca::ca_pem(&f.data()).unwrap();
    let out = pyhanko_validates(
        work.path(),
        &pdf.bytes,
        &[&ca, &jpki_root],
        sigs[1].validated_at,
    );
    assert!(out.matches("judged VALID").count() == 2, "{out}");
    assert!(!out.contains("INVALID"), "{out}");

    // Evidence verification covers it; signing twice is refused.
    let rep = mamori_service::evidence::read::verify_evidence(
        &f.svc.store().reader().unwrap().get(),
        f.svc.store().blobs(),
        &anchors,
        Some(id),
        f.clock.now(),
    )
    .unwrap();
    let item = rep.items.iter().find(|i| i.record_id == id).unwrap();
    assert_eq!(item.signed_attachments.len(), 1, "{item:?}");
    assert_eq!(item.signed_attachments[0].earlier_signatures, 1);
    assert!(item.problems.is_empty(), "{item:?}");
    let e = f
        .svc
        .sign_attachment_pdf(&doctor, id, 1, &sha)
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "exists", "{e:?}");

    // The record's evidence page names the patient as the signer of what they uploaded.
    let page = f.svc.record_evidence(&doctor, id).await.unwrap();
    assert_eq!(page.uploaded.len(), 1, "{:?}", page.uploaded);
    assert_eq!(
        page.uploaded[0].signatures[0].jpki_holder.as_deref(),
        Some("山田 太郎")
    );

    // The export bundle carries the signed copy; verify.sh checks the author's signature in it
    // with OpenSSL alone, and fails when a signed byte changes.
    let bundle = f
        .svc
        .export_bundle(&doctor, mamori_service::records::export::Scope::Record(id))
        .await
        .unwrap();
    let bdir = tempfile::tempdir().unwrap();
    unzip(&bundle, bdir.path());
    let (ok, out) = verify_sh(bdir.path());
    assert!(
        ok && out.contains(&format!(
            "署名した添付 PDF {} の電子署名 (PAdES)",
            &sha[..12]
        )),
        "{out}"
    );
    let file = bdir.path().join(format!(
        "x/records/{id}/v1/signed-attachment-{}.pdf",
        &sha[..12]
    ));
    let mut bytes = std::fs::read(&file).unwrap();
    let at = consent.len() + 40;
    bytes[at] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let (ok, out) = verify_sh(bdir.path());
    assert!(!ok && out.contains("FAIL"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_mamori_cannot_sign_honestly_is_refused_with_the_reason_and_nothing_is_stored() {
    let work = tempfile::tempdir().unwrap();
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.pdf_sign_max_mb = 1;
    })
    .await;
    let admin = f.admin().await;
    patient(&f, &admin).await;
    let doctor = f.signer(&admin, "dr_sato", "doctor").await;
    let plain = mamori_testkit::pdf::one_page("Outside report");

    let refused = |e: mamori_service::ServiceError| (e.code.as_str(), e.message);
    let try_sign = |name: &'static str, bytes: Vec<u8>| {
        let (svc, doctor) = (f.svc.clone(), doctor.clone());
        async move {
            let (id, sha) = with_upload(&svc, &doctor, "medical_record", name, bytes).await;
            svc.sign_attachment_pdf(&doctor, id, 1, &sha).await
        }
    };

    // Encrypted (owner password only: every viewer opens it, its bytes are not what it shows).
    let dir = work.path();
    std::fs::write(dir.join("plain.pdf"), &plain).unwrap();
    let (ok, out) = tool(
        "qpdf",
        &[
            OsStr::new("--encrypt"),
            OsStr::new(""),
            OsStr::new("owner"),
            OsStr::new("256"),
            OsStr::new("--"),
            dir.join("plain.pdf").as_os_str(),
            dir.join("locked.pdf").as_os_str(),
        ],
    );
    assert!(ok, "{out}");
    let e = try_sign("locked.pdf", std::fs::read(dir.join("locked.pdf")).unwrap())
        .await
        .unwrap_err();
    let (code, msg) = refused(e);
    assert_eq!(code, "pdf_not_signable");
    assert!(msg.contains("暗号化"), "{msg}");

    // Broken: a PDF header and nothing a reader can use.
    let e = try_sign(
        "broken.pdf",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec(),
    )
    .await
    .unwrap_err();
    let (code, msg) = refused(e);
    assert_eq!(code, "pdf_not_signable");
    assert!(msg.contains("読めない"), "{msg}");

    // Signed by someone no configured root vouches for.
    let (_, cert, key) = pdf_signer(dir, "見知らぬ 人", false);
    let e = try_sign("stranger.pdf", signed_elsewhere(dir, &plain, &cert, &key))
        .await
        .unwrap_err();
    let (code, msg) = refused(e);
    assert_eq!(code, "pdf_not_signable");
    assert!(msg.contains("検証できない署名"), "{msg}");

    // Larger than evidence.pdf_sign_max_mb.
    let huge = mamori_testkit::pdf::one_page(&"x".repeat(1_200_000));
    let e = try_sign("huge.pdf", huge).await.unwrap_err();
    let (code, msg) = refused(e);
    assert_eq!(code, "too_large");
    assert!(msg.contains("1 MiB"), "{msg}");

    // Another doctor is not the author; a closed window signs nothing.
    let (id, sha) = with_upload(&f.svc, &doctor, "medical_record", "report.pdf", plain).await;
    let other = f.signer(&admin, "dr_kato", "doctor").await;
    let e = f
        .svc
        .sign_attachment_pdf(&other, id, 1, &sha)
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "forbidden", "{e:?}");
    f.svc.close_signing_window(&doctor).await.unwrap();
    let e = f
        .svc
        .sign_attachment_pdf(&doctor, id, 1, &sha)
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "signing_window_closed", "{e:?}");
    let e = f
        .svc
        .sign_attachment_pdf(&doctor, id, 1, &"0".repeat(64))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "not_found", "{e:?}");

    // Nothing was stored; each refusal with a reason is in the ledger.
    assert!(f.events("record.pdf_signed").is_empty());
    let refusals = f.events("signing.refused");
    assert!(
        refusals
            .iter()
            .filter(|r| r["detail"]["attachment_sha256"].is_string())
            .count()
            >= 5,
        "{refusals:?}"
    );

    // A plain PDF, in the author's reopened window, is signed and pyHanko accepts it.
    open_window_again(&f.svc, &doctor).await;
    assert_eq!(
        f.svc
            .sign_attachment_pdf(&doctor, id, 1, &sha)
            .await
            .unwrap(),
        "PAdES-B-LTA"
    );
    let pdf = f.svc.signed_pdf(&doctor, id, 1, Some(&sha)).await.unwrap();
    let ca = mamori_service::access::ca::ca_pem(&f.data()).unwrap();
    let out = pyhanko_validates(dir, &pdf.bytes, &[&ca], f.clock.now());
    assert!(out.contains("judged VALID"), "{out}");
    let path = dir.join("countersigned.pdf");
    let (ok, out) = tool("qpdf", &[OsStr::new("--check"), path.as_os_str()]);
    assert!(ok, "qpdf: {out}");
    let (_, out) = tool("pdfsig", &[path.as_os_str()]);
    assert!(out.contains("Signature #1"), "{out}");
}

async fn open_window_again(svc: &Arc<Service>, p: &Principal) {
    svc.open_signing_window(p, SIGNING_PIN).await.unwrap();
}

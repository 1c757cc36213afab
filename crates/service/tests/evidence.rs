//! Signatures, time-stamps and evidence records on finalised versions, through the service:
//! signing at finalisation, a TSA outage and its retry, sealing, renewal in time, hash-tree
//! renewal, and verification that fails when anything is changed.

mod common;

use std::sync::Arc;

use common::openssl_tsa::openssl_tsa;
use common::*;
use mamori_domain::Clock;
use mamori_service::evidence::read::{Anchors, verify_evidence};
use mamori_service::instance::open_with;
use mamori_service::records::RecordInput;
use mamori_service::{Config, Principal, Service};
use mamori_store::StoreOptions;

const DAY: i64 = 86_400_000;

async fn patient_and_doctor(f: &Fixture) -> (Principal, Principal) {
    let admin = f.admin().await;
    // dr_sato signs with their key in its token, or (external_signers) with an HPKI card.
    let doctor = if f.svc.config().evidence.external_signers.contains("dr_sato") {
        f.user(&admin, "dr_sato", "doctor").await
    } else {
        f.signer(&admin, "dr_sato", "doctor").await
    };
    let clerk = f.user(&admin, "clerk1", "clerk").await;
    create_yamada(&f.svc, &clerk).await;
    (admin, doctor)
}

async fn finalised(svc: &Arc<Service>, doctor: &Principal, body: &str) -> i64 {
    finalised_with(svc, doctor, "medical_record", "経過記録", body).await
}

async fn finalised_of_kind(svc: &Arc<Service>, doctor: &Principal, kind: &str, title: &str) -> i64 {
    finalised_with(svc, doctor, kind, title, "本文").await
}

async fn finalised_with(
    svc: &Arc<Service>,
    doctor: &Principal,
    kind: &str,
    title: &str,
    body: &str,
) -> i64 {
    let w = svc
        .create_record(
            doctor,
            RecordInput {
                patient_id: "P0001".into(),
                kind: kind.into(),
                title: title.into(),
                body: body.into(),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    svc.finalise_record(doctor, w.record_id).await.unwrap();
    w.record_id
}

fn report(
    dir: &std::path::Path,
    cfg: &Config,
    now: i64,
) -> mamori_service::evidence::read::EvidenceReport {
    let ro = mamori_service::instance::read_only(dir).unwrap();
    let blobs = mamori_store::BlobStore::open(dir.join("blobs")).unwrap();
    let anchors = Anchors::load(dir, &cfg.evidence).unwrap();
    verify_evidence(&ro.get(), &blobs, &anchors, None, now).unwrap()
}

/// Restarts the instance with another configuration (as an administrator would).
fn reopen(f: Fixture, tweak: impl FnOnce(&mut Config)) -> Fixture {
    let Fixture { dir, svc, clock } = f;
    svc.store().close();
    drop(svc);
    let data = dir.path().join("data");
    let mut cfg = fast_config(&data);
    tweak(&mut cfg);
    let svc = open_with(&data, clock.clone(), StoreOptions::default(), Some(cfg)).unwrap();
    Fixture { dir, svc, clock }
}

#[tokio::test]
async fn finalising_signs_and_time_stamps_and_verification_notices_tampering() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (_, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "血圧 128/82。経過良好。").await;

    let rec = f.svc.record(&doctor, id).await.unwrap();
    let sig = rec.versions[0]
        .signature
        .clone()
        .expect("signed at finalisation");
    assert!(sig.signer.contains("dr_sato"), "{sig:?}");
    assert_eq!(sig.level, "CAdES-B-LT");
    assert!(sig.timestamped_at.is_some());
    assert!(sig.development_tsa);

    let cfg = f.svc.config().clone();
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert_eq!((rep.checked, rep.ok, rep.failed), (1, 1, 0), "{rep:?}");
    assert!(rep.development_tsa);
    let item = &rep.items[0];
    assert_eq!(item.level, Some("CAdES-B-LT"));
    assert!(item.sealed.is_none());

    // Sealing puts the signature and the newest checkpoint under one archive time-stamp.
    let sweep = f.svc.evidence_sweep(true).await.unwrap();
    let sealed = sweep.sealed.expect("sealed");
    assert_eq!(sealed.signatures, 1);
    assert!(sealed.checkpoints >= 1);
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert!(rep.passed(), "{rep:?}");
    assert!(rep.items[0].sealed.is_some());
    assert!(rep.checkpoints_sealed >= 1);

    // Tamper with the signed statement in the database (an attacker with file access drops
    // the trigger): the signature and the evidence record both fail, and say why.
    if mamori_testkit::postgres::suite_on_postgresql(
        "tampering with a signature",
        "the edit is made in SQLite's file; PostgreSQL's refusal of outside edits is store/tests/pg_store.rs",
    ) {
        return;
    }
    let db = rusqlite::Connection::open(f.data().join("mamori.db")).unwrap();
    let edit = |from: &str, to: &str| {
        db.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS signatures_statement_fixed;
             UPDATE signatures SET statement = CAST(replace(CAST(statement AS TEXT), '{from}', '{to}') AS BLOB)
             WHERE record_id = {id};"
        ))
        .unwrap();
    };
    edit("128/82", "158/82");
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert_eq!(rep.failed, 1, "{rep:?}");
    let problems = rep.items[0].problems.join(" / ");
    assert!(problems.contains("ハッシュ不一致"), "{problems}");
    assert!(problems.contains("電子署名"), "{problems}");
    assert!(problems.contains("証拠記録"), "{problems}");
    edit("158/82", "128/82");
    assert!(report(&f.data(), &cfg, f.clock.now()).passed());
}

#[tokio::test]
async fn a_tsa_outage_leaves_the_signature_pending_until_the_retry_succeeds() {
    let f = fixture_with(|c| c.evidence.tsa_urls = "http://127.0.0.1:9/tsa".into()).await;
    let (admin, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "TSA が止まっている間の記録").await;
    let rec = f.svc.record(&doctor, id).await.unwrap();
    let sig = rec.versions[0].signature.clone().unwrap();
    assert_eq!(sig.level, "CAdES-B-B");
    assert!(sig.timestamped_at.is_none());
    assert!(
        sig.pending_error
            .as_deref()
            .unwrap_or("")
            .contains("接続できません")
    );
    let status = f.svc.evidence_status(&admin).await.unwrap();
    assert_eq!(status.pending, 1);
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("タイムスタンプ待ち")),
        "{:?}",
        status.warnings
    );
    // A referral's signed PDF is kept at B-B meanwhile.
    let letter =
        finalised_of_kind(&f.svc, &doctor, "referral", "TSA が止まっている間の紹介状").await;
    assert_eq!(
        f.svc
            .signed_pdf(&doctor, letter, 1, None)
            .await
            .unwrap()
            .level,
        "PAdES-B-B"
    );
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert_eq!((rep.pending, rep.failed), (2, 0), "{rep:?}");

    // The TSA is back (here: the development TSA); the sweep retries once the back-off passed.
    let f = reopen(f, |c| {
        c.evidence.tsa_urls.clear();
        c.evidence.dev_tsa = true;
    });
    let svc = &f.svc;
    let early = svc.evidence_sweep(false).await.unwrap();
    assert_eq!(early.timestamped, 0, "not before the back-off");
    f.clock.advance(2 * 60_000);
    let sweep = svc.evidence_sweep(false).await.unwrap();
    assert_eq!(sweep.timestamped, 2);
    // The PDF's signature gained its time-stamp in place, then validation data and a document
    // time-stamp: no one signed anything again.
    assert_eq!(early.pdfs_renewed + sweep.pdfs_renewed, 1, "{sweep:?}");
    let doctor = f
        .svc
        .authenticate(&f.svc.login("dr_sato", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    let pdf = svc.signed_pdf(&doctor, letter, 1, None).await.unwrap();
    assert_eq!(pdf.level, "PAdES-B-LTA");
    let anchors = Anchors::load(&f.data(), &svc.config().evidence).unwrap();
    let levels: Vec<String> =
        mamori_evidence::pades::verify(&pdf.bytes, &anchors.signers, &anchors.tsa)
            .unwrap()
            .into_iter()
            .map(|r| r.level)
            .collect();
    assert_eq!(levels, ["PAdES-B-T", "DocTimeStamp"]);
    assert_eq!(f.events("record.pdf_renewed").len(), 1);
    let rep = report(&f.data(), svc.config(), f.clock.now());
    assert_eq!((rep.ok, rep.pending), (2, 0), "{rep:?}");
}

#[tokio::test]
async fn evidence_records_are_renewed_in_time_and_with_a_stronger_hash() {
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.dev_tsa_days = 5 * 365;
        c.evidence.renew_days = 365;
    })
    .await;
    let (_, doctor) = patient_and_doctor(&f).await;
    for i in 0..5 {
        finalised(&f.svc, &doctor, &format!("記録 {i}")).await;
    }
    let sweep = f.svc.evidence_sweep(true).await.unwrap();
    let sealed = sweep.sealed.clone().unwrap();
    assert_eq!(
        sealed.signatures,
        5,
        "{sweep:?} {:?}",
        report(&f.data(), f.svc.config(), f.clock.now())
    );
    let t0 = f.clock.now();

    // Three years on, nothing to renew yet.
    f.clock.advance(3 * 365 * DAY);
    assert!(f.svc.renew_evidence().await.unwrap().is_empty());
    // Four and a half years on, the TSA certificate expires within a year: renew.
    f.clock.advance(545 * DAY);
    let renewed = f.svc.renew_evidence().await.unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].kind, "timestamp");
    // Seven years on, long after the first TSA certificate expired, it still verifies.
    f.clock.advance(3 * 365 * DAY);
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert!(rep.passed(), "{rep:?}");
    let s = rep.items[0].sealed.clone().unwrap();
    assert_eq!(s.stamps, 2);
    assert_eq!(s.proven_since / 1000, t0 / 1000);

    // Without the renewal it would have lapsed: a record whose last stamp expired fails.
    // (Checked by the crate's tests; here the algorithm changes instead.)
    let f = reopen(f, |c| {
        c.evidence.dev_tsa = true;
        c.evidence.hash = "sha512".into();
    });
    let svc = &f.svc;
    let renewed = svc.renew_evidence().await.unwrap();
    assert!(renewed.iter().any(|r| r.kind == "hashtree"), "{renewed:?}");
    let rep = report(&f.data(), svc.config(), f.clock.now());
    assert!(rep.passed(), "{rep:?}");
    let s = rep.items[0].sealed.clone().unwrap();
    assert_eq!(s.algorithms, vec!["sha256", "sha512"]);
    assert_eq!(s.proven_since / 1000, t0 / 1000);
}

#[tokio::test]
async fn an_export_bundle_verifies_with_openssl_alone_and_fails_when_changed() {
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (admin, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "初診。頭痛。").await;
    // An amendment: two signed versions, both in the bundle.
    f.svc
        .amend_record(
            &doctor,
            id,
            RecordInput {
                patient_id: "P0001".into(),
                kind: "medical_record".into(),
                title: "経過記録".into(),
                body: "初診。頭痛。翌日軽快。".into(),
                reason: Some("経過を追記".into()),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    f.svc.evidence_sweep(true).await.unwrap();

    let bundle = f
        .svc
        .export_bundle(&doctor, mamori_service::records::export::Scope::Record(id))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    unzip(&bundle, dir.path());
    let x = dir.path().join("x");
    for file in [
        "README.txt",
        "index.html",
        "trust/tsa-roots.pem",
        "ledger/checkpoint.txt",
        "records/1/v1/statement.json.p7s",
        "records/1/v2/evidence.ers",
        "records/1/v2/evidence/ats-1-1.digest",
        "records/1/v1/ledger-proof.json",
    ] {
        assert!(x.join(file).exists(), "{file} missing");
    }
    let html = std::fs::read_to_string(x.join("index.html")).unwrap();
    assert!(
        html.contains("翌日軽快") && html.contains("CAdES-B-LT"),
        "{html}"
    );
    let (ok, out) = verify_sh(dir.path());
    assert!(ok, "{out}");
    assert_eq!(
        out.matches("OK ").count(),
        6,
        "2 × (signature, time-stamp, evidence record): {out}"
    );

    // One changed character in a signed statement: OpenSSL refuses it.
    let p = x.join("records/1/v2/statement.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("翌日軽快", "翌日悪化");
    std::fs::write(&p, text).unwrap();
    let (ok, out) = verify_sh(dir.path());
    assert!(!ok && out.contains("FAIL records/1/v2: 電子署名"), "{out}");

    // A doctor may export; a receptionist who may not read charts may not.
    let clerk = f.svc.login("clerk1", PW, None).await.unwrap();
    let clerk = f.svc.authenticate(&clerk.token, None).await.unwrap();
    let e = f
        .svc
        .export_bundle(&clerk, mamori_service::records::export::Scope::Record(id))
        .await
        .unwrap_err();
    assert_eq!(e.code, "forbidden", "{e:?}");
    let _ = admin;
}

#[tokio::test]
async fn an_independent_rfc3161_tsa_over_http_time_stamps_the_signatures() {
    let tsa_dir = tempfile::tempdir().unwrap();
    let tsa = openssl_tsa(tsa_dir.path());
    let url = tsa.url.clone();
    let f = fixture_with(move |c| {
        c.evidence.tsa_urls = url;
        c.evidence.tsa_trust = "tsa-roots.pem".into();
    })
    .await;
    // OpenSSL stamps with the real time; run the instance's clock on it too.
    f.run_on_real_time();
    std::fs::write(f.data().join("tsa-roots.pem"), &tsa.root_pem).unwrap();
    let (_, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "外部TSAでの確定").await;
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert_eq!(sig.level, "CAdES-B-LT", "{sig:?}");
    assert!(!sig.development_tsa);
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert_eq!(rep.ok, 1, "{rep:?}");
    let ts = rep.items[0].timestamp.clone().unwrap();
    assert!(ts.tsa_subject.contains("OpenSSL Test TSA"), "{ts:?}");
    assert_eq!(ts.policy, "1.2.3.4.1");
    // Nothing names it accredited: it is shown so, and the status cannot tell.
    assert!(!sig.accredited_tsa);
    let admin = f.admin_again().await;
    let st = f.svc.evidence_status(&admin).await.unwrap();
    assert_eq!((st.accredited_tsas, st.not_accredited), (0, 0), "{st:?}");
    // Its evidence record is stamped by the same TSA.
    let sealed = f.svc.evidence_sweep(true).await.unwrap().sealed.unwrap();
    assert_eq!(sealed.signatures, 1);
    assert!(report(&f.data(), f.svc.config(), f.clock.now()).passed());

    // Named accredited (its CA and policy): its time-stamps are shown so, and the status
    // says every recent one is. Under another policy, they are not, and the status warns.
    let now = f.clock.now();
    let url = tsa.url.clone();
    let f = reopen(f, move |c| {
        c.evidence.tsa_urls = url;
        c.evidence.tsa_trust = "tsa-roots.pem".into();
        c.evidence.accredited_tsa_certs = "tsa-roots.pem".into();
        c.evidence.accredited_tsa_policies = "1.2.3.4.1".into();
    });
    f.clock.0.store(now, std::sync::atomic::Ordering::SeqCst);
    let doctor = f
        .svc
        .authenticate(&f.svc.login("dr_sato", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    f.svc
        .open_signing_window(&doctor, SIGNING_PIN)
        .await
        .unwrap();
    let id = finalised(&f.svc, &doctor, "認定TSAでの確定").await;
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert!(sig.accredited_tsa, "{sig:?}");
    let admin = f.admin_again().await;
    let st = f.svc.evidence_status(&admin).await.unwrap();
    assert_eq!(
        (
            st.accredited_tsas,
            st.accreditation_checked,
            st.not_accredited
        ),
        (1, 2, 0),
        "{st:?}"
    );
    assert!(st.warnings.is_empty(), "{st:?}");
    let url = tsa.url.clone();
    let f = reopen(f, move |c| {
        c.evidence.tsa_urls = url;
        c.evidence.tsa_trust = "tsa-roots.pem".into();
        c.evidence.accredited_tsa_certs = "tsa-roots.pem".into();
        c.evidence.accredited_tsa_policies = "1.2.392.200999.1".into();
    });
    let admin = f.admin_again().await;
    let st = f.svc.evidence_status(&admin).await.unwrap();
    assert_eq!(st.not_accredited, 2, "{st:?}");
    assert!(
        st.warnings.iter().any(|w| w.contains("総務大臣認定")),
        "{st:?}"
    );

    // Without its root in tsa_trust, the same TSA's tokens are not accepted.
    let f2 = fixture_with({
        let url = tsa.url.clone();
        move |c| c.evidence.tsa_urls = url
    })
    .await;
    f2.clock
        .0
        .store(f.clock.now(), std::sync::atomic::Ordering::SeqCst);
    let (_, doctor2) = patient_and_doctor(&f2).await;
    let id2 = finalised(&f2.svc, &doctor2, "信頼されない TSA").await;
    let sig2 = f2.svc.record(&doctor2, id2).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert_eq!(sig2.level, "CAdES-B-B");
    assert!(
        sig2.pending_error
            .as_deref()
            .unwrap_or("")
            .contains("信頼できる認証局"),
        "{sig2:?}"
    );
}

/// An outside CA (standing in for an HPKI CA) and one certificate with its key.
fn outside_signer(name: &str) -> (String, rcgen::KeyPair, String) {
    let (mut signers, root) = outside_signers(&[(name, None)]);
    let (cert, key) = signers.remove(0);
    (cert, key, root)
}

/// An outside CA and, for each (name, HPKI hcRole), a signing certificate with its key; the
/// hcRole as the HPKI certificate policy writes it (scheme 1.2.392.100495.1.6.1.1).
fn outside_signers(people: &[(&str, Option<&str>)]) -> (Vec<(String, rcgen::KeyPair)>, String) {
    let (signers, root, _) = outside_signers_with_ca_key(people);
    (signers, root)
}

/// `outside_signers`, and the CA's key (PKCS#8 DER), to sign its CRLs.
fn outside_signers_with_ca_key(
    people: &[(&str, Option<&str>)],
) -> (Vec<(String, rcgen::KeyPair)>, String, Vec<u8>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "Test HPKI Root");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = time::OffsetDateTime::from_unix_timestamp(t0() / 1000 - 86_400).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(t0() / 1000 + 86_400 * 3650).unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let root = ca.pem();
    let ca_key_der = ca_key.serialize_der();
    let issuer = Issuer::from_ca_cert_der(ca.der(), ca_key).unwrap();
    let signers = people
        .iter()
        .map(|(name, role)| {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, *name);
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
            p.not_before = time::OffsetDateTime::from_unix_timestamp(t0() / 1000 - 86_400).unwrap();
            p.not_after =
                time::OffsetDateTime::from_unix_timestamp(t0() / 1000 + 86_400 * 730).unwrap();
            if let Some(role) = role {
                p.custom_extensions
                    .push(rcgen::CustomExtension::from_oid_content(
                        &[2, 5, 29, 9],
                        mamori_evidence::hcrole::extension_value(
                            mamori_evidence::hcrole::HPKI_QUALIFICATIONS,
                            role,
                        ),
                    ));
            }
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key)
        })
        .collect();
    (signers, root, ca_key_der)
}

#[tokio::test]
async fn an_author_signs_with_a_key_outside_mamori_through_the_two_step_api() {
    use base64::Engine;
    use rcgen::SigningKey;
    let b64 = base64::engine::general_purpose::STANDARD;
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.external_signers = "dr_sato".into();
        c.evidence.signer_trust = "hpki-roots.pem".into();
    })
    .await;
    let (cert_pem, key, root_pem) = outside_signer("佐藤 医師 (HPKI)");
    std::fs::write(f.data().join("hpki-roots.pem"), root_pem).unwrap();
    let (admin, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "カードで署名する記録").await;
    // Finalised, but waiting for the author's own signature.
    assert!(
        f.svc.record(&doctor, id).await.unwrap().versions[0]
            .signature
            .is_none()
    );
    f.svc.evidence_sweep(true).await.unwrap();
    assert!(
        f.svc.record(&doctor, id).await.unwrap().versions[0]
            .signature
            .is_none(),
        "nothing in the background signs"
    );

    // An unknown CA is refused; someone other than the author is refused.
    let (stranger, _, _) = outside_signer("見知らぬ人");
    let e = f
        .svc
        .begin_external_signature(&doctor, id, 1, &stranger)
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e:?}");
    let other = f.user(&admin, "dr_other", "doctor").await;
    let e = f
        .svc
        .begin_external_signature(&other, id, 1, &cert_pem)
        .await
        .unwrap_err();
    assert_eq!(e.code, "forbidden");

    let task = f
        .svc
        .begin_external_signature(&doctor, id, 1, &cert_pem)
        .await
        .unwrap();
    let tbs = b64.decode(&task.to_be_signed).unwrap();
    // A signature by another key does not fit the certificate.
    let wrong = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let e = f
        .svc
        .complete_external_signature(&doctor, id, 1, &b64.encode(wrong.sign(&tbs).unwrap()))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("signature"), "{e:?}");
    // The card's signature.
    let done = f
        .svc
        .complete_external_signature(&doctor, id, 1, &b64.encode(key.sign(&tbs).unwrap()))
        .await
        .unwrap();
    assert!(done.signed && done.timestamped, "{done:?}");
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert!(sig.signer.contains("HPKI"), "{sig:?}");
    assert_eq!(sig.level, "CAdES-B-T");
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert_eq!((rep.ok, rep.failed), (1, 0), "{rep:?}");
    let e = f
        .svc
        .begin_external_signature(&doctor, id, 1, &cert_pem)
        .await
        .unwrap_err();
    assert_eq!(e.code, "conflict");
}

#[tokio::test]
async fn an_imported_pkcs12_identity_signs_the_authors_records() {
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.signer_trust = "hpki-roots.pem".into();
    })
    .await;
    let (cert_pem, key, root_pem) = outside_signer("佐藤 医師 (HPKI 取り込み)");
    let (_, doctor) = patient_and_doctor(&f).await;
    let cert = mamori_evidence::cert::Cert::from_pem_chain(&cert_pem)
        .unwrap()
        .remove(0);
    let p12 = {
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "hpki",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
                key.serialize_der(),
                [1u8; 8],
                vec![p12_keystore::Certificate::from_der(&cert.der).unwrap()],
            )),
        );
        store.writer("p12 password").write().unwrap()
    };
    // Before its root is trusted, the import is refused; a wrong password too.
    let (_, _, other_root) = outside_signer("別の認証局の誰か");
    std::fs::write(f.data().join("hpki-roots.pem"), other_root).unwrap();
    let e = f
        .svc
        .import_signing_identity("dr_sato", &p12, "p12 password", "取り込み PIN 9753")
        .await
        .unwrap_err();
    assert!(e.message.contains("signer_trust"), "{e:?}");
    std::fs::write(f.data().join("hpki-roots.pem"), root_pem).unwrap();
    let e = f
        .svc
        .import_signing_identity("dr_sato", &p12, "wrong", "取り込み PIN 9753")
        .await
        .unwrap_err();
    assert!(e.message.contains("パスワード"), "{e:?}");
    let e = f
        .svc
        .import_signing_identity("dr_sato", &p12, "p12 password", "1234")
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("pin"), "a short PIN is refused: {e:?}");
    let row = f
        .svc
        .import_signing_identity("dr_sato", &p12, "p12 password", "取り込み PIN 9753")
        .await
        .unwrap();
    assert_eq!(row.source, "imported");
    // The import closed the window of the previous key; the imported one opens with its PIN.
    let id = finalised(&f.svc, &doctor, "取り込む前の窓は閉じている").await;
    assert!(
        f.svc.record(&doctor, id).await.unwrap().versions[0]
            .signature
            .is_none()
    );
    let opened = f
        .svc
        .open_signing_window(&doctor, "取り込み PIN 9753")
        .await
        .unwrap();
    assert_eq!(opened.signed, 1, "{opened:?}");
    let id = finalised(&f.svc, &doctor, "取り込んだ鍵で署名").await;
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert!(sig.signer.contains("HPKI 取り込み"), "{sig:?}");
    assert_eq!(sig.serial, row.serial);
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert_eq!((rep.ok, rep.failed), (2, 0), "{rep:?}");
}

/// 7-Zip as Debian ships it (`7zz` from the 7zip package, `7z` from p7zip).
fn seven_zip() -> &'static str {
    for cmd in ["7zz", "7z"] {
        if std::process::Command::new(cmd)
            .arg("i")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return cmd;
        }
    }
    panic!("7-Zip is needed to open encrypted bundles independently: apt-get install 7zip");
}

#[tokio::test]
async fn an_encrypted_bundle_opens_with_7zip_and_is_in_the_take_out_register() {
    use mamori_compliance::registers::Register;
    use mamori_service::records::export::Scope;
    use mamori_service::records::export_encrypted::{TakeOut, generate_password};

    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (admin, doctor) = patient_and_doctor(&f).await;
    finalised(&f.svc, &doctor, "紹介状の下書き。").await;
    f.svc.evidence_sweep(true).await.unwrap();
    let take_out = |password: &str, purpose: &str| TakeOut {
        password: password.into(),
        purpose: purpose.into(),
        destination: "○○大学病院".into(),
        approved_by: "院長".into(),
    };
    // Refused before anything leaves: a short password, no purpose.
    for (pw, purpose, field) in [
        ("short-pass", "紹介", "password"),
        (&*generate_password(), " ", "purpose"),
    ] {
        let e = f
            .svc
            .export_bundle_encrypted(
                &doctor,
                Scope::Patient("P0001".into()),
                take_out(pw, purpose),
            )
            .await
            .unwrap_err();
        assert_eq!(e.field, Some(field));
    }
    assert!(
        f.svc
            .register_entries(&admin, Register::TakeOut)
            .await
            .unwrap()
            .is_empty()
    );

    let password = generate_password();
    let sealed = f
        .svc
        .export_bundle_encrypted(
            &doctor,
            Scope::Patient("P0001".into()),
            take_out(&password, "紹介先への診療情報提供"),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealed.zip");
    std::fs::write(&file, &sealed).unwrap();
    let seven = seven_zip();
    let wrong = std::process::Command::new(seven)
        .args(["x", "-y", "-pnot-the-password-at-all"])
        .arg(format!("-o{}", dir.path().join("wrong").display()))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "opened with a wrong password");
    let out = std::process::Command::new(seven)
        .args(["x", "-y", &format!("-p{password}")])
        .arg(format!("-o{}", dir.path().display()))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(
        &std::process::Command::new(seven)
            .args(["l", "-slt"])
            .arg(&file)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(listing.contains("AES-256"), "{listing}");
    // Inside: the ordinary bundle, which still verifies with OpenSSL alone.
    let inner = std::fs::read(dir.path().join("mamori-bundle.zip")).unwrap();
    unzip(&inner, dir.path());
    let (ok, text) = verify_sh(dir.path());
    assert!(ok, "{text}");

    // The take-out register names it, and the ledger ties the entry to this very file.
    let entries = f
        .svc
        .register_entries(&admin, Register::TakeOut)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.source, "mamori");
    assert_eq!(e.entry.get("medium"), "encrypted_bundle");
    assert_eq!(e.entry.get("approved_by"), "院長");
    assert!(e.entry.get("taken_by").contains("dr_sato"));
    let events = f.events("register.");
    let saved = events.first().expect("register.saved in the ledger");
    assert_eq!(
        saved["detail"]["bundle_sha256"],
        hex::encode(mamori_evidence::sha256(&sealed))
    );
    assert!(!serde_json::to_string(&events).unwrap().contains(&password));
}

fn openssl_in(dir: &std::path::Path, args: &[&str]) -> String {
    let o = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// OpenSSL's reading of the facility CA's OCSP answer about `signer.der` in `dir`.
async fn ocsp_status(svc: &Arc<Service>, dir: &std::path::Path) -> String {
    openssl_in(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "signer.der",
            "-out",
            "signer.pem",
        ],
    );
    openssl_in(
        dir,
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "signer.pem",
            "-reqout",
            "req.der",
            "-no_nonce",
        ],
    );
    let req = std::fs::read(dir.join("req.der")).unwrap();
    let resp = svc.ocsp_respond(req).await.unwrap();
    std::fs::write(dir.join("resp.der"), resp).unwrap();
    openssl_in(
        dir,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "signer.pem",
        ],
    )
}

/// A facility signing certificate is revoked when it is retired (disabled account, new key):
/// the facility CA's CRL and OCSP answers say so to OpenSSL, and a signature whose proven time
/// is after the revocation fails verification.
#[tokio::test]
async fn a_retired_signing_certificate_is_revoked_in_the_crl_and_ocsp_and_later_signatures_fail() {
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    // OpenSSL checks the answers against the real time; the instance runs on it too.
    f.run_on_real_time();
    let (admin, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "失効前の署名").await;
    let serial = f.svc.signing_status(&doctor).await.unwrap().serial.unwrap();
    let cert_der = f
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .signing_cert_by_serial(&serial)
        .unwrap()
        .unwrap()
        .cert;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, mamori_service::access::ca::ca_pem(&f.data()).unwrap()).unwrap();
    let signer = dir.path().join("signer.der");
    std::fs::write(&signer, &cert_der).unwrap();
    let openssl = |args: &[&str]| openssl_in(dir.path(), args);
    let before = ocsp_status(&f.svc, dir.path()).await;
    assert!(before.contains("signer.pem: good"), "{before}");

    // Disabling the doctor retires (revokes) the certificate.
    f.svc
        .set_account_active(&admin, doctor.account.id, false)
        .await
        .unwrap();
    let after = ocsp_status(&f.svc, dir.path()).await;
    assert!(after.contains("signer.pem: revoked"), "{after}");
    assert!(after.contains("Reason: superseded"), "{after}");
    std::fs::write(dir.path().join("crl.pem"), f.svc.crl_pem(7).await.unwrap()).unwrap();
    let crl = openssl(&[
        "crl", "-in", "crl.pem", "-noout", "-text", "-CAfile", "ca.pem",
    ]);
    assert!(crl.contains("verify OK"), "{crl}");
    assert!(crl.contains(&serial.to_uppercase()), "{serial} in {crl}");
    let chain = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        "crl.pem",
        "-CAfile",
        "ca.pem",
        "signer.pem",
    ]);
    assert!(chain.contains("certificate revoked"), "{chain}");

    // The signature made before stays valid; one dated after the revocation would not be
    // (here: the revocation put before it, as if the key had signed after being revoked).
    let cfg = f.svc.config().clone();
    assert!(report(&f.data(), &cfg, f.clock.now()).passed());
    let _ = id;
    if mamori_testkit::postgres::suite_on_postgresql(
        "backdating a revocation",
        "the edit is made with SQLite directly; the check itself is the same code",
    ) {
        return;
    }
    rusqlite::Connection::open(f.data().join("mamori.db"))
        .unwrap()
        .execute(
            "UPDATE signing_certs SET retired_at = retired_at - 86400000 * 2 WHERE serial = ?1",
            [&serial],
        )
        .unwrap();
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert!(!rep.passed());
    assert!(
        rep.items[0]
            .problems
            .iter()
            .any(|p| p.contains("失効しています")),
        "{rep:?}"
    );
}

/// Records of a kind that needs a qualification (紹介状: 医師 or 歯科医師 by default) are signed
/// only with a certificate whose hcRole says so: the facility CA's statement (allowed unless
/// `evidence.facility_qualifications = false`) or an HPKI one; anything else is refused, with
/// what was needed and found, and recorded.
#[tokio::test]
async fn a_referral_is_signed_only_under_a_doctors_qualification_from_the_certificate() {
    use base64::Engine;
    use rcgen::SigningKey;
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (admin, doctor) = patient_and_doctor(&f).await;
    // The facility CA wrote 医師 into the doctor's certificate, marked as its own statement.
    let st = f.svc.signing_status(&doctor).await.unwrap();
    assert_eq!(
        st.qualification.as_deref(),
        Some("医師（施設CAによる・HPKIではない）")
    );
    let id = finalised_of_kind(&f.svc, &doctor, "referral", "紹介状").await;
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .expect("signed: the facility's statement is accepted by default");
    assert_eq!(
        sig.qualification.as_deref(),
        Some("医師（施設CAによる・HPKIではない）")
    );
    let _ = admin;

    // Asking for HPKI: the same doctor's next referral waits, and the refusal says why.
    let f = reopen(f, |c| {
        c.evidence.dev_tsa = true;
        c.evidence.facility_qualifications = false;
    });
    let doctor = f
        .svc
        .authenticate(&f.svc.login("dr_sato", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    let rep = f
        .svc
        .open_signing_window(&doctor, SIGNING_PIN)
        .await
        .unwrap();
    assert_eq!(rep.signed, 0);
    let rid = finalised_of_kind(&f.svc, &doctor, "referral", "HPKI が要る紹介状").await;
    let v = &f.svc.record(&doctor, rid).await.unwrap().versions[0];
    assert!(v.signature.is_none() && v.awaiting_signature);
    let refused = f
        .events("signing.refused")
        .into_iter()
        .next()
        .expect("the refusal is in the ledger");
    assert_eq!(refused["outcome"], "denied");
    assert_eq!(refused["record"], rid);
    let rep = f.svc.sign_pending(&doctor).await.unwrap();
    assert_eq!((rep.signed, rep.remaining), (0, 1), "{rep:?}");
    assert!(
        rep.failures[0].contains("施設CAによる資格は認めない"),
        "{rep:?}"
    );

    // Signing with an HPKI card instead (outside mamori).
    let f = reopen(f, |c| {
        c.evidence.dev_tsa = true;
        c.evidence.facility_qualifications = false;
        c.evidence.external_signers = "dr_sato".into();
        c.evidence.signer_trust = "hpki-roots.pem".into();
    });
    let doctor = f
        .svc
        .authenticate(&f.svc.login("dr_sato", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    let id = finalised_of_kind(&f.svc, &doctor, "referral", "カードで署名する紹介状").await;

    // Outside (HPKI) certificates: a 薬剤師's is refused for a referral, a 医師's signs it.
    let (mut people, root) = outside_signers(&[
        ("薬剤師 テスト", Some("Pharmacist")),
        ("医師 テスト", Some("Medical Doctor")),
    ]);
    std::fs::write(f.data().join("hpki-roots.pem"), root).unwrap();
    let (dr_pem, dr_key) = people.remove(1);
    let (ph_pem, _) = people.remove(0);
    let e = f
        .svc
        .begin_external_signature(&doctor, id, 1, &ph_pem)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("certificate"));
    assert!(
        e.message.contains("紹介状には 医師・歯科医師 の資格"),
        "{e:?}"
    );
    assert!(e.message.contains("薬剤師（HPKI）"), "{e:?}");
    assert!(e.message.contains("施設CAによる資格は認めない"), "{e:?}");
    let refused = f
        .events("record.signing_requested")
        .into_iter()
        .find(|e| e["outcome"] != "ok")
        .expect("the refusal is in the ledger");
    assert_eq!(refused["detail"]["error"], "invalid_input");
    let task = f
        .svc
        .begin_external_signature(&doctor, id, 1, &dr_pem)
        .await
        .unwrap();
    let tbs = base64::engine::general_purpose::STANDARD
        .decode(&task.to_be_signed)
        .unwrap();
    let signature = base64::engine::general_purpose::STANDARD.encode(dr_key.sign(&tbs).unwrap());
    let done = f
        .svc
        .complete_external_signature(&doctor, id, 1, &signature)
        .await
        .unwrap();
    assert!(done.signed);
    let sig = f.svc.record(&doctor, id).await.unwrap().versions[0]
        .signature
        .clone()
        .unwrap();
    assert_eq!(sig.qualification.as_deref(), Some("医師（HPKI）"));
    // Without the PDF's value the statement is signed and the answer says no PDF was made.
    assert!(
        done.message
            .as_deref()
            .unwrap_or("")
            .contains("pdf_signature_base64"),
        "{done:?}"
    );
    assert_eq!(
        f.svc
            .signed_pdf(&doctor, id, 1, None)
            .await
            .unwrap_err()
            .code
            .as_str(),
        "not_found"
    );

    // The card signs the PDF's signed attributes as well: the letter is signed by the HPKI
    // key that never entered mamori. A value over anything else is refused, and no PDF kept.
    let sign_both = |id: i64, spoil: bool| {
        let (svc, doctor, dr_pem) = (f.svc.clone(), doctor.clone(), dr_pem.clone());
        let key = rcgen::KeyPair::try_from(dr_key.serialize_der().as_slice()).unwrap();
        async move {
            let b64 = base64::engine::general_purpose::STANDARD;
            let task = svc
                .begin_external_signature(&doctor, id, 1, &dr_pem)
                .await
                .unwrap();
            let tbs = b64.decode(&task.to_be_signed).unwrap();
            let pdf_tbs = b64.decode(task.pdf_to_be_signed.unwrap()).unwrap();
            let pdf_value = key.sign(if spoil { &tbs } else { &pdf_tbs }).unwrap();
            svc.complete_external_signature_with_pdf(
                &doctor,
                id,
                1,
                &b64.encode(key.sign(&tbs).unwrap()),
                Some(&b64.encode(pdf_value)),
            )
            .await
            .unwrap()
        }
    };
    let spoiled = finalised_of_kind(&f.svc, &doctor, "referral", "値を取り違えた紹介状").await;
    let done = sign_both(spoiled, true).await;
    assert!(done.signed, "the statement's own value was right");
    assert!(
        done.message
            .as_deref()
            .unwrap_or("")
            .contains("PDF の署名値を検証できません"),
        "{done:?}"
    );
    assert!(f.svc.signed_pdf(&doctor, spoiled, 1, None).await.is_err());
    let letter = finalised_of_kind(&f.svc, &doctor, "referral", "HPKI で署名した紹介状").await;
    let done = sign_both(letter, false).await;
    assert!(done.signed && done.message.is_none(), "{done:?}");
    let pdf = f.svc.signed_pdf(&doctor, letter, 1, None).await.unwrap();
    assert_eq!(pdf.level, "PAdES-B-LTA");
    let anchors = Anchors::load(&f.data(), &f.svc.config().evidence).unwrap();
    let r = mamori_evidence::pades::verify(&pdf.bytes, &anchors.signers, &anchors.tsa).unwrap();
    assert!(
        r[0].signature
            .as_ref()
            .unwrap()
            .signer_subject
            .contains("医師 テスト"),
        "{r:?}"
    );
}

/// An outside (HPKI) signer's certificate that its CA's CRL lists is refused from the
/// revocation on, and a signature proven after the revocation fails verification; one made
/// before stands.
#[tokio::test]
async fn an_outside_signers_crl_refuses_the_certificate_from_its_revocation_on() {
    use base64::Engine;
    use rcgen::SigningKey;
    let b64 = base64::engine::general_purpose::STANDARD;
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.external_signers = "dr_sato".into();
        c.evidence.signer_trust = "hpki-roots.pem".into();
    })
    .await;
    let (mut people, root, ca_key_der) =
        outside_signers_with_ca_key(&[("医師 テスト", Some("Medical Doctor"))]);
    std::fs::write(f.data().join("hpki-roots.pem"), &root).unwrap();
    let (cert_pem, key) = people.remove(0);
    let (_, doctor) = patient_and_doctor(&f).await;
    let sign = |id: i64| {
        let (svc, doctor, cert_pem) = (f.svc.clone(), doctor.clone(), cert_pem.clone());
        let key = rcgen::KeyPair::try_from(key.serialize_der().as_slice()).unwrap();
        async move {
            let task = svc
                .begin_external_signature(&doctor, id, 1, &cert_pem)
                .await?;
            let tbs = b64.decode(&task.to_be_signed).unwrap();
            svc.complete_external_signature(&doctor, id, 1, &b64.encode(key.sign(&tbs).unwrap()))
                .await
        }
    };
    let first = finalised(&f.svc, &doctor, "失効前に外部署名").await;
    assert!(sign(first).await.unwrap().signed);

    // The CA revokes the certificate a day from now; the facility downloads its CRL.
    let cert = mamori_evidence::cert::Cert::from_pem_chain(&cert_pem)
        .unwrap()
        .remove(0);
    let serial = cert
        .parsed
        .tbs_certificate
        .serial_number
        .as_bytes()
        .to_vec();
    let data = f.data();
    let write_crl = |revoked_at: i64| {
        let issuer = rcgen::Issuer::from_ca_cert_pem(
            &root,
            rcgen::KeyPair::try_from(ca_key_der.as_slice()).unwrap(),
        )
        .unwrap();
        let pem = rcgen::CertificateRevocationListParams {
            this_update: time::OffsetDateTime::from_unix_timestamp(revoked_at / 1000).unwrap(),
            next_update: time::OffsetDateTime::from_unix_timestamp(revoked_at / 1000 + 86_400 * 7)
                .unwrap(),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&serial),
                revocation_time: time::OffsetDateTime::from_unix_timestamp(revoked_at / 1000)
                    .unwrap(),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
        .pem()
        .unwrap();
        std::fs::write(data.join("hpki.crl"), pem).unwrap();
    };
    write_crl(f.clock.now() + DAY);
    let f = reopen(f, |c| {
        c.evidence.dev_tsa = true;
        c.evidence.external_signers = "dr_sato".into();
        c.evidence.signer_trust = "hpki-roots.pem".into();
        c.evidence.signer_crls = "hpki.crl".into();
    });
    // Revoked, but not yet: the first signature stands.
    assert!(report(&f.data(), f.svc.config(), f.clock.now()).passed());
    f.clock.advance(2 * DAY);
    let doctor = f
        .svc
        .authenticate(&f.svc.login("dr_sato", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    let second = finalised(&f.svc, &doctor, "失効後に外部署名").await;
    let e = f
        .svc
        .begin_external_signature(&doctor, second, 1, &cert_pem)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("certificate"));
    assert!(e.message.contains("失効しています"), "{e:?}");
    // The first signature, made before the revocation, still verifies.
    assert!(report(&f.data(), f.svc.config(), f.clock.now()).passed());

    // Had the CA revoked it before the first signature, that signature fails verification.
    write_crl(f.clock.now() - 10 * DAY);
    let cfg = f.svc.config().clone();
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert!(!rep.passed());
    assert!(
        rep.items
            .iter()
            .any(|i| i.problems.iter().any(|p| p.contains("失効しています"))),
        "{rep:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finalised_referral_comes_as_a_pdf_its_author_signed_that_pyhanko_accepts() {
    use std::ffi::OsStr;
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (admin, doctor) = patient_and_doctor(&f).await;
    let id = finalised_with(
        &f.svc,
        &doctor,
        "referral",
        "〇〇病院 内科 御侍史",
        "下記の患者様をご紹介いたします。\n傷病名: 高血圧症\n精査加療をお願い申し上げます。",
    )
    .await;
    let pdf = f.svc.signed_pdf(&doctor, id, 1, None).await.unwrap();
    assert_eq!(pdf.level, "PAdES-B-LTA");
    let made = f.events("record.pdf_signed");
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0]["detail"]["pdf_sha256"],
        hex::encode(mamori_evidence::sha256(&pdf.bytes)),
        "the ledger states the file's hash"
    );

    // mamori's own check, then the independent verifiers.
    let anchors = Anchors::load(&f.data(), &f.svc.config().evidence).unwrap();
    let r = mamori_evidence::pades::verify(&pdf.bytes, &anchors.signers, &anchors.tsa).unwrap();
    let info = r[0].signature.as_ref().unwrap();
    assert!(info.signer_subject.contains("dr_sato"));
    // The instance's clock runs days ahead of the machine's: validate as of the time-stamp.
    let at = time::OffsetDateTime::from_unix_timestamp(info.validated_at / 1000 + 60)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&pdf.file_name);
    std::fs::write(&path, &pdf.bytes).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, mamori_service::access::ca::ca_pem(&f.data()).unwrap()).unwrap();
    let (ok, out) = tool(
        "pyhanko",
        &[
            OsStr::new("sign"),
            OsStr::new("validate"),
            OsStr::new("--no-revocation-check"),
            OsStr::new("--validation-time"),
            OsStr::new(&at),
            OsStr::new("--trust"),
            ca.as_os_str(),
            OsStr::new("--trust-replace"),
            OsStr::new("--pretty-print"),
            path.as_os_str(),
        ],
    );
    assert!(ok && out.contains("judged VALID"), "pyhanko: {out}");
    assert!(out.contains("The TSA certificate is trusted."), "{out}");
    let (ok, out) = tool("qpdf", &[OsStr::new("--check"), path.as_os_str()]);
    assert!(ok, "qpdf: {out}");
    let (ok, text) = tool(
        "pdftotext",
        &[
            OsStr::new("-enc"),
            OsStr::new("UTF-8"),
            path.as_os_str(),
            OsStr::new("-"),
        ],
    );
    assert!(ok, "{text}");
    for want in [
        "紹介状",
        "〇〇病院 内科 御侍史",
        "山田 太郎",
        "P0001",
        "高血圧症",
    ] {
        assert!(text.contains(want), "{want:?} not in the PDF: {text}");
    }

    // Who may have it: those who may print and export the kind.
    let clerk = f.user(&admin, "clerk2", "clerk").await;
    assert!(f.svc.signed_pdf(&clerk, id, 1, None).await.is_ok());
    let nurse = f.user(&admin, "nurse1", "nurse").await;
    let e = f.svc.signed_pdf(&nurse, id, 1, None).await.unwrap_err();
    assert_eq!(e.code.as_str(), "forbidden", "{e:?}");
    let downloads = f.events("record.print_export");
    assert!(
        downloads
            .iter()
            .any(|d| d["outcome"] == "denied" && d["detail"]["format"] == "pdf"),
        "the refusal is in the ledger: {downloads:?}"
    );
    // A kind the facility keeps no PDF of.
    let chart = finalised_of_kind(&f.svc, &doctor, "medical_record", "経過記録").await;
    assert_eq!(
        f.svc
            .signed_pdf(&doctor, chart, 1, None)
            .await
            .unwrap_err()
            .code
            .as_str(),
        "not_found"
    );

    let item = |rep: &mamori_service::evidence::read::EvidenceReport| {
        rep.items
            .iter()
            .find(|i| i.record_id == id)
            .cloned()
            .unwrap()
    };
    let cfg = f.svc.config().clone();
    let before = report(&f.data(), &cfg, f.clock.now());
    assert_eq!(item(&before).pdf.as_deref(), Some("PAdES-B-LTA"));
    assert_eq!(item(&before).status, "ok");

    // The export bundle carries the PDF, and its verify.sh checks the author's signature over
    // the PDF's byte ranges with OpenSSL alone; a changed byte in the range fails it.
    let bundle = f
        .svc
        .export_bundle(&doctor, mamori_service::records::export::Scope::Record(id))
        .await
        .unwrap();
    let bdir = tempfile::tempdir().unwrap();
    unzip(&bundle, bdir.path());
    let x = bdir.path().join("x");
    let base = format!("records/{id}/v1");
    assert_eq!(
        std::fs::read(x.join(format!("{base}/signed.pdf"))).unwrap(),
        pdf.bytes
    );
    let (ok, out) = verify_sh(bdir.path());
    assert!(
        ok && out.contains("OK   records/1/v1: 署名付き PDF の電子署名 (PAdES)"),
        "{out}"
    );
    let mut changed = pdf.bytes.clone();
    let at = changed.windows(8).position(|w| w == b"(mamori)").unwrap();
    changed[at + 6] = b'j';
    std::fs::write(x.join(format!("{base}/signed.pdf")), &changed).unwrap();
    let (ok, out) = verify_sh(bdir.path());
    assert!(
        !ok && out.contains("FAIL records/1/v1: 署名付き PDF"),
        "{out}"
    );

    // A changed file is an error, never a download, and evidence verification names it.
    let file = f
        .svc
        .store()
        .blobs()
        .location(&hex::encode(mamori_evidence::sha256(&pdf.bytes)));
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let e = f.svc.signed_pdf(&doctor, id, 1, None).await.unwrap_err();
    assert!(e.message.contains("一致しません"), "{e:?}");
    let after = report(&f.data(), &cfg, f.clock.now());
    assert_eq!(item(&after).status, "failed");
    assert!(
        item(&after)
            .problems
            .iter()
            .any(|p| p.contains("署名付き PDF")),
        "{:?}",
        item(&after).problems
    );
}

#[tokio::test]
async fn a_signed_pdf_gets_a_new_document_time_stamp_before_its_tsa_certificate_expires() {
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.dev_tsa_days = 5 * 365;
        c.evidence.renew_days = 365;
    })
    .await;
    let (_, doctor) = patient_and_doctor(&f).await;
    let id = finalised_of_kind(&f.svc, &doctor, "consent", "手術同意書").await;
    let first = f.svc.signed_pdf(&doctor, id, 1, None).await.unwrap();
    assert_eq!(first.level, "PAdES-B-LTA");

    // Three years on, nothing to renew; four and a half, the TSA certificate expires within a
    // year: fresh validation data and a new document time-stamp, appended.
    f.clock.advance(3 * 365 * DAY);
    assert_eq!(f.svc.evidence_sweep(false).await.unwrap().pdfs_renewed, 0);
    f.clock.advance(545 * DAY);
    assert_eq!(f.svc.evidence_sweep(false).await.unwrap().pdfs_renewed, 1);
    assert_eq!(
        f.svc.evidence_sweep(false).await.unwrap().pdfs_renewed,
        0,
        "once"
    );
    let renewed = f.svc.signed_pdf(&doctor, id, 1, None).await.unwrap();
    assert!(
        renewed.bytes.starts_with(&first.bytes),
        "every earlier revision stays as it was"
    );
    let entry = f.events("record.pdf_renewed").pop().unwrap();
    assert_eq!(
        entry["detail"]["previous_sha256"],
        hex::encode(mamori_evidence::sha256(&first.bytes))
    );
    assert_eq!(
        entry["detail"]["pdf_sha256"],
        hex::encode(mamori_evidence::sha256(&renewed.bytes))
    );
    // Seven years on, long after the first TSA certificate expired, it still verifies.
    f.clock.advance(3 * 365 * DAY);
    let anchors = Anchors::load(&f.data(), &f.svc.config().evidence).unwrap();
    let r = mamori_evidence::pades::verify(&renewed.bytes, &anchors.signers, &anchors.tsa).unwrap();
    assert_eq!(r.len(), 3);
    let rep = report(&f.data(), f.svc.config(), f.clock.now());
    assert!(rep.passed(), "{rep:?}");
}

#[tokio::test]
async fn a_certificate_minted_with_a_copied_ca_key_is_named_by_verification() {
    use rcgen::{CertificateParams, DnType, Issuer, KeyPair, KeyUsagePurpose};
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let (_, doctor) = patient_and_doctor(&f).await;
    let id = finalised(&f.svc, &doctor, "本人が署名した記録").await;
    let cfg = f.svc.config().clone();
    assert!(report(&f.data(), &cfg, f.clock.now()).passed());
    if mamori_testkit::postgres::suite_on_postgresql(
        "replacing a signature",
        "the edit is made in SQLite's file; PostgreSQL's refusal of outside edits is store/tests/pg_store.rs",
    ) {
        return;
    }
    // Whoever copied keys/ca.key issues a certificate in the doctor's name to a key of their
    // own and signs the same statement with it: the chain is the facility CA's, the signature
    // valid.
    let keys = f.data().join("keys");
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(keys.join("ca.key")).unwrap()).unwrap();
    let ca_pem = mamori_service::access::ca::ca_pem(&f.data()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let held = mamori_evidence::cert::Cert::from_pem_chain(&ca_pem).unwrap();
    let stolen = {
        let r = f.svc.store().reader().unwrap();
        r.get().signature(id, 1).unwrap().unwrap()
    };
    let original = mamori_evidence::cades::signer_certificate(&stolen.p7s).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "dr_sato さん");
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    p.not_before = time::OffsetDateTime::from_unix_timestamp(original.not_before() / 1000).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(original.not_after() / 1000).unwrap();
    let minted =
        mamori_evidence::cert::Cert::from_der(p.signed_by(&key, &issuer).unwrap().der()).unwrap();
    let signer = mamori_evidence::cades::Pkcs8Signer::from_pkcs8(&key.serialize_der()).unwrap();
    let forged = mamori_evidence::cades::sign_detached(
        &stolen.statement,
        &minted,
        &held,
        &signer,
        stolen.signed_at,
    )
    .unwrap();
    assert!(
        mamori_evidence::cades::verify_detached(&forged, &stolen.statement, &held, &[]).is_ok(),
        "the forgery is a valid signature under the facility CA"
    );
    let db = rusqlite::Connection::open(f.data().join("mamori.db")).unwrap();
    db.execute_batch("DROP TRIGGER IF EXISTS signatures_p7s_fixed; DROP TRIGGER IF EXISTS signatures_statement_fixed;")
        .unwrap();
    db.execute(
        "UPDATE signatures SET p7s = ?1 WHERE record_id = ?2",
        rusqlite::params![forged, id],
    )
    .unwrap();
    let rep = report(&f.data(), &cfg, f.clock.now());
    assert!(!rep.passed());
    let problems = rep.items[0].problems.join(" / ");
    assert!(
        problems.contains("施設CAが発行を記録していない証明書"),
        "{problems}"
    );
}

//! Signatures under the signer's sole control (issue #24): keys in PKCS#11 tokens (SoftHSM2)
//! under the holder's PIN, signing windows, versions waiting for their author, refusals in the
//! ledger, and no private signing key in the data directory or in a backup.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use mamori_domain::Clock;
use mamori_service::evidence::PinChange;
use mamori_service::instance::open_with;
use mamori_service::records::RecordInput;
use mamori_service::records::patients::NewPatient;
use mamori_service::{Principal, Service};

/// Changing the PIN with the current one.
fn change(pin: &str, current: Option<&str>) -> PinChange {
    PinChange {
        pin: pin.into(),
        current_pin: current.map(str::to_owned),
        ..Default::default()
    }
}
use mamori_store::StoreOptions;

const PIN: &str = "ひみつの PIN 2468";

async fn patient(f: &Fixture, admin: &Principal) {
    let clerk = f.user(admin, "clerk.s", "clerk").await;
    f.svc
        .create_patient(
            &clerk,
            NewPatient {
                id: "P0001".into(),
                name_kanji: "署名 太郎".into(),
                name_kana: "ショメイ タロウ".into(),
                birth_date: "1970-01-01".into(),
                sex: "male".into(),
            },
        )
        .await
        .unwrap();
}

async fn finalised(svc: &Arc<Service>, doctor: &Principal, title: &str) -> i64 {
    let w = svc
        .create_record(
            doctor,
            RecordInput {
                patient_id: "P0001".into(),
                kind: "medical_record".into(),
                title: title.into(),
                body: "本文".into(),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    svc.finalise_record(doctor, w.record_id).await.unwrap();
    w.record_id
}

async fn signed(svc: &Arc<Service>, p: &Principal, id: i64) -> bool {
    svc.record(p, id).await.unwrap().versions[0]
        .signature
        .is_some()
}

/// The newest ledger entry of `action` (JSON).
fn last(f: &Fixture, action: &str) -> serde_json::Value {
    f.events(action)
        .into_iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in the ledger"))
}

#[tokio::test]
async fn a_version_waits_for_its_author_and_only_the_authors_pin_signs_it() {
    mamori_testkit::softhsm();
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let admin = f.admin().await;
    patient(&f, &admin).await;
    let dr = f.user(&admin, "dr.sole", "doctor").await;
    let other = f.user(&admin, "dr.other", "doctor").await;

    // Too short, or one character repeated: refused with the field named, and recorded.
    let e = f
        .svc
        .set_signing_pin(&dr, &PinChange::new_key("1234", PW))
        .await
        .unwrap_err();
    assert_eq!((e.code.as_str(), e.field), ("invalid_input", Some("pin")));
    let e = f
        .svc
        .set_signing_pin(&dr, &PinChange::new_key("11111111", PW))
        .await
        .unwrap_err();
    assert!(e.message.contains("同じ文字"), "{e:?}");
    assert_eq!(last(&f, "signing.pin_set")["outcome"], "failed");

    // Making a key asks for the account's password: an open session alone is not enough.
    let e = f
        .svc
        .set_signing_pin(&dr, &PinChange::new_key(PIN, "not the password"))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("password"), "{e:?}");
    let e = f
        .svc
        .set_signing_pin(
            &dr,
            &PinChange {
                pin: PIN.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("password"), "{e:?}");
    let st = f
        .svc
        .set_signing_pin(&dr, &PinChange::new_key(PIN, PW))
        .await
        .unwrap();
    assert!(st.has_key && st.window_until.is_none(), "{st:?}");
    let pin_set = last(&f, "signing.pin_set");
    assert_eq!(pin_set["outcome"], "ok");
    assert!(
        !pin_set.to_string().contains(PIN),
        "the PIN never reaches the ledger"
    );

    // Finalised without an open window: it waits; the sweep does not sign it.
    let id = finalised(&f.svc, &dr, "窓を開く前").await;
    assert!(!signed(&f.svc, &dr, id).await);
    let awaiting = f.svc.awaiting_signature(&dr).await.unwrap();
    assert_eq!(awaiting.len(), 1);
    assert_eq!(awaiting[0].record_id, id);
    f.svc.evidence_sweep(true).await.unwrap();
    assert!(!signed(&f.svc, &dr, id).await, "no background job signs");

    // The administrator may not sign; another doctor's window signs only their own.
    let e = f.svc.sign_pending(&admin).await.unwrap_err();
    assert_eq!(e.code.as_str(), "forbidden");
    assert_eq!(last(&f, "signing.refused")["outcome"], "denied");
    open_signing_window(&f.svc, &other).await;
    let rep = f.svc.sign_pending(&other).await.unwrap();
    assert_eq!(rep.signed, 0);
    assert!(!signed(&f.svc, &dr, id).await);

    // Without the window, asking to sign is refused and recorded.
    let e = f.svc.sign_pending(&dr).await.unwrap_err();
    assert_eq!(e.code.as_str(), "signing_window_closed");
    let refused = last(&f, "signing.refused");
    assert_eq!(refused["actor"]["login"], "dr.sole");
    assert_eq!(refused["outcome"], "failed");

    // Wrong PINs are refused and recorded; after five, the window stays shut for a while,
    // even for the right PIN.
    for _ in 0..5 {
        let e = f
            .svc
            .open_signing_window(&dr, "違う PIN 0000")
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "signing_pin_wrong");
    }
    let opened = last(&f, "signing.window_opened");
    assert_eq!(
        (
            opened["outcome"].as_str(),
            opened["detail"]["error"].as_str()
        ),
        (Some("failed"), Some("signing_pin_wrong"))
    );
    let e = f.svc.open_signing_window(&dr, PIN).await.unwrap_err();
    assert_eq!(e.code.as_str(), "signing_pin_locked");
    f.clock.advance(16 * 60_000);

    // The right PIN opens the window and signs what waited, in the author's name.
    let rep = f.svc.open_signing_window(&dr, PIN).await.unwrap();
    assert_eq!((rep.signed, rep.remaining), (1, 0), "{rep:?}");
    assert!(signed(&f.svc, &dr, id).await);
    let sig = last(&f, "record.signed");
    assert_eq!(sig["actor"]["login"], "dr.sole");
    assert_eq!(last(&f, "signing.window_opened")["outcome"], "ok");
    let until = f
        .svc
        .signing_status(&dr)
        .await
        .unwrap()
        .window_until
        .unwrap();
    assert_eq!(until, f.clock.now() + 8 * 3_600_000);

    // Inside the window, finalising signs at once (a batch asks once per session).
    let ids: Vec<i64> = futures_ids(&f.svc, &dr, 3).await;
    for id in &ids {
        assert!(signed(&f.svc, &dr, *id).await);
    }

    // Another sign-in of the same person does not share the window.
    let ok = f.svc.login("dr.sole", PW, None).await.unwrap();
    let dr2 = f.svc.authenticate(&ok.token, None).await.unwrap();
    let id2 = finalised(&f.svc, &dr2, "別のセッション").await;
    assert!(!signed(&f.svc, &dr2, id2).await);
    assert!(
        f.svc
            .signing_status(&dr2)
            .await
            .unwrap()
            .window_until
            .is_none()
    );

    // The window closes when it expires, and at sign-out.
    f.clock.advance(8 * 3_600_000 + 1);
    let id3 = finalised(&f.svc, &dr, "期限切れの後").await;
    assert!(!signed(&f.svc, &dr, id3).await);
    f.svc.open_signing_window(&dr, PIN).await.unwrap();
    assert!(signed(&f.svc, &dr, id3).await && signed(&f.svc, &dr, id2).await);
    f.svc.logout(&dr).await.unwrap();
    assert!(
        f.svc
            .signing_status(&dr2)
            .await
            .unwrap()
            .window_until
            .is_none()
    );

    // Changing the PIN needs the current one; forgetting it means a new key.
    let e = f
        .svc
        .set_signing_pin(&dr2, &change("新しい PIN 1357", Some("違う PIN 0000")))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "signing_pin_wrong");
    let before = f.svc.signing_status(&dr2).await.unwrap().serial;
    f.svc
        .set_signing_pin(&dr2, &change("新しい PIN 1357", Some(PIN)))
        .await
        .unwrap();
    assert_eq!(f.svc.signing_status(&dr2).await.unwrap().serial, before);
    assert!(f.svc.open_signing_window(&dr2, PIN).await.is_err());
    f.svc
        .open_signing_window(&dr2, "新しい PIN 1357")
        .await
        .unwrap();
    let st = f
        .svc
        .set_signing_pin(
            &dr2,
            &PinChange {
                new_key: true,
                ..PinChange::new_key("忘れた後の PIN 97531", PW)
            },
        )
        .await
        .unwrap();
    assert_ne!(st.serial, before, "a new key, the old one retired");
    assert!(st.window_until.is_none(), "the old key's window closed");

    // Disabling the account retires its signing certificate.
    let account = dr2.account.id;
    f.svc
        .set_account_active(&admin, account, false)
        .await
        .unwrap();
    let current = f
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .signing_cert(account)
        .unwrap();
    assert!(current.is_none());
}

async fn futures_ids(svc: &Arc<Service>, dr: &Principal, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(finalised(svc, dr, &format!("窓の中 {i}")).await);
    }
    ids
}

/// No file holds a person's private signing key: not the erased legacy key (by its bytes),
/// and no PEM or DER private key at all beyond the instance's own three.
fn assert_no_signing_key(dir: &Path, legacy_pkcs8: &[u8], legacy_scalar: &[u8]) {
    let n =
        mamori_testkit::keys::assert_no_private_signing_key(dir, &[legacy_pkcs8, legacy_scalar]);
    assert!(n > 3, "the walk found the files in {}: {n}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_keys_are_erased_and_no_private_signing_key_is_in_the_data_or_a_backup() {
    if mamori_testkit::postgres::suite_on_postgresql(
        "the data-directory scan",
        "the same files on disk; the database is PostgreSQL's (its dump holds no keys either)",
    ) {
        return;
    }
    mamori_testkit::softhsm();
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let admin = f.admin().await;
    patient(&f, &admin).await;
    let dr = f.user(&admin, "dr.legacy", "doctor").await;

    // A key as releases before the token kept it: a PEM file under keys/signers/ and its
    // certificate current in signing_certs.
    let legacy = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["legacy".into()])
        .unwrap()
        .self_signed(&legacy)
        .unwrap();
    let serial = "4f00000000000000000000000000abcd";
    let signers = f.data().join("keys").join("signers");
    std::fs::create_dir_all(&signers).unwrap();
    std::fs::write(
        signers.join(format!("{serial}.key")),
        legacy.serialize_pem(),
    )
    .unwrap();
    let row = mamori_store::SigningCertRow {
        serial: serial.into(),
        account_id: dr.account.id,
        cert: cert.der().to_vec(),
        source: "facility".into(),
        not_before: f.clock.now() - 1000,
        not_after: f.clock.now() + 86_400_000,
        created_at: f.clock.now() - 1000,
        retired_at: None,
    };
    f.svc
        .store()
        .write(move |tx| -> Result<(), mamori_store::StoreError> { tx.insert_signing_cert(&row) })
        .await
        .unwrap();

    // The next start erases it in one recorded step and retires its certificate.
    let Fixture { dir, svc, clock } = f;
    svc.store().close();
    drop(svc);
    let data = dir.path().join("data");
    let cfg = {
        let mut c = fast_config(&data);
        c.evidence.dev_tsa = true;
        c
    };
    let svc = open_with(&data, clock.clone(), StoreOptions::default(), Some(cfg)).unwrap();
    let f = Fixture { dir, svc, clock };
    assert!(!signers.join(format!("{serial}.key")).exists());
    let migrated = last(&f, "signing.keys_migrated");
    assert_eq!(migrated["detail"]["erased"][0], serial);
    let current = f
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .signing_cert(dr.account.id)
        .unwrap();
    assert!(current.is_none(), "the plain key's certificate is retired");

    // The doctor makes a key in a token and signs; the token files hold it encrypted.
    let ok = f.svc.login("dr.legacy", PW, None).await.unwrap();
    let dr = f.svc.authenticate(&ok.token, None).await.unwrap();
    open_signing_window(&f.svc, &dr).await;
    let id = finalised(&f.svc, &dr, "トークンの鍵で署名").await;
    assert!(signed(&f.svc, &dr, id).await);

    let pkcs8 = legacy.serialize_der();
    // The raw scalar: the OCTET STRING inside the SEC1 structure inside the PKCS#8.
    let at = pkcs8
        .windows(7)
        .position(|w| {
            w == [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]
                || w[..5] == [0x02, 0x01, 0x01, 0x04, 0x20]
        })
        .unwrap();
    let scalar = if pkcs8[at] == 0x30 {
        &pkcs8[at + 7..at + 39]
    } else {
        &pkcs8[at + 5..at + 37]
    };
    assert_no_signing_key(&f.data(), &pkcs8, scalar);
    // The tests' SoftHSM2 token directory (under target/: `mamori` itself keeps the tokens in
    // the data directory, cli/tests/signing_keys.rs): every token of every test, this
    // doctor's among them, holds no key in the clear.
    let conf = std::path::PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap());
    assert_no_signing_key(&conf.parent().unwrap().join("tokens"), &pkcs8, scalar);

    // A backup with the keys, restored: the same.
    let backups = tempfile::tempdir().unwrap();
    let material = mamori_backup::KeyMaterial {
        passphrase: None,
        key_file: Some(mamori_backup::KeyFile::generate()),
    };
    let target = backups.path().join("nas");
    let target = target.to_str().unwrap().to_owned();
    let run = {
        let (data, target, material) = (f.data(), target.clone(), material.clone());
        tokio::task::spawn_blocking(move || {
            mamori_service::backup::run_backup(
                &data,
                &target,
                &material,
                true,
                None,
                &mamori_backup::engine::NoProgress,
            )
        })
        .await
        .unwrap()
        .unwrap()
    };
    let restored = backups.path().join("restored");
    let repo = mamori_service::backup::open_repository(&target, &material).unwrap();
    mamori_backup::restore(
        &repo,
        &run.outcome.snapshot,
        &restored,
        None,
        &mamori_backup::engine::NoProgress,
    )
    .unwrap();
    assert!(
        restored.join("keys").join("ca.key").exists(),
        "a backup with the keys"
    );
    assert_no_signing_key(&restored, &pkcs8, scalar);
}

#[tokio::test]
async fn a_window_that_outlives_its_certificate_signs_nothing_and_says_why() {
    // A day's certificate; a day's window opened 20 hours into it outlives it by 20 hours.
    let f = fixture_with(|c| {
        c.evidence.dev_tsa = true;
        c.evidence.signer_days = 1;
        c.evidence.signing_window_hours = 24;
    })
    .await;
    let admin = f.admin().await;
    patient(&f, &admin).await;
    let doctor = f.signer(&admin, "dr.expiring", "doctor").await;
    let before = finalised(&f.svc, &doctor, "期限内").await;
    assert!(signed(&f.svc, &doctor, before).await);

    f.clock.advance(20 * 3_600_000);
    f.svc
        .open_signing_window(&doctor, SIGNING_PIN)
        .await
        .unwrap();
    f.clock.advance(5 * 3_600_000);
    let after = finalised(&f.svc, &doctor, "期限切れの後").await;
    assert!(
        !signed(&f.svc, &doctor, after).await,
        "an expired certificate signs nothing"
    );
    let outcome = f.svc.sign_version(Some(&doctor), after, 1).await.unwrap();
    assert!(!outcome.signed);
    assert!(
        outcome
            .message
            .as_deref()
            .is_some_and(|m| m.contains("有効期限が切れています")),
        "{outcome:?}"
    );
    // The version waits for its author's new key.
    let waiting = f.svc.awaiting_signature(&doctor).await.unwrap();
    assert!(waiting.iter().any(|w| w.record_id == after), "{waiting:?}");
}

//! The use cases that talk to the outside world, run against fake adapters: no socket is
//! opened, and what mamori sends and records is checked exactly.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use mamori_domain::Millis;
use mamori_service::outside::{
    Failure, MailTransport, Outside, TimeSource, TimeStampTransport, WebhookTransport,
};
use mamori_service::records::RecordInput;
use mamori_service::records::patients::NewPatient;

/// A time source whose NTP answer and kernel state the test sets.
struct FakeTime {
    offset: Mutex<Result<Millis, Failure>>,
    kernel: Mutex<Option<bool>>,
    asked: Mutex<Vec<String>>,
}

impl TimeSource for FakeTime {
    fn ntp(
        &self,
        server: &str,
        _timeout: Duration,
        _now: &dyn Fn() -> Millis,
    ) -> Result<(Millis, Millis), Failure> {
        self.asked.lock().unwrap().push(server.to_owned());
        self.offset.lock().unwrap().clone().map(|o| (o, 3))
    }

    fn kernel_synchronised(&self) -> Option<bool> {
        *self.kernel.lock().unwrap()
    }
}

/// Records what would have gone out; fails when told to.
#[derive(Default)]
struct Recorder {
    hooks: Mutex<Vec<(String, serde_json::Value)>>,
    mails: Mutex<Vec<(String, Vec<String>, String)>>,
    stamps: Mutex<Vec<(String, Vec<u8>)>>,
    fail_hooks: bool,
}

impl WebhookTransport for Recorder {
    fn post(&self, url: &str, body: &serde_json::Value) -> Result<u16, Failure> {
        self.hooks
            .lock()
            .unwrap()
            .push((url.to_owned(), body.clone()));
        if self.fail_hooks {
            Err("HTTP 502".into())
        } else {
            Ok(204)
        }
    }
}

impl MailTransport for Recorder {
    fn send(
        &self,
        _smtp_url: &str,
        from: &str,
        to: &[String],
        mail: &(String, String),
    ) -> Result<usize, Failure> {
        self.mails
            .lock()
            .unwrap()
            .push((from.to_owned(), to.to_vec(), mail.0.clone()));
        Ok(to.len())
    }
}

impl TimeStampTransport for Recorder {
    fn request(&self, url: &str, query: &[u8]) -> Result<Vec<u8>, Failure> {
        self.stamps
            .lock()
            .unwrap()
            .push((url.to_owned(), query.to_vec()));
        Err("connection refused".into())
    }
}

fn outside(time: Arc<FakeTime>, rec: Arc<Recorder>) -> Outside {
    Outside {
        time_stamps: rec.clone(),
        webhooks: rec.clone(),
        mail: rec,
        time,
    }
}

fn fake_time(offset: Result<Millis, Failure>, kernel: Option<bool>) -> Arc<FakeTime> {
    Arc::new(FakeTime {
        offset: Mutex::new(offset),
        kernel: Mutex::new(kernel),
        asked: Mutex::new(Vec::new()),
    })
}

#[tokio::test]
async fn the_clock_verdict_follows_the_time_source() {
    let time = fake_time(Ok(5_000), Some(true));
    let f = fixture_outside(
        |c| {
            c.time.ntp_servers = "ntp.a.example, ntp.b.example".into();
            c.time.max_offset_ms = 1_000;
        },
        Some(outside(time.clone(), Arc::default())),
    )
    .await;
    let s = f.svc.check_clock().await.unwrap();
    assert!(!s.synchronised && s.offset_ms == Some(5_000), "{s:?}");
    // The first server answered, so the second was not asked.
    assert_eq!(*time.asked.lock().unwrap(), ["ntp.a.example"]);

    *time.offset.lock().unwrap() = Ok(12);
    let s = f.svc.check_clock().await.unwrap();
    assert!(s.synchronised, "{s:?}");

    // A kernel that says it is unsynchronised wins over a good NTP answer.
    *time.kernel.lock().unwrap() = Some(false);
    assert!(!f.svc.check_clock().await.unwrap().synchronised);

    // Every change of verdict is a ledger entry: bad → good → bad.
    let verdicts = f.events("time.");
    assert!(verdicts.len() >= 3, "{verdicts:?}");
}

async fn doctor_and_patient(f: &Fixture) -> (mamori_service::Principal, mamori_service::Principal) {
    let admin = f.admin().await;
    let clerk = f.user(&admin, "clerk.o", "clerk").await;
    let doctor = f.signer(&admin, "dr.o", "doctor").await;
    f.svc
        .create_patient(
            &clerk,
            NewPatient {
                id: "P0700".into(),
                name_kanji: "外部 太郎".into(),
                name_kana: "がいぶ たろう".into(),
                birth_date: "1975-05-05".into(),
                sex: "male".into(),
            },
        )
        .await
        .unwrap();
    (admin, doctor)
}

#[tokio::test]
async fn break_glass_is_announced_through_the_ports_and_a_failure_is_ledgered() {
    let rec = Arc::new(Recorder {
        fail_hooks: true,
        ..Default::default()
    });
    let f = fixture_outside(
        |c| {
            c.emergency.webhook_url = "https://hooks.example/mamori".into();
            c.emergency.smtp_url = "smtp://mail.example:25".into();
            c.emergency.mail_from = "mamori@clinic.example".into();
            c.emergency.mail_to = "officer@clinic.example".into();
        },
        Some(outside(fake_time(Ok(0), None), rec.clone())),
    )
    .await;
    let (_, doctor) = doctor_and_patient(&f).await;
    f.svc
        .start_emergency(&doctor, "P0700", "救急搬送、既往歴の確認")
        .await
        .unwrap();
    let mut notified = Vec::new();
    for _ in 0..100 {
        notified = f.events("emergency.notified");
        if notified.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(notified.len(), 2, "{notified:?}");
    let hooks = rec.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].0, "https://hooks.example/mamori");
    assert_eq!(hooks[0].1["patient_id"], "P0700");
    assert_eq!(hooks[0].1["event"], "break_glass");
    let mails = rec.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].1, ["officer@clinic.example"]);
    assert!(mails[0].2.contains("P0700"), "{}", mails[0].2);
    // The refused webhook is in the ledger as a failure with its reason; the mail as sent.
    let text = serde_json::to_string(&notified).unwrap();
    assert!(text.contains("HTTP 502"), "{text}");
    assert!(text.contains("\"channel\":\"email\""), "{text}");
}

#[tokio::test]
async fn an_unreachable_tsa_leaves_the_signature_pending_without_a_socket() {
    let rec = Arc::new(Recorder::default());
    let f = fixture_outside(
        |c| {
            c.evidence.tsa_urls = "https://tsa.example/tsp".into();
            c.evidence.dev_tsa = false;
        },
        Some(outside(fake_time(Ok(0), None), rec.clone())),
    )
    .await;
    let (admin, doctor) = doctor_and_patient(&f).await;
    let w = f
        .svc
        .create_record(
            &doctor,
            RecordInput {
                patient_id: "P0700".into(),
                kind: "medical_record".into(),
                title: "経過".into(),
                body: "本文".into(),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    f.svc.finalise_record(&doctor, w.record_id).await.unwrap();
    let stamps = rec.stamps.lock().unwrap().clone();
    assert!(!stamps.is_empty(), "the TSA was asked");
    assert_eq!(stamps[0].0, "https://tsa.example/tsp");
    // An RFC 3161 TimeStampReq is a DER SEQUENCE.
    assert_eq!(stamps[0].1[0], 0x30);
    let status = f.svc.evidence_status(&admin).await.unwrap();
    assert!(status.pending >= 1, "{status:?}");
}

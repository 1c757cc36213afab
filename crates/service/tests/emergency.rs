//! Break-glass: time-limited access beyond the role with a reason, marked in the ledger,
//! announced on the webhook, and reviewed by a security officer.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;
use mamori_service::records::RecordInput;
use mamori_service::records::patients::NewPatient;

/// A one-request HTTP server on 127.0.0.1 that hands back what it received.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                    tx.send(text).unwrap();
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

#[tokio::test]
async fn break_glass_opens_one_patient_for_a_time_and_is_reviewed() {
    let (url, received) = webhook_receiver();
    let f = fixture_with(|c| {
        c.emergency.minutes = 30;
        c.emergency.webhook_url = url.clone();
    })
    .await;
    let admin = f.admin().await;
    let clerk = f.user(&admin, "clerk.e", "clerk").await;
    let nurse = f.user(&admin, "ns.e", "nurse").await;
    let auditor = f.user(&admin, "aud.e", "auditor").await;
    let rt = f.user(&admin, "rt.e", "radiographer").await;
    f.svc
        .create_patient(
            &clerk,
            NewPatient {
                id: "P0100".into(),
                name_kanji: "救急 太郎".into(),
                name_kana: "きゅうきゅう たろう".into(),
                birth_date: "1960-01-01".into(),
                sex: "male".into(),
            },
        )
        .await
        .unwrap();
    let w = f
        .svc
        .create_record(
            &nurse,
            RecordInput {
                patient_id: "P0100".into(),
                kind: "nursing".into(),
                title: "看護記録".into(),
                body: "アレルギー: ペニシリン".into(),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    f.svc.finalise_record(&nurse, w.record_id).await.unwrap();

    // A radiographer may not read nursing records…
    assert_eq!(
        f.svc.record(&rt, w.record_id).await.unwrap_err().code,
        "forbidden"
    );
    // …until breaking the glass with a reason (a too-short one is refused).
    assert_eq!(
        f.svc
            .start_emergency(&rt, "P0100", "急")
            .await
            .unwrap_err()
            .field,
        Some("reason")
    );
    let e = f
        .svc
        .start_emergency(&rt, "P0100", "救急搬送、造影剤アレルギーの確認")
        .await
        .unwrap();
    assert_eq!(e.expires_at - e.started_at, 30 * 60_000);
    let relog = |login: &'static str| {
        let svc = f.svc.clone();
        async move {
            let ok = svc.login(login, PW, None).await.unwrap();
            svc.authenticate(&ok.token, None).await.unwrap()
        }
    };
    let rt = relog("rt.e").await;
    assert!(rt.emergency_for("P0100").is_some());
    let view = f.svc.record(&rt, w.record_id).await.unwrap();
    assert_eq!(view.versions[0].content.body, "アレルギー: ペニシリン");
    let list = f.svc.patient_records(&rt, "P0100").await.unwrap();
    assert!(list.iter().any(|r| r.kind == "nursing"));
    // Reading is all it grants: no printing.
    assert_eq!(
        f.svc.print_record(&rt, w.record_id).await.unwrap_err().code,
        "forbidden"
    );
    // Only roles with the right may break the glass.
    assert_eq!(
        f.svc
            .start_emergency(&clerk, "P0100", "救急のため確認")
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );

    // The webhook heard of it at once.
    let hook = tokio::task::spawn_blocking(move || {
        received
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
    })
    .await
    .unwrap();
    assert!(hook.starts_with("POST /hook"));
    assert!(hook.contains("\"patient_id\":\"P0100\"") && hook.contains("造影剤アレルギー"));

    // The reads are marked in the ledger; the queue counts them.
    let reads = f
        .svc
        .audit_events(
            &auditor,
            mamori_store::AuditFilter {
                patient: Some("P0100".into()),
                actor: Some(rt.account.id),
                action_prefix: Some("record.read".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let granted: Vec<_> = reads.iter().filter(|r| r.outcome == "ok").collect();
    assert!(!granted.is_empty());
    assert!(granted.iter().all(|r| r.detail["emergency"] == e.id));
    assert!(
        reads.iter().any(|r| r.outcome == "denied"),
        "the refusal before it"
    );
    // The notification is recorded too (it runs in the background).
    let mut notified = false;
    for _ in 0..50 {
        let n = f
            .svc
            .audit_events(
                &auditor,
                mamori_store::AuditFilter {
                    action_prefix: Some("emergency.notified".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if n.iter().any(|x| x.outcome == "ok") {
            notified = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(notified, "webhook delivery recorded");
    let queue = f.svc.emergency_queue(&auditor, false).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].login, "rt.e");
    assert!(queue[0].events >= 2, "{}", queue[0].events);
    assert_eq!(
        f.svc.emergency_queue(&rt, false).await.unwrap_err().code,
        "forbidden"
    );

    // After 30 minutes the access is gone.
    f.clock.advance(31 * 60_000);
    let rt = relog("rt.e").await;
    assert!(rt.emergency.is_empty());
    assert_eq!(
        f.svc.record(&rt, w.record_id).await.unwrap_err().code,
        "forbidden"
    );

    // The security officer closes the review with a comment, once.
    assert_eq!(
        f.svc
            .review_emergency(&auditor, e.id, " ")
            .await
            .unwrap_err()
            .field,
        Some("comment")
    );
    f.svc
        .review_emergency(&auditor, e.id, "救急外来の記録と照合し、正当な利用と確認")
        .await
        .unwrap();
    assert!(
        f.svc
            .emergency_queue(&auditor, false)
            .await
            .unwrap()
            .is_empty()
    );
    let all = f.svc.emergency_queue(&auditor, true).await.unwrap();
    assert_eq!(all[0].reviewer_login.as_deref(), Some("aud.e"));
    assert_eq!(
        f.svc
            .review_emergency(&auditor, e.id, "二度目")
            .await
            .unwrap_err()
            .code,
        "invalid_state"
    );
}

#[tokio::test]
async fn a_sealed_emergency_account_works_once_until_its_password_is_reset() {
    let f = fixture().await;
    let admin = f.admin().await;
    let auditor = f.user(&admin, "aud.s", "auditor").await;
    let sealed = f.user(&admin, "emergency.1", "doctor").await;
    f.svc
        .set_emergency_account(&admin, sealed.account.id, true)
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .set_emergency_account(&auditor, sealed.account.id, false)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    // First use: allowed, announced to the officers' queue, and marked on the session.
    let ok = f.svc.login("emergency.1", PW, None).await.unwrap();
    let p = f.svc.authenticate(&ok.token, None).await.unwrap();
    assert_eq!(p.emergency.len(), 1);
    assert_eq!(p.emergency[0].kind, "account");
    let queue = f.svc.emergency_queue(&auditor, false).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].login, "emergency.1");
    // Second use: refused until new credentials.
    assert_eq!(
        f.svc.login("emergency.1", PW, None).await.unwrap_err().code,
        "account_disabled"
    );
    f.svc
        .reset_password(
            &admin,
            sealed.account.id,
            "new sealed passphrase 2026".into(),
            "封筒を再作成し金庫に保管".into(),
        )
        .await
        .unwrap();
    let again = f
        .svc
        .change_password(
            "emergency.1",
            "new sealed passphrase 2026",
            "sealed again 2026 x",
            None,
        )
        .await
        .unwrap();
    assert!(f.svc.authenticate(&again.token, None).await.is_ok());
    assert_eq!(
        f.svc.emergency_queue(&auditor, false).await.unwrap().len(),
        2
    );
}

/// A one-message SMTP server on 127.0.0.1 that hands back the envelope and the message.
fn smtp_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 8192];
        let mut in_data = false;
        s.write_all(b"220 test ESMTP\r\n").unwrap();
        let mut pending = String::new();
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.push_str(&String::from_utf8_lossy(&buf[..n]));
            while let Some(end) = pending.find("\r\n") {
                let line = pending[..end].to_owned();
                pending.drain(..end + 2);
                seen.push_str(&line);
                seen.push('\n');
                let reply: &[u8] = if in_data {
                    if line == "." {
                        in_data = false;
                        b"250 queued\r\n"
                    } else {
                        continue;
                    }
                } else if line.starts_with("EHLO") {
                    b"250-test\r\n250 8BITMIME\r\n"
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if line.starts_with("QUIT") {
                    s.write_all(b"221 bye\r\n").unwrap();
                    tx.send(seen).unwrap();
                    return;
                } else {
                    b"250 OK\r\n"
                };
                s.write_all(reply).unwrap();
            }
        }
        let _ = tx.send(seen);
    });
    (url, rx)
}

#[tokio::test]
async fn break_glass_is_announced_by_e_mail_to_the_security_officers() {
    let (url, mail) = smtp_receiver();
    let f = fixture_with(|c| {
        c.emergency.smtp_url = url;
        c.emergency.mail_from = "mamori@clinic.example".into();
        c.emergency.mail_to = "officer@clinic.example, director@clinic.example".into();
    })
    .await;
    let admin = f.admin().await;
    let clerk = f.user(&admin, "clerk.m", "clerk").await;
    let auditor = f.user(&admin, "aud.m", "auditor").await;
    let rt = f.user(&admin, "rt.m", "radiographer").await;
    f.svc
        .create_patient(
            &clerk,
            NewPatient {
                id: "P0500".into(),
                name_kanji: "救急 花子".into(),
                name_kana: "きゅうきゅう はなこ".into(),
                birth_date: "1970-01-01".into(),
                sex: "female".into(),
            },
        )
        .await
        .unwrap();
    f.svc
        .start_emergency(&rt, "P0500", "夜間救急、既往歴と内服薬の確認")
        .await
        .unwrap();
    let got =
        tokio::task::spawn_blocking(move || mail.recv_timeout(std::time::Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the mail server received a message");
    assert!(got.contains("MAIL FROM:<mamori@clinic.example>"), "{got}");
    assert!(got.contains("RCPT TO:<officer@clinic.example>"), "{got}");
    assert!(got.contains("RCPT TO:<director@clinic.example>"), "{got}");
    assert!(got.contains("Subject: "), "{got}");
    // The body is UTF-8 text (quoted-printable or base64 by lettre): decode what we can see.
    assert!(
        got.contains("P0500") || got.contains("base64"),
        "patient named or body encoded: {got}"
    );
    // The delivery is recorded in the ledger.
    let mut recorded = false;
    for _ in 0..50 {
        let n = f
            .svc
            .audit_events(
                &auditor,
                mamori_store::AuditFilter {
                    action_prefix: Some("emergency.notified".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if n.iter()
            .any(|x| x.outcome == "ok" && x.detail["channel"] == "email" && x.detail["status"] == 2)
        {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recorded, "e-mail delivery recorded");
}

#[test]
fn the_announcement_names_who_whom_and_why() {
    let row = mamori_store::EmergencyRow {
        id: 7,
        kind: "patient".into(),
        account_id: 3,
        patient_id: "P0500".into(),
        reason: "夜間救急".into(),
        started_at: 0,
        expires_at: 1_800_000,
        ended_at: None,
        reviewed_by: None,
        reviewed_at: None,
        review_comment: None,
    };
    let (subject, body) = mamori_service::access::emergency::emergency_mail(
        "みなと診療所",
        ("rt.m", "放射線 太郎", "診療放射線技師"),
        &row,
    );
    assert!(
        subject.contains("P0500") && subject.contains("放射線 太郎"),
        "{subject}"
    );
    assert!(
        body.contains("夜間救急")
            && body.contains("rt.m")
            && body.contains("監査 › 非常時アクセス")
    );
    assert!(
        mamori_service::outside::smtp::send(
            "not a url",
            "a@b.example",
            &["c@d.example".into()],
            &(subject, body)
        )
        .unwrap_err()
        .contains("smtp_url")
    );
}

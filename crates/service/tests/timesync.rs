//! Trusted time against NTP servers on 127.0.0.1: the offset is measured, a clock too far off
//! or a silent server is "unsynchronised", entries written meanwhile say so, checkpoints carry
//! the state, and a change of verdict is in the ledger.

mod common;

use std::net::UdpSocket;

use common::*;
use mamori_domain::timesync;

/// An SNTP server that answers every request with its clock `offset_ms` ahead of the
/// client's (measured from the request itself, so any client clock works).
fn ntp_server(offset_ms: i64, stratum: u8) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 128];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 48 {
                continue;
            }
            let client_time = timesync::from_ntp(&buf[40..48]);
            let reply = timesync::encode_reply(
                stratum,
                &buf[40..48],
                client_time + offset_ms,
                client_time + offset_ms + 1,
            );
            let _ = sock.send_to(&reply, from);
        }
    });
    addr
}

#[tokio::test]
async fn clock_checks_against_ntp_mark_entries_and_checkpoints() {
    let good = ntp_server(20, 2);
    let f = fixture_with(|c| {
        c.time.ntp_servers = format!("127.0.0.1:9, {good}");
        c.time.timeout_ms = 300;
        c.time.max_offset_ms = 1000;
    })
    .await;
    let admin = f.admin().await;
    // The first server is silent; the second answers, 20 ms ahead.
    let s = f.svc.check_clock().await.unwrap();
    assert_eq!(s.source, format!("ntp {good}"));
    assert!((s.offset_ms.unwrap() - 20).abs() <= 2, "{:?}", s.offset_ms);
    if s.kernel_synchronised != Some(false) {
        assert!(s.synchronised, "{s:?}");
    }
    let cp = f.svc.checkpoint_now().await.unwrap();
    assert!(cp.note.contains("\nclock "), "{}", cp.note);
    // The verdict is in the ledger.
    let events = f
        .svc
        .audit_events(
            &f.user(&admin, "aud.t", "auditor").await,
            mamori_store::AuditFilter {
                action_prefix: Some("time.status".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["source"], format!("ntp {good}"));
}

#[tokio::test]
async fn a_clock_far_off_is_not_trusted_and_entries_say_so() {
    let far = ntp_server(-7_000, 1);
    let f = fixture_with(|c| {
        c.time.ntp_servers = far.clone();
        c.time.max_offset_ms = 1000;
    })
    .await;
    let admin = f.admin().await;
    let s = f.svc.check_clock().await.unwrap();
    assert!(!s.synchronised);
    assert!(s.problem.unwrap().contains("-7000"));
    f.svc.checkpoint_now().await.unwrap();
    assert!(
        f.svc
            .latest_checkpoint()
            .await
            .unwrap()
            .note
            .contains("clock unsynchronised source=ntp_")
    );
    // An entry written now carries the mark.
    let nurse = f.user(&admin, "ns.t", "nurse").await;
    let aud = f.user(&admin, "aud.t2", "auditor").await;
    let _ = nurse;
    let last = f
        .svc
        .audit_events(
            &aud,
            mamori_store::AuditFilter {
                action_prefix: Some("auth.login".into()),
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(last[0].detail["clock"], "unsynchronised");
}

#[tokio::test]
async fn a_server_that_is_itself_unsynchronised_is_not_believed() {
    let lost = ntp_server(0, 0);
    let f = fixture_with(|c| {
        c.time.ntp_servers = lost.clone();
        c.time.timeout_ms = 500;
    })
    .await;
    let s = f.svc.check_clock().await.unwrap();
    assert!(!s.synchronised);
    assert!(s.problem.unwrap().contains("同期していません"), "stratum 0");
}

//! RFC 4998 evidence records: one time-stamp over many objects, renewal in time, and the
//! archive time-stamp checked by OpenSSL against the tree root.

mod common;

use std::ffi::OsStr;

use common::*;
use mamori_evidence::asn1::ArchiveTimeStampChain;
use mamori_evidence::ers::{self, HashAlg, HashTree};
use mamori_evidence::tsp::{self, DevTsa};

fn stamp(tsa: &DevTsa, digest: &[u8], at: i64) -> Vec<u8> {
    let nonce = [3u8; 8];
    let resp = tsa.respond(&tsp::request(digest, &nonce).unwrap(), at, &[1]);
    tsp::token_from_response(&resp, digest, &nonce).unwrap()
}

fn objects(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("record {i} version 1").into_bytes(),
                format!("signature of record {i}").into_bytes(),
            )
        })
        .collect()
}

fn members(alg: HashAlg, o: &(Vec<u8>, Vec<u8>)) -> Vec<Vec<u8>> {
    vec![alg.digest(&o.0), alg.digest(&o.1)]
}

#[test]
fn one_time_stamp_covers_every_object_and_openssl_agrees() {
    let pki = Pki::new("Test CA");
    let h = pki.tsa("TSA", NOW - DAY, NOW + 365 * DAY);
    let tsa = DevTsa::new(&h.pkcs8, h.cert, vec![pki.ca.clone()]).unwrap();
    let alg = HashAlg::Sha256;
    for n in [1usize, 2, 3, 7, 1000] {
        let objs = objects(n);
        let leaves: Vec<u8> = objs
            .iter()
            .flat_map(|o| ers::group_leaf(alg, &members(alg, o)))
            .collect();
        let tree = HashTree::build(alg, leaves).unwrap();
        let token = stamp(&tsa, tree.root(), NOW);
        for i in [0, n / 2, n - 1] {
            let ats =
                ers::archive_time_stamp(alg, tree.reduced(i, &members(alg, &objs[i])), &token)
                    .unwrap();
            let er = ers::encode(vec![vec![ats]]).unwrap();
            let info = ers::verify(
                &er,
                &[&objs[i].0, &objs[i].1],
                std::slice::from_ref(&pki.ca),
            )
            .unwrap();
            assert_eq!(info.proven_since, NOW);
            // Another object is not covered by this record.
            let other = (i + 1) % n;
            if other != i {
                let e =
                    ers::verify(&er, &[&objs[other].0], std::slice::from_ref(&pki.ca)).unwrap_err();
                assert_eq!(e.code, "not_covered", "n={n} i={i}");
            }
            let e = ers::verify(
                &er,
                &[b"tampered".as_slice()],
                std::slice::from_ref(&pki.ca),
            )
            .unwrap_err();
            assert!(
                ["not_covered", "imprint_mismatch"].contains(&e.code),
                "{e:?}"
            );
        }
    }

    // OpenSSL checks the archive time-stamp against the root digest on its own.
    let objs = objects(100);
    let leaves: Vec<u8> = objs
        .iter()
        .flat_map(|o| ers::group_leaf(alg, &members(alg, o)))
        .collect();
    let tree = HashTree::build(alg, leaves).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let h = pki.tsa("TSA now", now - DAY, now + DAY);
    let tsa = DevTsa::new(&h.pkcs8, h.cert, vec![pki.ca.clone()]).unwrap();
    let token = stamp(&tsa, tree.root(), now);
    let dir = tempfile::tempdir().unwrap();
    let tst = write(dir.path(), "root.tst", &token);
    let ca = write(dir.path(), "ca.pem", pki.ca.to_pem().as_bytes());
    let root_hex = hex::encode(tree.root());
    let (ok, out) = run(
        "openssl",
        &[
            OsStr::new("ts"),
            OsStr::new("-verify"),
            OsStr::new("-token_in"),
            OsStr::new("-in"),
            tst.as_os_str(),
            OsStr::new("-digest"),
            OsStr::new(&root_hex),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
        ],
    );
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let wrong = hex::encode(alg.digest(b"not the root"));
    let (ok, _) = run(
        "openssl",
        &[
            OsStr::new("ts"),
            OsStr::new("-verify"),
            OsStr::new("-token_in"),
            OsStr::new("-in"),
            tst.as_os_str(),
            OsStr::new("-digest"),
            OsStr::new(&wrong),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
        ],
    );
    assert!(!ok);
}

#[test]
fn renewals_keep_the_record_valid_across_tsa_expiry_and_algorithm_change() {
    let pki = Pki::new("Test CA");
    let years = |y: i64| NOW + y * 365 * DAY;
    // Three TSA certificates, each valid five years, as a real TSA rotates its keys.
    let tsa = |from: i64| {
        let h = pki.tsa("TSA", from, from + 5 * 365 * DAY);
        DevTsa::new(&h.pkcs8, h.cert, vec![pki.ca.clone()]).unwrap()
    };
    let (tsa1, tsa2, tsa3) = (tsa(years(0) - DAY), tsa(years(4)), tsa(years(8)));
    let alg = HashAlg::Sha256;
    let objs = objects(50);
    let i = 17;
    let leaves: Vec<u8> = objs
        .iter()
        .flat_map(|o| ers::group_leaf(alg, &members(alg, o)))
        .collect();
    let tree = HashTree::build(alg, leaves).unwrap();
    let first = ers::archive_time_stamp(
        alg,
        tree.reduced(i, &members(alg, &objs[i])),
        &stamp(&tsa1, tree.root(), NOW),
    )
    .unwrap();
    let group = [objs[i].0.as_slice(), objs[i].1.as_slice()];
    let anchors = [pki.ca.clone()];

    // Year 4.5: time-stamp renewal before TSA 1 expires, in the same chain.
    let input = ers::timestamp_renewal_input(alg, &first).unwrap();
    let renewal =
        ers::archive_time_stamp(alg, None, &stamp(&tsa2, &input, years(4) + 180 * DAY)).unwrap();
    let chain: ArchiveTimeStampChain = vec![first.clone(), renewal];
    let er = ers::encode(vec![chain.clone()]).unwrap();
    let info = ers::verify(&er, &group, &anchors).unwrap();
    assert_eq!(info.stamps.len(), 2);
    assert_eq!(info.proven_since, NOW);
    assert!(info.renew_before > years(8));

    // Year 8.5: SHA-256 is judged weak; hash-tree renewal with SHA-512 over every object and
    // the sequence so far.
    let alg2 = HashAlg::Sha512;
    let seq = vec![chain.clone()];
    let renewed_members = |o: &(Vec<u8>, Vec<u8>)| {
        vec![
            ers::hashtree_renewal_input(alg2, &o.0, &seq).unwrap(),
            ers::hashtree_renewal_input(alg2, &o.1, &seq).unwrap(),
        ]
    };
    // (Every object has its own sequence in practice; here only object i's is used.)
    let leaves2: Vec<u8> = objs
        .iter()
        .enumerate()
        .flat_map(|(j, o)| {
            if j == i {
                ers::group_leaf(alg2, &renewed_members(o))
            } else {
                alg2.digest(&o.0)
            }
        })
        .collect();
    let tree2 = HashTree::build(alg2, leaves2).unwrap();
    let ats2 = ers::archive_time_stamp(
        alg2,
        tree2.reduced(i, &renewed_members(&objs[i])),
        &stamp(&tsa3, tree2.root(), years(8) + 180 * DAY),
    )
    .unwrap();
    let er2 = ers::encode(vec![chain.clone(), vec![ats2]]).unwrap();
    let info = ers::verify(&er2, &group, &anchors).unwrap();
    assert_eq!(info.stamps.len(), 3);
    assert_eq!(info.stamps[2].1, HashAlg::Sha512);
    assert_eq!(info.proven_since, NOW);

    // A renewal made after the previous TSA certificate expired proves nothing.
    let late =
        ers::archive_time_stamp(alg, None, &stamp(&tsa2, &input, years(5) + 10 * DAY)).unwrap();
    let er_late = ers::encode(vec![vec![first, late]]).unwrap();
    assert_eq!(
        ers::verify(&er_late, &group, &anchors).unwrap_err().code,
        "renewed_too_late"
    );
}

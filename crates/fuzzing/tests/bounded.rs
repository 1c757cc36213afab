//! The fuzz targets on stable, bounded: each runs its seeds, then random inputs and seeds
//! mutated by flips, cuts and splices (proptest), so that CI exercises every parser with
//! hostile input on every run. The long runs are cargo-fuzz's (`fuzz/`, docs/security.md).

use mamori_fuzzing::{TARGETS, Target, target};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A seed after up to eight edits: overwrite a byte, delete a range, insert bytes, or cut.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec(
        (
            0u8..4,
            any::<prop::sample::Index>(),
            any::<u8>(),
            1usize..16,
        ),
        0..8,
    );
    (prop::sample::select(seeds), edits).prop_map(|(mut s, edits)| {
        for (kind, at, byte, len) in edits {
            let i = if s.is_empty() { 0 } else { at.index(s.len()) };
            match kind {
                0 if !s.is_empty() => s[i] ^= byte | 1,
                1 if !s.is_empty() => {
                    let end = (i + len).min(s.len());
                    s.drain(i..end);
                }
                2 => {
                    for _ in 0..len {
                        s.insert(i, byte);
                    }
                }
                _ => s.truncate(i),
            }
        }
        s
    })
}

/// Inputs the long cargo-fuzz runs found (docs/security.md), kept so that they stay fixed.
fn regressions(name: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(name);
    match std::fs::read_dir(dir) {
        Ok(d) => d
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn run(t: &Target, cases: u32) {
    let mut seeds = (t.seeds)();
    assert!(!seeds.is_empty(), "{} has seeds", t.name);
    seeds.extend(regressions(t.name));
    for s in &seeds {
        (t.run)(s);
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mutated(seeds),];
    let ran = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |input| {
            (t.run)(&input);
            ran.set(ran.get() + 1);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", t.name));
    assert!(
        ran.get() >= cases,
        "{}: {} of {cases} cases ran",
        t.name,
        ran.get()
    );
}

macro_rules! bounded {
    ($($name:ident: $cases:expr),* $(,)?) => {
        $(#[test] fn $name() { run(target(stringify!($name)), $cases); })*

        #[test]
        fn every_target_has_a_bounded_test() {
            let here = [$(stringify!($name)),*];
            for t in TARGETS {
                assert!(here.contains(&t.name), "{} has no bounded test", t.name);
            }
        }
    };
}

bounded! {
    upload_type: 2000,
    asset_csv: 1000,
    jp_pint_invoice: 1000,
    hc_role: 2000,
    signer_crl: 500,
    pades_pdf: 300,
    fhir_resource: 2000,
    client_assertion: 2000,
    catalogue_toml: 300,
    multipart_form: 1000,
    api_json: 400,
    tsp_response: 1000,
    ocsp_request: 1000,
    certificate: 1000,
    pkcs12: 100,
    webauthn: 1000,
    cades_signature: 1000,
    evidence_record: 1000,
    backup_manifest: 1000,
    backup_restore: 200,
    forwarded_for: 2000,
    sntp_reply: 2000,
}

/// cargo-fuzz has a binary for every target, so none is fuzzed only in CI's short runs.
#[test]
fn every_target_is_a_cargo_fuzz_binary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");
    let manifest = std::fs::read_to_string(format!("{dir}/Cargo.toml")).unwrap();
    for t in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "{}",
            t.name
        );
        let src = std::fs::read_to_string(format!("{dir}/fuzz_targets/{}.rs", t.name)).unwrap();
        assert!(
            src.contains(&format!("target(\"{}\")", t.name)),
            "{}",
            t.name
        );
    }
}

//! The stated minimum Rust version is true (issue #17.8). Only one toolchain is on the build
//! machine, so it is checked the way cargo-msrv's lighter modes do: every crate of the
//! workspace declares the workspace's `rust-version` (so clippy's `incompatible_msrv`, run with
//! `-D warnings` in CI, refuses any standard-library item newer than it), and no dependency
//! in the lock file asks for a newer compiler than we state.

use std::process::Command;

fn version(v: &str) -> (u64, u64, u64) {
    let mut p = v.split('.').map(|x| x.parse::<u64>().unwrap_or(0));
    (
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
    )
}

#[test]
fn every_crate_states_the_msrv_and_no_dependency_needs_a_newer_one() {
    // Only what builds on this machine: a lock file also names crates for other platforms
    // (UEFI, WASI) that an offline cache never downloaded.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let o = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let members: Vec<&str> = m["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let packages = m["packages"].as_array().unwrap();
    let ours: Vec<&serde_json::Value> = packages
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap()))
        .collect();
    assert!(ours.len() >= 10, "{} workspace crates", ours.len());
    let msrv = ours[0]["rust_version"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    for p in &ours {
        assert_eq!(
            p["rust_version"].as_str(),
            Some(msrv.as_str()),
            "{} must state rust-version.workspace = true",
            p["name"]
        );
    }
    let newer: Vec<String> = packages
        .iter()
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            (version(v) > version(&msrv))
                .then(|| format!("{} {} needs {v}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        newer.is_empty(),
        "the workspace states {msrv}, but: {newer:?}"
    );
}

//! The packaged systemd unit (`packaging/mamori.service`) is hardened: `systemd-analyze
//! security` rates it OK or better (exposure <= 2.0) offline, and it keeps the settings the
//! issue names, so a later edit cannot quietly widen what the service may do.

use std::path::Path;
use std::process::Command;

fn unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/mamori.service")
}

#[test]
fn the_service_unit_is_rated_ok_by_systemd_analyze() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(unit())
        .output()
        .expect("systemd-analyze is required (apt-get install systemd; .ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let level = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for mamori.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        out.status.success() && level <= 2.0,
        "exposure {level}:\n{text}"
    );
}

#[test]
fn the_service_unit_keeps_its_hardening() {
    let text = std::fs::read_to_string(unit()).unwrap();
    for setting in [
        "User=mamori",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mamori",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "UMask=0077",
    ] {
        assert!(text.contains(setting), "{setting:?} missing from the unit");
    }
}

/// The README's first command, `cargo run --release -- demo`, works only while `mamori` is the
/// workspace's one binary: any other (a tool, a seed writer) belongs in `examples/`.
#[test]
fn mamori_is_the_workspaces_only_binary() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bins: Vec<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bins, ["mamori"], "cargo run -- demo would ask which binary");
}

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

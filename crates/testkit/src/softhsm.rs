//! SoftHSM2 for the tests' signing keys: Debian's module, with its token directory under the
//! workspace's `target/softhsm2/` (named by `SOFTHSM2_CONF` in `.cargo/config.toml`; SoftHSM2
//! reads nothing else). Tokens are labelled by their key's random serial, so the tests of many
//! processes share the directory without meeting; tokens a day old are removed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The SoftHSM2 module, its configuration written. Panics with what to install when Debian's
/// `softhsm2` package is missing: signing keys live nowhere else.
pub fn softhsm() -> PathBuf {
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is needed for the signing tests: apt-get install softhsm2");
    let conf = PathBuf::from(
        std::env::var_os("SOFTHSM2_CONF")
            .expect("SOFTHSM2_CONF is set by .cargo/config.toml; run the tests with cargo"),
    );
    let dir = conf.parent().expect("a directory").to_owned();
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    if !conf.exists() {
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        );
        // Written whole under another name, then renamed: a concurrent test process never reads
        // half a file.
        let tmp = dir.join(format!("softhsm2.conf.{}", std::process::id()));
        std::fs::write(&tmp, text).expect("softhsm2.conf");
        std::fs::rename(&tmp, &conf).expect("softhsm2.conf");
    }
    let old = SystemTime::now() - Duration::from_secs(86_400);
    if let Ok(entries) = std::fs::read_dir(&tokens) {
        for e in entries.flatten() {
            if e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < old)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    module
}

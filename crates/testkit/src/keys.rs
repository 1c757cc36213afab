//! The search for private keys on disk: a data directory, a restored backup or a token
//! directory must hold no person's private signing key in the clear.

use std::path::Path;

/// The instance's own keys, which are not anyone's signature (facility CA, ledger,
/// development TSA): named so the search passes over them.
pub const INSTANCE_KEYS: [&str; 3] = ["ca.key", "ledger.key", "dev-tsa.key"];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Walks `dir` and panics, naming the file, on a PEM private key, a DER P-256 private key
/// (SEC1 or PKCS#8), or any of `known` (the bytes of keys that must be gone), in any file but
/// the [`INSTANCE_KEYS`]. Returns how many files it read.
pub fn assert_no_private_signing_key(dir: &Path, known: &[&[u8]]) -> usize {
    let sec1 = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    let pkcs8_ec = [
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    ];
    let (mut n, mut stack) = (0, vec![dir.to_owned()]);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .expect("a readable directory")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            n += 1;
            let bytes = std::fs::read(&p).expect("a readable file");
            for k in known {
                assert!(!contains(&bytes, k), "a known key in {}", p.display());
            }
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if INSTANCE_KEYS.contains(&name.as_str()) {
                continue;
            }
            for needle in [&b"PRIVATE KEY"[..], &sec1, &pkcs8_ec] {
                assert!(
                    !contains(&bytes, needle),
                    "a private key in {}",
                    p.display()
                );
            }
        }
    }
    n
}

//! Restore from a damaged repository: one object of a small, real backup (its configuration,
//! key slot, index, pack or snapshot) is replaced or altered by the input, and a restore must
//! either refuse with an error or give back exactly the files that were backed up.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ed25519_dalek::SigningKey;
use mamori_backup::engine::NoProgress;
use mamori_backup::keys::KdfParams;
use mamori_backup::target::DirTarget;
use mamori_backup::{KeyMaterial, Repository, Source};

const CHEAP: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

const FILES: [(&str, &[u8]); 3] = [
    ("mamori.db", "診療録の本文。".as_bytes()),
    ("blobs/ab/cdef", b"%PDF-1.7 an attachment"),
    (
        "keys/ledger.key",
        b"0000000000000000000000000000000000000000000000000000000000000000",
    ),
];

struct Fixture {
    _dir: tempfile::TempDir,
    target: PathBuf,
    snapshot: String,
    /// Every object of the repository with its bytes, to put back after each run.
    objects: Vec<(PathBuf, Vec<u8>)>,
}

fn material() -> KeyMaterial {
    KeyMaterial {
        passphrase: Some("correct horse battery staple".to_string().into()),
        key_file: None,
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("a directory").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn fixture() -> &'static Mutex<Fixture> {
    static F: OnceLock<Mutex<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (data, target) = (dir.path().join("data"), dir.path().join("target"));
        let mut sources = Vec::new();
        for (name, body) in FILES {
            let p = data.join(name);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, body).expect("write");
            sources.push(Source::file(name, p));
        }
        let (repo, _) =
            Repository::open_or_init(Box::new(DirTarget::new(&target)), &material(), CHEAP)
                .expect("a repository");
        let out = mamori_backup::backup(
            &repo,
            &sources,
            serde_json::json!({"ledger": {"size": 1}}),
            &SigningKey::from_bytes(&[9; 32]),
            &NoProgress,
        )
        .expect("a backup");
        let mut paths = Vec::new();
        files_under(&target, &mut paths);
        paths.retain(|p| !p.to_string_lossy().contains("/locks/"));
        paths.sort();
        let objects = paths
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).expect("read");
                (p, b)
            })
            .collect();
        Mutex::new(Fixture {
            _dir: dir,
            target,
            snapshot: out.snapshot,
            objects,
        })
    })
}

static LAST_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the last [`damaged_restore`] restored (for the test that the fixture is sound).
pub fn last_restore_succeeded() -> bool {
    LAST_OK.load(std::sync::atomic::Ordering::Relaxed)
}

/// The objects of the fixture's repository, for seeds: `[index, mode, bytes…]`.
pub fn seeds() -> Vec<Vec<u8>> {
    let f = fixture().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for (i, (_, body)) in f.objects.iter().enumerate() {
        let mut s = vec![i as u8, 0];
        s.extend_from_slice(body);
        out.push(s);
        out.push(vec![i as u8, 1, 0x01, 0x00, 0x80]);
        out.push(vec![i as u8, 2, 0x10]);
    }
    out
}

/// `data[0]` chooses the object; `data[1]` how it is damaged: 0 replaced by the rest, 1 the
/// rest XORed into it (a few flipped bits), 2 cut to `data[2]`'s share of its length.
pub fn damaged_restore(data: &[u8]) {
    let [which, mode, rest @ ..] = data else {
        return;
    };
    let f = fixture().lock().unwrap_or_else(|e| e.into_inner());
    let (path, original) = &f.objects[usize::from(*which) % f.objects.len()];
    let damaged = match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut b = original.clone();
            for (i, x) in rest.iter().enumerate().take(64) {
                if !b.is_empty() {
                    let at = (i * 7919 + usize::from(*x)) % b.len();
                    b[at] ^= x | 1;
                }
            }
            b
        }
        _ => {
            let keep = rest
                .first()
                .map_or(0, |k| original.len() * usize::from(*k) / 256);
            original[..keep].to_vec()
        }
    };
    std::fs::write(path, &damaged).expect("damage");
    let dest = tempfile::tempdir().expect("a temporary directory");
    let out = dest.path().join("restored");
    let result = Repository::open(Box::new(DirTarget::new(&f.target)), &material())
        .and_then(|repo| mamori_backup::restore(&repo, &f.snapshot, &out, None, &NoProgress));
    std::fs::write(path, original).expect("repair");
    LAST_OK.store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
    if result.is_ok() {
        for (name, body) in FILES {
            assert_eq!(
                std::fs::read(out.join(name)).expect("restored"),
                body,
                "a restore that succeeded gave back other bytes for {name}"
            );
        }
    } else {
        assert!(!out.exists(), "a failed restore left a directory behind");
    }
}

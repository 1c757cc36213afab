//! A file backed up in fixed parts: an incremental reads only the parts its source says
//! changed, takes the rest from the parent, and still restores exactly the file with the
//! whole-file hash a restore checks. When the source cannot vouch (another change map, none at
//! all), or after `FULL_EVERY` runs, everything is read again.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use mamori_backup::engine::NoProgress;
use mamori_backup::keys::KdfParams;
use mamori_backup::paged::{FULL_EVERY, PART};
use mamori_backup::target::DirTarget;
use mamori_backup::*;
use rand_core::{OsRng, RngCore};

/// An in-memory file that knows which parts changed since each mark.
struct Fake {
    data: Vec<u8>,
    mark: Option<PageMark>,
    /// The parts written after each round: round r's entry lists what changed going to r.
    history: Vec<Vec<usize>>,
}

struct Shared(Mutex<Fake>);

impl PagedFile for Shared {
    fn len(&self) -> u64 {
        self.0.lock().unwrap().data.len() as u64
    }
    fn mark(&self) -> Option<PageMark> {
        self.0.lock().unwrap().mark.clone()
    }
    fn changed_since(&self, since: &PageMark, part: u64) -> Option<Vec<bool>> {
        let f = self.0.lock().unwrap();
        let now = f.mark.as_ref()?;
        if now.map != since.map {
            return None;
        }
        let mut out = vec![false; (f.data.len() as u64).div_ceil(part) as usize];
        for round in (since.round + 1)..=now.round {
            for p in &f.history[round as usize] {
                out[*p] = true;
            }
        }
        Some(out)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let f = self.0.lock().unwrap();
        buf.copy_from_slice(&f.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
}

impl Shared {
    /// Changes a few bytes in `parts` and moves to the next round.
    fn change(&self, parts: &[usize]) {
        let mut f = self.0.lock().unwrap();
        for p in parts {
            let at = *p * PART as usize + 100;
            f.data[at] ^= 0xff;
        }
        let mut m = f.mark.clone().unwrap();
        m.round += 1;
        f.history.push(parts.to_vec());
        f.mark = Some(m);
    }
}

const CHEAP: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

fn repo(dir: &Path) -> Repository {
    let k = KeyMaterial {
        passphrase: Some("correct horse battery staple".to_string().into()),
        key_file: None,
    };
    Repository::open_or_init(Box::new(DirTarget::new(dir)), &k, CHEAP)
        .map(|(r, _)| r)
        .unwrap()
}

fn run(repo: &Repository, file: &Arc<Shared>, signer: &SigningKey) -> BackupOutcome {
    let src: Arc<dyn PagedFile> = file.clone();
    backup(
        repo,
        &[Source::paged("mamori.db", src)],
        serde_json::json!({}),
        signer,
        &NoProgress,
    )
    .unwrap()
}

fn restored(repo: &Repository, snapshot: &str, to: &Path) -> Vec<u8> {
    let _ = fs::remove_dir_all(to);
    restore(repo, snapshot, to, None, &NoProgress).unwrap();
    fs::read(to.join("mamori.db")).unwrap()
}

#[test]
fn an_incremental_reads_only_changed_parts_and_restores_the_exact_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let signer = SigningKey::from_bytes(&[7; 32]);
    let mut data = vec![0u8; 40 * PART as usize + 8192];
    OsRng.fill_bytes(&mut data);
    let file = Arc::new(Shared(Mutex::new(Fake {
        data: data.clone(),
        mark: Some(PageMark {
            map: "m1".into(),
            round: 0,
        }),
        history: vec![vec![]],
    })));
    let full = run(&repo, &file, &signer);
    assert_eq!(full.read_bytes, data.len() as u64);
    let m = repo
        .load_snapshot(&full.snapshot)
        .unwrap()
        .verified(None)
        .unwrap();
    assert_eq!(m.files[0].blake3, blake3::hash(&data).to_hex().to_string());
    assert_eq!(m.files[0].paged.as_ref().unwrap().cvs.len(), 41);

    // Two parts change and the file grows: those parts and the last two are read.
    file.change(&[3, 17]);
    {
        let mut f = file.0.lock().unwrap();
        f.data.extend_from_slice(&[9u8; 3 * 4096]);
    }
    let incr = run(&repo, &file, &signer);
    assert_eq!(
        incr.read_bytes,
        2 * PART + 8192 + 3 * 4096,
        "two changed parts and the last, shorter one (8 KiB before, now 20 KiB)"
    );
    let now = file.0.lock().unwrap().data.clone();
    assert!(restored(&repo, &incr.snapshot, &tmp.path().join("r1")) == now);
    let m = repo
        .load_snapshot(&incr.snapshot)
        .unwrap()
        .verified(None)
        .unwrap();
    assert_eq!(m.files[0].blake3, blake3::hash(&now).to_hex().to_string());
    // The earlier snapshot still restores the earlier file.
    assert!(restored(&repo, &full.snapshot, &tmp.path().join("r0")) == data);

    // Nothing changed: nothing is read.
    file.change(&[]);
    assert_eq!(run(&repo, &file, &signer).read_bytes, 0);

    // A source that cannot vouch (another map, or none) is read in full.
    file.0.lock().unwrap().mark = Some(PageMark {
        map: "m2".into(),
        round: 9,
    });
    assert_eq!(run(&repo, &file, &signer).read_bytes, now.len() as u64);
    file.0.lock().unwrap().mark = None;
    assert_eq!(run(&repo, &file, &signer).read_bytes, now.len() as u64);
    let latest = run(&repo, &file, &signer);
    assert!(restored(&repo, &latest.snapshot, &tmp.path().join("r2")) == now);
}

#[test]
fn every_full_every_th_run_reads_everything_again() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let signer = SigningKey::from_bytes(&[7; 32]);
    let file = Arc::new(Shared(Mutex::new(Fake {
        data: vec![1u8; 4 * PART as usize],
        mark: Some(PageMark {
            map: "m".into(),
            round: 0,
        }),
        history: vec![vec![]],
    })));
    let mut reads = Vec::new();
    for _ in 0..FULL_EVERY + 1 {
        reads.push(run(&repo, &file, &signer).read_bytes);
        file.change(&[]);
    }
    let full = 4 * PART;
    assert_eq!(reads[0], full);
    assert!(
        reads[1..FULL_EVERY as usize].iter().all(|r| *r == 0),
        "{reads:?}"
    );
    assert_eq!(reads[FULL_EVERY as usize], full, "{reads:?}");
}

#[test]
fn a_file_of_one_part_is_always_read_and_hashes_right() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let signer = SigningKey::from_bytes(&[7; 32]);
    let data = b"small database".repeat(100);
    let file = Arc::new(Shared(Mutex::new(Fake {
        data: data.clone(),
        mark: Some(PageMark {
            map: "m".into(),
            round: 0,
        }),
        history: vec![vec![]],
    })));
    run(&repo, &file, &signer);
    file.change(&[]);
    let again = run(&repo, &file, &signer);
    assert_eq!(again.read_bytes, data.len() as u64);
    assert!(restored(&repo, &again.snapshot, &tmp.path().join("r")) == data);
}

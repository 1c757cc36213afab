//! Where a repository lives. Objects are named, written once and never rewritten; a target
//! that can enforce that (S3 Object Lock, WORM media) is asked to.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::error::{BackupError, Result};
use crate::seal::random_bytes;

pub trait Target: Send + Sync {
    /// How the target is shown to people (never with credentials).
    fn describe(&self) -> String;
    /// Stores a new object. Names are content hashes or unique ids, so an existing object
    /// with the same name already holds these bytes and is left alone.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<()>;
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Names under `prefix` (e.g. "snapshots/"), in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Removes an object; `BackupError::Locked` while the target forbids it.
    fn delete(&self, name: &str) -> Result<()>;
    /// Days a new object cannot be deleted or overwritten (None: the target cannot enforce it).
    fn lock_days(&self) -> Option<u32> {
        None
    }
    /// Earlier versions of an object, newest first (a versioned bucket keeps the original
    /// when someone overwrites it); `range` as in `get_range`.
    fn older_copies(&self, _name: &str, _range: Option<(u64, u64)>) -> Result<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }
    /// Refuses a target that cannot keep the promises made for it (a bucket without Object
    /// Lock when locks were asked for). Called before a repository is created there.
    fn check_ready(&self) -> Result<()> {
        Ok(())
    }
    /// Keeps an object locked until at least `until` (objects still referenced by newer
    /// snapshots must outlive their own first retention).
    fn extend_lock(&self, _name: &str, _until: OffsetDateTime) -> Result<()> {
        Ok(())
    }
}

/// Opens `spec`: a directory path, or `s3://bucket/prefix?endpoint=…&region=…&lock_days=…`.
pub fn open_target(spec: &str) -> Result<Box<dyn Target>> {
    if spec.starts_with("s3://") {
        Ok(Box::new(crate::s3::S3Target::from_url(spec)?))
    } else if spec.contains("://") {
        Err(BackupError::Invalid(format!(
            "バックアップ先 {spec} の形式が分かりません（ディレクトリか s3://バケット/接頭辞）"
        )))
    } else {
        Ok(Box::new(DirTarget::new(spec)))
    }
}

/// A directory: local disk, a NAS mount, or removable media that is then disconnected.
pub struct DirTarget {
    root: PathBuf,
}

impl DirTarget {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirTarget { root: root.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(BackupError::Invalid(format!("不正なオブジェクト名 {name}")));
        }
        Ok(self.root.join(name))
    }
}

fn missing_or_io(e: std::io::Error, name: &str) -> BackupError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BackupError::Missing {
            what: "オブジェクト",
            name: name.to_owned(),
        }
    } else {
        BackupError::Io(format!("{name}: {e}"))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(name)?;
        if dest.exists() {
            return Ok(());
        }
        let dir = dest.parent().expect("object has a parent");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tmp-{}", hex::encode(random_bytes::<6>())));
        {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        // Read-only on disk: not WORM, but a slip of a tool or a hand does not rewrite it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o400))?;
        }
        fs::rename(&tmp, &dest)?;
        sync_dir(dir)?;
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        fs::read(self.path(name)?).map_err(|e| missing_or_io(e, name))
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut f = File::open(self.path(name)?).map_err(|e| missing_or_io(e, name))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                BackupError::corrupt("パック", name, "途中で切れています")
            } else {
                BackupError::Io(format!("{name}: {e}"))
            }
        })?;
        Ok(buf)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join(prefix.trim_end_matches('/'));
        if !base.exists() {
            return Ok(out);
        }
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                } else if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    let rel = path
                        .strip_prefix(&self.root)
                        .expect("under root")
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push(rel);
                }
            }
        }
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        match fs::remove_file(self.path(name)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(BackupError::Locked(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_objects_are_written_once_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let t = DirTarget::new(dir.path());
        t.put("packs/ab/abcdef", b"one").unwrap();
        t.put("packs/ab/abcdef", b"two").unwrap();
        assert_eq!(t.get("packs/ab/abcdef").unwrap(), b"one");
        assert_eq!(t.get_range("packs/ab/abcdef", 1, 2).unwrap(), b"ne");
        assert!(matches!(
            t.get_range("packs/ab/abcdef", 2, 5),
            Err(BackupError::Corrupt { .. })
        ));
        assert!(matches!(
            t.get("packs/zz"),
            Err(BackupError::Missing { .. })
        ));
        assert_eq!(t.list("packs/").unwrap(), vec!["packs/ab/abcdef"]);
        assert!(t.list("snapshots/").unwrap().is_empty());
        assert!(t.put("../escape", b"x").is_err());
        t.delete("packs/ab/abcdef").unwrap();
        assert!(t.list("packs/").unwrap().is_empty());
    }
}

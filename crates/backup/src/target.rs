//! Where a repository lives. Objects are named, written once and never rewritten; a target
//! that can enforce that (S3 Object Lock, WORM media) is asked to.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
    /// Like `put`, for the many packs of one run: the target may defer making them durable
    /// until `sync` (which is called before anything refers to them).
    fn put_deferred(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(name, bytes)
    }
    /// Makes everything `put_deferred` wrote durable.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
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
    /// Stores a repository lock (see `lock`): never write-once, so that it can go away.
    fn put_lock(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(name, bytes)
    }
    /// Removes a repository lock (a versioned bucket may only hide it).
    fn delete_lock(&self, name: &str) -> Result<()> {
        self.delete(name)
    }
    /// Names under `prefix` whose newest version is there (not deleted or hidden).
    fn list_current(&self, prefix: &str) -> Result<Vec<String>> {
        self.list(prefix)
    }
    /// Keeps an object locked until at least `until` (objects still referenced by newer
    /// snapshots must outlive their own first retention).
    fn extend_lock(&self, _name: &str, _until: OffsetDateTime) -> Result<()> {
        Ok(())
    }
}

/// A directory: local disk, a NAS mount, or removable media that is then disconnected.
pub struct DirTarget {
    root: PathBuf,
    /// Written by `put_deferred`, not yet fsynced.
    unsynced: std::sync::Mutex<Vec<PathBuf>>,
    /// Packs open for reading: a restore reads thousands of chunks from a few packs. A target
    /// lives for one command (or one scheduled run), so a file replaced underneath is seen by
    /// the next one.
    open_files: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<File>>>,
}

impl DirTarget {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirTarget {
            root: root.into(),
            unsynced: std::sync::Mutex::new(Vec::new()),
            open_files: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn open_cached(&self, name: &str) -> Result<std::sync::Arc<File>> {
        let mut open = self.open_files.lock().expect("open files");
        if let Some(f) = open.get(name) {
            return Ok(f.clone());
        }
        let f =
            std::sync::Arc::new(File::open(self.path(name)?).map_err(|e| missing_or_io(e, name))?);
        if open.len() >= 256 {
            open.clear();
        }
        open.insert(name.to_owned(), f.clone());
        Ok(f)
    }

    /// Writes `bytes` to a new object through a temporary name; fsyncs when `durable`.
    fn write(&self, name: &str, bytes: &[u8], durable: bool) -> Result<()> {
        let dest = self.path(name)?;
        if dest.exists() {
            return Ok(());
        }
        let dir = dest.parent().expect("object has a parent");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tmp-{}", hex::encode(random_bytes::<6>())));
        if durable {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        } else {
            direct::write_new(&tmp, bytes)?;
        }
        // Read-only on disk: not WORM, but a slip of a tool or a hand does not rewrite it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o400))?;
        }
        fs::rename(&tmp, &dest)?;
        if durable {
            sync_dir(dir)?;
        } else {
            self.unsynced.lock().expect("unsynced list").push(dest);
        }
        Ok(())
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if !is_plain_relative(name) {
            return Err(BackupError::Invalid(format!("不正なオブジェクト名 {name}")));
        }
        Ok(self.root.join(name))
    }
}

/// A '/'-separated relative path that cannot climb out of the directory it is joined to.
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
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

/// Writes a new file past the page cache where the filesystem allows (see `direct`).
pub fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    direct::write_new(path, bytes)
}

/// Asks the kernel to start writing a file out now, without waiting: by the time the run
/// makes everything durable, most of it is on disk already.
#[allow(unsafe_code)] // sync_file_range has no safe wrapper in rustix or std.
pub fn start_writeback(f: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules writeback.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    let _ = f;
}

/// Makes `files` (all under `root`) and their directories durable: many files on Linux with
/// one syncfs (a single journal commit instead of one per file), a few file by file (syncfs
/// would also flush whatever else is waiting on that filesystem).
pub fn sync_all_of(root: &Path, files: &[PathBuf]) -> Result<()> {
    #[cfg(target_os = "linux")]
    if files.len() > 32 {
        let dir = File::open(root)?;
        if rustix::fs::syncfs(&dir).is_ok() {
            return Ok(());
        }
    }
    let mut dirs: Vec<&Path> = Vec::new();
    for f in files {
        File::open(f)?.sync_all()?;
        if let Some(d) = f.parent() {
            dirs.push(d);
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_dir(d)?;
    }
    Ok(())
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write(name, bytes, true)
    }

    fn put_deferred(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write(name, bytes, false)
    }

    fn sync(&self) -> Result<()> {
        let files = std::mem::take(&mut *self.unsynced.lock().expect("unsynced list"));
        if files.is_empty() {
            return Ok(());
        }
        sync_all_of(&self.root, &files)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        fs::read(self.path(name)?).map_err(|e| missing_or_io(e, name))
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let f = self.open_cached(name)?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, offset).map_err(|e| {
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
        self.open_files.lock().expect("open files").remove(name);
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

/// Writing packs past the page cache. Copying tens of megabytes into the page cache, only to
/// flush them at once, costs the kernel more CPU than sealing them did; with O_DIRECT the
/// device reads the bytes straight from an aligned buffer. Filesystems without O_DIRECT
/// (tmpfs) get an ordinary write.
mod direct {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::path::Path;

    /// Creates `path` (owner-only) holding `bytes`; writeback is started, not waited for.
    pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            if bytes.len() >= ALIGN {
                use std::os::unix::fs::OpenOptionsExt;

                if let Ok(f) = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                    .open(path)
                {
                    return linux::write_direct(f, bytes);
                }
            }
        }
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(path)?;
        f.write_all(bytes)?;
        super::start_writeback(&f);
        Ok(())
    }

    const ALIGN: usize = 4096;

    #[cfg(target_os = "linux")]
    mod linux {
        use super::{ALIGN, File};
        use std::cell::RefCell;
        use std::io::Write;

        /// Page-aligned scratch memory without `unsafe`: a plain byte vector one page larger
        /// than needed, used from its first page-aligned byte on.
        #[derive(Default)]
        struct AlignedPages(Vec<u8>);

        impl AlignedPages {
            fn copy_of(&mut self, bytes: &[u8]) -> &[u8] {
                let need = bytes.len() + ALIGN;
                if self.0.len() < need {
                    self.0 = vec![0; need.next_multiple_of(1 << 20)];
                }
                let start = self.0.as_ptr().align_offset(ALIGN);
                let page = &mut self.0[start..start + bytes.len()];
                page.copy_from_slice(bytes);
                page
            }
        }

        thread_local! {
            static BOUNCE: RefCell<AlignedPages> = RefCell::new(AlignedPages::default());
        }

        pub fn write_direct(mut f: File, bytes: &[u8]) -> std::io::Result<()> {
            let body = bytes.len() / ALIGN * ALIGN;
            BOUNCE.with(|b| f.write_all(b.borrow_mut().copy_of(&bytes[..body])))?;
            if body < bytes.len() {
                // The unaligned tail through the page cache: clear O_DIRECT on this descriptor.
                let flags = rustix::fs::fcntl_getfl(&f)?;
                rustix::fs::fcntl_setfl(&f, flags & !rustix::fs::OFlags::DIRECT)?;
                f.write_all(&bytes[body..])?;
            }
            super::super::start_writeback(&f);
            Ok(())
        }

        #[cfg(test)]
        mod tests {
            use super::*;

            #[test]
            fn aligned_pages_start_on_a_page_and_hold_the_bytes() {
                let mut pages = AlignedPages::default();
                for len in [ALIGN, 3 * ALIGN, (1 << 20) + ALIGN] {
                    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    let copy = pages.copy_of(&bytes);
                    assert_eq!(copy.as_ptr() as usize % ALIGN, 0);
                    assert_eq!(copy, &bytes[..]);
                }
            }
        }
    }
}

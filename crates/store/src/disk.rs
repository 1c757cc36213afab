//! When the disk refuses a write (full, or remounted read-only after an error), the person
//! at the screen must learn that nothing was saved and why, not "internal error"; and the
//! instance must go on by itself once the disk takes writes again. SQLite reports a full disk
//! as `SQLITE_FULL` but a read-only or failing one as a generic I/O error, so the file
//! system is asked which it is.

use std::path::Path;

/// Why a write could not be made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unwritable {
    /// No space left on the data directory's file system.
    Full,
    /// The file system is mounted read-only (often the kernel's reaction to disk errors).
    ReadOnly,
    /// Another I/O failure (the operating system's words).
    Failed(String),
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unwritable::Full => f.write_str(
                "ディスクの空き容量がないため保存できませんでした（この操作の内容は何も保存されていません）。\
                 空きができると自動的に保存できるようになります。管理者に連絡してください",
            ),
            Unwritable::ReadOnly => f.write_str(
                "データの保存先が読み取り専用になっているため保存できませんでした（この操作の内容は何も保存されていません）。\
                 ディスクの故障のおそれがあります。管理者に連絡してください",
            ),
            Unwritable::Failed(e) => write!(
                f,
                "ディスクへの書き込みに失敗したため保存できませんでした（この操作の内容は何も保存されていません）: {e}"
            ),
        }
    }
}

/// Whether the file system holding `dir` takes a write now: read-only (by mount, or by the
/// kernel after disk errors, which `statvfs` does not always show), or full. Writes and
/// removes one small file.
pub fn probe(dir: &Path) -> Option<Unwritable> {
    if let Ok(st) = rustix::fs::statvfs(dir) {
        if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            return Some(Unwritable::ReadOnly);
        }
        if st.f_bavail == 0 {
            return Some(Unwritable::Full);
        }
    }
    let path = dir.join(".write-probe");
    let tried = std::fs::write(&path, b"1");
    let _ = std::fs::remove_file(&path);
    match tried {
        Ok(()) => None,
        Err(e) => match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Some(Unwritable::Full)
            }
            std::io::ErrorKind::ReadOnlyFilesystem => Some(Unwritable::ReadOnly),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => None,
            _ => Some(Unwritable::Failed(e.to_string())),
        },
    }
}

/// Whether a SQLite error means the disk refused the write, and which way.
pub fn from_sqlite(e: &rusqlite::Error, dir: &Path) -> Option<Unwritable> {
    use rusqlite::ErrorCode as C;
    let rusqlite::Error::SqliteFailure(f, msg) = e else {
        return None;
    };
    match f.code {
        C::DiskFull => Some(Unwritable::Full),
        C::ReadOnly => Some(Unwritable::ReadOnly),
        C::SystemIoFailure | C::CannotOpen => {
            Some(probe(dir).unwrap_or_else(|| {
                Unwritable::Failed(msg.clone().unwrap_or_else(|| f.to_string()))
            }))
        }
        _ => None,
    }
}

/// Whether a file error means the disk refused the write.
pub fn from_io(e: &std::io::Error, dir: &Path) -> Option<Unwritable> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded => Some(Unwritable::Full),
        K::ReadOnlyFilesystem => Some(Unwritable::ReadOnly),
        _ if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
            Some(probe(dir).unwrap_or_else(|| Unwritable::Failed(e.to_string())))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_file_errors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(from_sqlite(&full, dir.path()), Some(Unwritable::Full));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(from_sqlite(&busy, dir.path()), None);
        let io = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
            Some("disk I/O error".into()),
        );
        // A writable directory with room: the disk's own words are passed on.
        assert_eq!(
            from_sqlite(&io, dir.path()),
            Some(Unwritable::Failed("disk I/O error".into()))
        );
        let enospc = std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        assert_eq!(from_io(&enospc, dir.path()), Some(Unwritable::Full));
        let erofs = std::io::Error::from_raw_os_error(rustix::io::Errno::ROFS.raw_os_error());
        assert_eq!(from_io(&erofs, dir.path()), Some(Unwritable::ReadOnly));
        assert!(
            Unwritable::Full
                .to_string()
                .contains("何も保存されていません")
        );
        assert_eq!(probe(dir.path()), None);
    }
}

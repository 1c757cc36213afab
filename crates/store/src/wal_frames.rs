//! Which pages SQLite's write-ahead log holds, read from the log file's frame headers.
//!
//! Every page a transaction changes is appended to the log as a frame (a 24-byte header naming
//! the page, then the page); only a checkpoint copies frames into the database file. So the
//! pages named by the log's frames are a superset of what a checkpoint can change, which is what
//! the page map (`page_map.rs`) records before each checkpoint.
//!
//! Format (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic, version, page size,
//! checkpoint sequence, salt-1, salt-2, checksums), then frames. A frame belongs to the current
//! log only while its salts equal the header's; frames left from before the log was restarted
//! carry older salts. Checksums are not checked: a frame not yet committed, or torn, only makes
//! the set larger, never smaller.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// Where a scan of one log stopped, so the next scan reads only what was appended since.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalCursor {
    salts: [u32; 2],
    /// Index of the first frame not yet known complete (its header or page may be unwritten).
    next: u64,
}

/// The page numbers a scan found, sorted and without repeats.
#[derive(Debug, Default)]
pub struct WalPages {
    pub pages: Vec<u32>,
}

fn be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the frames of `wal` from `cursor` on (from the start when the log was restarted since),
/// ignoring page numbers above `max_page` (a header read while it was being written).
pub(crate) fn scan(wal: &Path, cursor: &mut WalCursor, max_page: u32) -> std::io::Result<WalPages> {
    let file = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            *cursor = WalCursor::default();
            return Ok(WalPages::default());
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut head = [0u8; HEADER as usize];
    if len < HEADER || file.read_exact_at(&mut head, 0).is_err() {
        *cursor = WalCursor::default();
        return Ok(WalPages::default());
    }
    let magic = be(&head, 0);
    let page_size = be(&head, 8);
    if magic & !1 != 0x377f_0682 || !(512..=65536).contains(&page_size) {
        *cursor = WalCursor::default();
        return Ok(WalPages::default());
    }
    let salts = [be(&head, 16), be(&head, 20)];
    if cursor.salts != salts {
        *cursor = WalCursor { salts, next: 0 };
    }
    let stride = FRAME_HEADER + u64::from(page_size);
    let mut out = WalPages::default();
    let mut frame = [0u8; FRAME_HEADER as usize];
    let mut i = cursor.next;
    let mut complete = true;
    loop {
        let at = HEADER + i * stride;
        if at + FRAME_HEADER > len || file.read_exact_at(&mut frame, at).is_err() {
            break;
        }
        if [be(&frame, 8), be(&frame, 12)] != salts {
            break;
        }
        let page = be(&frame, 0);
        if page >= 1 && page <= max_page {
            out.pages.push(page);
        }
        // A frame whose page is not all there yet is read again next time.
        if complete && at + stride <= len {
            cursor.next = i + 1;
        } else {
            complete = false;
        }
        i += 1;
    }
    out.pages.sort_unstable();
    out.pages.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn wal_db(dir: &Path) -> Connection {
        let c = Connection::open(dir.join("t.db")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch("CREATE TABLE t(x BLOB)").unwrap();
        c
    }

    #[test]
    fn frames_name_the_pages_a_transaction_wrote_and_a_cursor_reads_only_what_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let c = wal_db(dir.path());
        let wal = dir.path().join("t.db-wal");
        let mut cur = WalCursor::default();
        let first = scan(&wal, &mut cur, 1 << 20).unwrap();
        assert!(
            first.pages.contains(&1),
            "the schema page: {:?}",
            first.pages
        );
        assert_eq!(
            scan(&wal, &mut cur, 1 << 20).unwrap().pages,
            Vec::<u32>::new()
        );
        // Ten rows of 3 KB: new pages at the end of the table.
        for _ in 0..10 {
            c.execute("INSERT INTO t VALUES (zeroblob(3000))", ())
                .unwrap();
        }
        let pages: u32 = c.query_row("PRAGMA page_count", (), |r| r.get(0)).unwrap();
        let next = scan(&wal, &mut cur, 1 << 20).unwrap();
        assert!(
            next.pages.contains(&pages),
            "{:?} lacks {pages}",
            next.pages
        );
        assert!(next.pages.iter().all(|p| *p <= pages));
        // After a full checkpoint the next write restarts the log with new salts: the cursor
        // starts again from the first frame.
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |_| Ok(()))
            .unwrap();
        c.execute("UPDATE t SET x = zeroblob(10) WHERE rowid = 1", ())
            .unwrap();
        let after = scan(&wal, &mut cur, 1 << 20).unwrap();
        assert!(!after.pages.is_empty());
        assert!(after.pages.len() < next.pages.len());
    }

    proptest::proptest! {
        /// A log file can be anything after a crash or a disk fault: scanning it never panics,
        /// names no page above the bound, and a second scan from the cursor finds nothing new
        /// in a file that did not change.
        #[test]
        fn any_log_file_scans_without_panic_within_the_bound(
            head in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            frames in proptest::collection::vec((1u32..5000, proptest::bool::ANY), 0..12),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            bound in 1u32..3000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let wal = dir.path().join("x-wal");
            // Half the cases start with a valid header (1 KiB pages) so frames are read at all.
            let mut bytes = if head.len() % 2 == 0 {
                let mut h = Vec::new();
                for v in [0x377f_0682u32, 3_007_000, 1024, 0, 7, 9, 0, 0] {
                    h.extend_from_slice(&v.to_be_bytes());
                }
                h
            } else {
                head.clone()
            };
            for (page, same_salt) in &frames {
                bytes.extend_from_slice(&page.to_be_bytes());
                bytes.extend_from_slice(&0u32.to_be_bytes());
                let salt = if *same_salt { [7u32, 9] } else { [8, 9] };
                bytes.extend_from_slice(&salt[0].to_be_bytes());
                bytes.extend_from_slice(&salt[1].to_be_bytes());
                bytes.extend_from_slice(&[0u8; 8]);
                bytes.extend_from_slice(&[0u8; 1024]);
            }
            bytes.extend_from_slice(&tail);
            std::fs::write(&wal, &bytes).unwrap();
            let mut cur = WalCursor::default();
            let found = scan(&wal, &mut cur, bound).unwrap();
            proptest::prop_assert!(found.pages.iter().all(|p| *p >= 1 && *p <= bound));
            proptest::prop_assert!(found.pages.windows(2).all(|w| w[0] < w[1]));
            let again = scan(&wal, &mut cur, bound).unwrap();
            proptest::prop_assert!(again.pages.iter().all(|p| found.pages.contains(p)));
        }
    }

    #[test]
    fn page_numbers_beyond_the_bound_and_missing_or_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut cur = WalCursor::default();
        assert!(
            scan(&dir.path().join("none"), &mut cur, 9)
                .unwrap()
                .pages
                .is_empty()
        );
        std::fs::write(dir.path().join("junk"), vec![7u8; 9000]).unwrap();
        assert!(
            scan(&dir.path().join("junk"), &mut cur, 9)
                .unwrap()
                .pages
                .is_empty()
        );
        let c = wal_db(dir.path());
        c.execute("INSERT INTO t VALUES (zeroblob(3000))", ())
            .unwrap();
        let pages = scan(&dir.path().join("t.db-wal"), &mut cur, 1)
            .unwrap()
            .pages;
        assert_eq!(pages, vec![1]);
    }
}

//! The database as the backup engine reads it: in place, at one read snapshot, in fixed parts
//! of which only those the page map marks as changed are read again.

use mamori_backup::{PageMark, PagedFile};
use mamori_store::{DatabaseImage, ImageMark};

pub(crate) struct PagedDb(pub DatabaseImage);

impl PagedFile for PagedDb {
    fn len(&self) -> u64 {
        self.0.len()
    }

    fn mark(&self) -> Option<PageMark> {
        self.0.mark().map(|m| PageMark {
            map: m.map,
            round: m.round,
        })
    }

    fn changed_since(&self, since: &PageMark, part: u64) -> Option<Vec<bool>> {
        let since = ImageMark {
            map: since.map.clone(),
            round: since.round,
        };
        self.0.changed_since(&since, part)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(offset, buf).map_err(std::io::Error::other)
    }
}

//! A file's BLAKE3 hash from the hashes of its fixed-size parts, so that an incremental backup
//! that reads only the changed parts of the database still records (and a restore still checks)
//! the hash of the whole file.
//!
//! BLAKE3 is a tree: a part of 2^k bytes starting at a multiple of its size is a whole subtree,
//! whose chaining value can be kept and merged later into exactly `blake3::hash` of the file.

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root};

/// The chaining value of the part of a file that starts at `offset` (a multiple of the part
/// size, itself a power of two of at least 1 KiB). Only for files longer than one part.
pub fn part_cv(offset: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(data);
    h.finalize_non_root()
}

/// `blake3::hash` of a file of `len` bytes (more than `part`) from its parts' chaining values.
pub fn root(cvs: &[ChainingValue], part: u64, len: u64) -> blake3::Hash {
    assert!(part.is_power_of_two() && len > part && cvs.len() as u64 == len.div_ceil(part));
    let left = left_subtree_len(len);
    blake3::hazmat::merge_subtrees_root(
        &subtree(cvs, part, 0, left),
        &subtree(cvs, part, left, len - left),
        Mode::Hash,
    )
}

fn subtree(cvs: &[ChainingValue], part: u64, start: u64, len: u64) -> ChainingValue {
    if len <= part {
        return cvs[(start / part) as usize];
    }
    // Longer than a part: the left subtree is a power of two at least a part long, so the
    // split falls on a part boundary.
    let left = left_subtree_len(len);
    merge_subtrees_non_root(
        &subtree(cvs, part, start, left),
        &subtree(cvs, part, start + left, len - left),
        Mode::Hash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_from_parts_is_blake3_of_the_whole_file() {
        let part = 16 * 1024u64;
        let data: Vec<u8> = (0..40 * part).map(|i| (i * 7 % 251) as u8).collect();
        for len in [
            part + 4096,
            2 * part,
            2 * part + 1,
            3 * part + 4096,
            5 * part,
            8 * part,
            17 * part - 4096,
            40 * part,
        ] {
            let file = &data[..len as usize];
            let cvs: Vec<_> = file
                .chunks(part as usize)
                .enumerate()
                .map(|(i, d)| part_cv(i as u64 * part, d))
                .collect();
            assert_eq!(root(&cvs, part, len), blake3::hash(file), "len {len}");
        }
    }
}

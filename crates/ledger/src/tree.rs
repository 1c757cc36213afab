use crate::hash::{Hash, leaf_hash, node_hash};

/// A hash the log must keep to answer proofs later: the hash of the complete subtree at
/// `level` (0 = a leaf) whose leaves are `index·2^level .. (index+1)·2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHash {
    pub level: u8,
    pub index: u64,
    pub hash: Hash,
}

/// Where a stored hash sits in the append order: appending leaf n writes its leaf hash and
/// then every subtree hash that leaf completes, so stored hashes form one dense sequence.
/// Before leaf n's own hash come n + ⌊n/2⌋ + ⌊n/4⌋ + … hashes; a subtree at level L with
/// index i is completed by leaf (i+1)·2^L − 1 and is the L-th hash written after that leaf's.
pub fn stored_index(level: u8, index: u64) -> u64 {
    let last_leaf = ((index + 1) << level) - 1;
    stored_hash_count(last_leaf) + level as u64
}

/// Number of hashes stored for a tree of `size` leaves.
pub fn stored_hash_count(size: u64) -> u64 {
    let mut total = 0;
    let mut n = size;
    while n > 0 {
        total += n;
        n >>= 1;
    }
    total
}

/// Read access to stored hashes: the complete subtree at `level` with index `index`.
pub trait HashReader {
    type Error: std::fmt::Display;
    fn stored(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// The leaf whose append completed the subtree (level, index); its stored hashes hold the
/// subtree's hash at position `level`.
pub fn completing_leaf(level: u8, index: u64) -> u64 {
    ((index + 1) << level) - 1
}

/// The right edge of the tree: one complete-subtree hash per set bit of the size, largest
/// first. Enough to append and to compute the current root, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    edge: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored hashes.
    pub fn load<R: HashReader>(reader: &R, size: u64) -> Result<Self, R::Error> {
        let mut edge = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                edge.push(reader.stored(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Self { size, edge })
    }

    /// The edge's hashes, concatenated largest subtree first: with the size, all a log needs
    /// to keep (e.g. in one coordinator row) to go on appending.
    pub fn edge_bytes(&self) -> Vec<u8> {
        self.edge.concat()
    }

    /// The frontier of a tree of `size` leaves from [`Frontier::edge_bytes`]; `None` when the
    /// bytes cannot be that tree's edge (one 32-byte hash per set bit of the size).
    pub fn from_edge(size: u64, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let edge = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunks"))
            .collect();
        Some(Self { size, edge })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        let mut it = self.edge.iter().rev();
        match it.next() {
            None => crate::EMPTY_ROOT,
            Some(last) => it.fold(*last, |acc, h| node_hash(h, &acc)),
        }
    }

    /// Appends a leaf given its data; returns the hashes to store, in stored order.
    pub fn append(&mut self, data: &[u8]) -> Vec<StoredHash> {
        self.append_leaf_hash(leaf_hash(data))
    }

    pub fn append_leaf_hash(&mut self, leaf: Hash) -> Vec<StoredHash> {
        let n = self.size;
        let mut out = vec![StoredHash {
            level: 0,
            index: n,
            hash: leaf,
        }];
        let mut h = leaf;
        let mut level = 0u8;
        let mut carry = n;
        while carry & 1 == 1 {
            let left = self
                .edge
                .pop()
                .expect("frontier holds a subtree per set bit");
            h = node_hash(&left, &h);
            carry >>= 1;
            level += 1;
            out.push(StoredHash {
                level,
                index: n >> level,
                hash: h,
            });
        }
        self.edge.push(h);
        self.size += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_indexes_are_dense_in_append_order() {
        let mut f = Frontier::new();
        let mut next = 0u64;
        for i in 0..1000u64 {
            for s in f.append(&i.to_be_bytes()) {
                assert_eq!(stored_index(s.level, s.index), next, "{s:?}");
                next += 1;
            }
            assert_eq!(next, stored_hash_count(f.size()));
        }
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn edge_bytes_round_trip_and_go_on_appending_alike() {
        let mut f = Frontier::new();
        for i in 0..200u64 {
            let mut copy = Frontier::from_edge(f.size(), &f.edge_bytes()).unwrap();
            assert_eq!(copy, f);
            assert_eq!(copy.append(&i.to_le_bytes()), f.append(&i.to_le_bytes()));
        }
        // 200 = 0b1100_1000: three subtrees, so 96 bytes and nothing else.
        let bytes = f.edge_bytes();
        assert_eq!(bytes.len(), 96);
        assert!(Frontier::from_edge(200, &bytes[..64]).is_none());
        assert!(Frontier::from_edge(201, &bytes).is_none());
    }
}

#[cfg(test)]
mod completing_tests {
    use super::*;

    #[test]
    fn each_stored_hash_is_written_by_its_completing_leaf() {
        let mut f = Frontier::new();
        for i in 0..300u64 {
            for s in f.append(&i.to_le_bytes()) {
                assert_eq!(completing_leaf(s.level, s.index), i);
            }
        }
    }
}

//! RFC 4998 evidence records: one archive time-stamp over a hash tree of many data objects,
//! kept valid for decades by renewal.
//!
//! - The tree: leaves are the hashes of data objects (or, for a data object group such as a
//!   document and its signature, the hash of their sorted concatenation). Pairs are combined as
//!   `H(sort(a, b))`; an odd node at the end of a level moves up unchanged, so every inner node
//!   has two children and a reduced hash tree lists exactly one sibling per merge.
//! - Verification (§4.3): the object's hash must be in the first list; each list's sorted
//!   concatenation is hashed, and that value joins the next list; the last value is what the
//!   time-stamp covers.
//! - Time-stamp renewal (§5.2): before the last TSA certificate expires, a new archive
//!   time-stamp covers `H(timeStamp)` of the previous one, in the same chain.
//! - Hash-tree renewal (§5.2): when the hash algorithm weakens, a new chain covers, per object,
//!   `H'(sort(H'(object), H'(ArchiveTimeStampSequence so far)))` with a stronger `H'`.

use cms::content_info::ContentInfo;
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode};
use serde::Serialize;
use sha2::Digest;

use crate::asn1::*;
use crate::cert::Cert;
use crate::tsp::{self, TokenInfo};
use crate::{EvidenceError, Result, UnixMs};

/// The hash algorithms evidence records use here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HashAlg {
    Sha256,
    Sha512,
}

impl HashAlg {
    pub fn oid(self) -> Oid {
        match self {
            Self::Sha256 => ID_SHA256,
            Self::Sha512 => ID_SHA512,
        }
    }

    pub fn from_oid(oid: &Oid) -> Result<Self> {
        match *oid {
            ID_SHA256 => Ok(Self::Sha256),
            ID_SHA512 => Ok(Self::Sha512),
            _ => Err(EvidenceError::new(
                "unsupported_algorithm",
                format!("対応していないハッシュアルゴリズムです: {oid}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// `H(sort(items) concatenated)`, the combining rule of RFC 4998 §4.2.
    pub fn sorted(self, items: &[&[u8]]) -> Vec<u8> {
        let mut v: Vec<&[u8]> = items.to_vec();
        v.sort_unstable();
        match self {
            Self::Sha256 => {
                let mut h = sha2::Sha256::new();
                v.iter().for_each(|i| h.update(i));
                h.finalize().to_vec()
            }
            Self::Sha512 => {
                let mut h = sha2::Sha512::new();
                v.iter().for_each(|i| h.update(i));
                h.finalize().to_vec()
            }
        }
    }
}

/// The leaf of a data object group (one member: its own hash).
pub fn group_leaf(alg: HashAlg, members: &[Vec<u8>]) -> Vec<u8> {
    match members {
        [one] => one.clone(),
        _ => alg.sorted(&members.iter().map(Vec::as_slice).collect::<Vec<_>>()),
    }
}

/// A hash tree kept level by level, each level one flat buffer of equal-length hashes.
pub struct HashTree {
    alg: HashAlg,
    levels: Vec<Vec<u8>>,
}

impl HashTree {
    /// Builds the tree over `leaves` (concatenated hashes of `alg`'s length).
    pub fn build(alg: HashAlg, leaves: Vec<u8>) -> Result<Self> {
        let n = alg.output_len();
        if leaves.is_empty() || !leaves.len().is_multiple_of(n) {
            return Err(EvidenceError::malformed("ハッシュ木", "葉がありません"));
        }
        let mut levels = vec![leaves];
        while levels.last().expect("one level").len() > n {
            let below = levels.last().expect("one level");
            let count = below.len() / n;
            let mut up = Vec::with_capacity(count.div_ceil(2) * n);
            for pair in below.chunks(2 * n) {
                if pair.len() == 2 * n {
                    up.extend_from_slice(&alg.sorted(&[&pair[..n], &pair[n..]]));
                } else {
                    up.extend_from_slice(pair);
                }
            }
            levels.push(up);
        }
        Ok(Self { alg, levels })
    }

    pub fn len(&self) -> usize {
        self.levels[0].len() / self.alg.output_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every leaf, concatenated (what a store keeps to rebuild the tree).
    pub fn leaves(&self) -> &[u8] {
        &self.levels[0]
    }

    pub fn leaf(&self, index: usize) -> &[u8] {
        let n = self.alg.output_len();
        &self.levels[0][index * n..(index + 1) * n]
    }

    pub fn root(&self) -> &[u8] {
        self.levels.last().expect("one level")
    }

    /// The siblings of leaf `index` bottom-up, one per merge on its way to the root.
    pub fn siblings(&self, index: usize) -> Vec<Vec<u8>> {
        let n = self.alg.output_len();
        let mut out = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let count = level.len() / n;
            let sib = i ^ 1;
            if sib < count {
                out.push(level[sib * n..(sib + 1) * n].to_vec());
            }
            i /= 2;
        }
        out
    }

    /// The reduced hash tree for the object group at `index` whose member hashes are
    /// `members`; `None` when the tree is that one group alone.
    pub fn reduced(&self, index: usize, members: &[Vec<u8>]) -> Option<Vec<Vec<Vec<u8>>>> {
        let mut sibs = self.siblings(index).into_iter();
        let first = if members.len() > 1 {
            members.to_vec()
        } else {
            let s = sibs.next()?;
            vec![members[0].clone(), s]
        };
        let mut lists = vec![first];
        lists.extend(sibs.map(|s| vec![s]));
        Some(lists)
    }
}

/// Walks a reduced hash tree from the object hash `h` (§4.3) and returns the value the
/// time-stamp must cover.
pub fn walk(alg: HashAlg, h: &[u8], reduced: Option<&[Vec<Vec<u8>>]>) -> Result<Vec<u8>> {
    let Some(lists) = reduced.filter(|l| !l.is_empty()) else {
        return Ok(h.to_vec());
    };
    if !lists[0].iter().any(|x| x == h) {
        return Err(EvidenceError::new(
            "not_covered",
            "証拠記録のハッシュ木に対象のハッシュ値がありません",
        ));
    }
    let mut cur = alg.sorted(&lists[0].iter().map(Vec::as_slice).collect::<Vec<_>>());
    for list in &lists[1..] {
        let mut items: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        items.push(&cur);
        cur = alg.sorted(&items);
    }
    Ok(cur)
}

fn octets(v: &[u8]) -> Result<OctetString> {
    OctetString::new(v.to_vec()).map_err(|e| EvidenceError::malformed("証拠記録", e))
}

/// One archive time-stamp with its reduced hash tree.
pub fn archive_time_stamp(
    alg: HashAlg,
    reduced: Option<Vec<Vec<Vec<u8>>>>,
    token: &[u8],
) -> Result<ArchiveTimeStamp> {
    let reduced_hashtree = match reduced {
        Some(lists) => Some(
            lists
                .iter()
                .map(|l| l.iter().map(|h| octets(h)).collect::<Result<Vec<_>>>())
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    Ok(ArchiveTimeStamp {
        digest_algorithm: Some(digest_alg(alg.oid())),
        reduced_hashtree,
        time_stamp: ContentInfo::from_der(token)
            .map_err(|e| EvidenceError::malformed("タイムスタンプ", e))?,
    })
}

fn ats_alg(ats: &ArchiveTimeStamp, chain_alg: Option<HashAlg>) -> Result<HashAlg> {
    match &ats.digest_algorithm {
        Some(a) => HashAlg::from_oid(&a.oid),
        None => chain_alg.ok_or_else(|| EvidenceError::malformed("証拠記録", "アルゴリズム")),
    }
}

/// The DER time-stamp token of an archive time-stamp.
pub fn token_der(ats: &ArchiveTimeStamp) -> Result<Vec<u8>> {
    ats.time_stamp
        .to_der()
        .map_err(|e| EvidenceError::malformed("証拠記録", e))
}

/// The value a time-stamp renewal covers: `H(timeStamp)` of the chain's last archive
/// time-stamp.
pub fn timestamp_renewal_input(alg: HashAlg, last: &ArchiveTimeStamp) -> Result<Vec<u8>> {
    let der = last
        .time_stamp
        .to_der()
        .map_err(|e| EvidenceError::malformed("証拠記録", e))?;
    Ok(alg.digest(&der))
}

/// The hash a hash-tree renewal puts in the tree for one object: `H'(sort(H'(object),
/// H'(previous sequence)))`.
pub fn hashtree_renewal_input(
    alg: HashAlg,
    object: &[u8],
    previous: &[ArchiveTimeStampChain],
) -> Result<Vec<u8>> {
    let seq = previous
        .to_vec()
        .to_der()
        .map_err(|e| EvidenceError::malformed("証拠記録", e))?;
    Ok(alg.sorted(&[&alg.digest(object), &alg.digest(&seq)]))
}

/// An evidence record (DER).
pub fn encode(chains: Vec<ArchiveTimeStampChain>) -> Result<Vec<u8>> {
    let mut algs: Vec<Oid> = Vec::new();
    for c in &chains {
        for a in c {
            if let Some(d) = &a.digest_algorithm
                && !algs.contains(&d.oid)
            {
                algs.push(d.oid);
            }
        }
    }
    EvidenceRecord {
        version: 1,
        digest_algorithms: algs.into_iter().map(digest_alg).collect(),
        archive_time_stamp_sequence: chains,
    }
    .to_der()
    .map_err(|e| EvidenceError::malformed("証拠記録", e))
}

pub fn decode(der: &[u8]) -> Result<EvidenceRecord> {
    let er = EvidenceRecord::from_der(der).map_err(|e| EvidenceError::malformed("証拠記録", e))?;
    if er.version != 1 || er.archive_time_stamp_sequence.iter().any(|c| c.is_empty()) {
        return Err(EvidenceError::malformed(
            "証拠記録",
            "版または連鎖が不正です",
        ));
    }
    Ok(er)
}

/// What a verified evidence record proves.
#[derive(Clone, Debug, Serialize)]
pub struct RecordInfo {
    /// Every archive time-stamp, oldest first: `(chain, algorithm, token)`.
    pub stamps: Vec<(usize, HashAlg, TokenInfo)>,
    /// The earliest time the objects are proven to have existed.
    pub proven_since: UnixMs,
    /// When the newest time-stamp's TSA certificate expires (renew before then).
    pub renew_before: UnixMs,
}

/// Verifies an evidence record for a data object group (`objects`: e.g. a document and its
/// signature) against the TSA roots `anchors`.
pub fn verify(er_der: &[u8], objects: &[&[u8]], anchors: &[Cert]) -> Result<RecordInfo> {
    let er = decode(er_der)?;
    let mut stamps = Vec::new();
    for (ci, chain) in er.archive_time_stamp_sequence.iter().enumerate() {
        let chain_alg = ats_alg(&chain[0], None)?;
        let previous = &er.archive_time_stamp_sequence[..ci];
        let hashes: Vec<Vec<u8>> = objects
            .iter()
            .map(|o| {
                if ci == 0 {
                    Ok(chain_alg.digest(o))
                } else {
                    hashtree_renewal_input(chain_alg, o, previous)
                }
            })
            .collect::<Result<_>>()?;
        let mut prev_ats: Option<&ArchiveTimeStamp> = None;
        for ats in chain {
            let alg = ats_alg(ats, Some(chain_alg))?;
            if alg != chain_alg {
                return Err(EvidenceError::malformed(
                    "証拠記録",
                    "同じ連鎖の中でハッシュアルゴリズムが変わっています",
                ));
            }
            let reduced: Option<Vec<Vec<Vec<u8>>>> = ats.reduced_hashtree.as_ref().map(|l| {
                l.iter()
                    .map(|p| p.iter().map(|o| o.as_bytes().to_vec()).collect())
                    .collect()
            });
            let covered = match prev_ats {
                None => {
                    // The first list holds every member of the group; one member is enough
                    // to enter the tree, but each must be there.
                    let mut value = None;
                    for h in &hashes {
                        value = Some(walk(alg, h, reduced.as_deref())?);
                    }
                    value.ok_or_else(|| EvidenceError::malformed("証拠記録", "対象なし"))?
                }
                Some(p) => walk(alg, &timestamp_renewal_input(alg, p)?, reduced.as_deref())?,
            };
            let token = ats
                .time_stamp
                .to_der()
                .map_err(|e| EvidenceError::malformed("証拠記録", e))?;
            let info = tsp::verify_token(&token, &covered, anchors)?;
            if let Some((_, _, last)) = stamps.last() {
                let last: &TokenInfo = last;
                if info.gen_time > last.tsa_not_after {
                    return Err(EvidenceError::new(
                        "renewed_too_late",
                        format!(
                            "証拠記録の更新（{}）が、前のタイムスタンプの証明書の期限（{}）より後です",
                            crate::format_time(info.gen_time),
                            crate::format_time(last.tsa_not_after)
                        ),
                    ));
                }
            }
            stamps.push((ci, alg, info));
            prev_ats = Some(ats);
        }
    }
    let proven_since = stamps.first().map(|s| s.2.gen_time).unwrap_or_default();
    let renew_before = stamps.last().map(|s| s.2.tsa_not_after).unwrap_or_default();
    Ok(RecordInfo {
        stamps,
        proven_since,
        renew_before,
    })
}

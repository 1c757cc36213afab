//! Certificate Transparency / RFC 6962 known answers (the reference leaves used by
//! certificate-transparency and transparency-dev/merkle) and property tests.

use std::collections::HashMap;

use mamori_ledger::*;
use proptest::prelude::*;

#[derive(Default)]
struct MemHashes(HashMap<u64, Hash>);

impl HashReader for MemHashes {
    type Error = String;
    fn stored(&self, level: u8, index: u64) -> Result<Hash, String> {
        let i = stored_index(level, index);
        self.0
            .get(&i)
            .copied()
            .ok_or_else(|| format!("stored hash {i}"))
    }
}

fn build(leaves: &[Vec<u8>]) -> (Frontier, MemHashes) {
    let mut f = Frontier::new();
    let mut m = MemHashes::default();
    for l in leaves {
        for s in f.append(l) {
            m.0.insert(stored_index(s.level, s.index), s.hash);
        }
    }
    (f, m)
}

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn ct_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|x| hex::decode(x).unwrap())
    .collect()
}

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_ct_vectors_for_every_size() {
    let leaves = ct_leaves();
    for n in 0..=8 {
        let (f, m) = build(&leaves[..n]);
        assert_eq!(f.root(), h(ROOTS[n]), "frontier root, size {n}");
        let (_, full) = build(&leaves);
        assert_eq!(
            root_at(&full, n as u64).unwrap(),
            h(ROOTS[n]),
            "stored root, size {n}"
        );
        assert_eq!(Frontier::load(&m, n as u64).unwrap(), f);
    }
}

#[test]
fn inclusion_proofs_match_ct_vectors() {
    let (_, m) = build(&ct_leaves());
    let cases = [
        (
            0u64,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, want) in cases {
        let want: Vec<Hash> = want.into_iter().map(h).collect();
        assert_eq!(inclusion_proof(&m, index, 8).unwrap(), want);
        let leaf = leaf_hash(&ct_leaves()[index as usize]);
        verify_inclusion(&leaf, index, 8, &want, &h(ROOTS[8])).unwrap();
        assert_eq!(
            verify_inclusion(&leaf, index, 8, &want, &h(ROOTS[7])),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn consistency_proofs_match_ct_vectors() {
    let (_, m) = build(&ct_leaves());
    let p28 = consistency_proof(&m, 2, 8).unwrap();
    assert_eq!(
        p28,
        vec![
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ]
    );
    verify_consistency(2, 8, &h(ROOTS[2]), &h(ROOTS[8]), &p28).unwrap();
    let p25 = consistency_proof(&m, 2, 5).unwrap();
    assert_eq!(
        p25,
        vec![
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ]
    );
    verify_consistency(2, 5, &h(ROOTS[2]), &h(ROOTS[5]), &p25).unwrap();
    let p68 = consistency_proof(&m, 6, 8).unwrap();
    assert_eq!(p68.len(), 3);
    assert_eq!(
        p68[1..],
        [
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]
    );
    verify_consistency(6, 8, &h(ROOTS[6]), &h(ROOTS[8]), &p68).unwrap();
    assert_eq!(
        verify_consistency(6, 8, &h(ROOTS[5]), &h(ROOTS[8]), &p68),
        Err(ProofError::RootMismatch)
    );
}

/// MTH straight from the RFC's definition, as an independent reference.
fn reference_root(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaf_hash(&leaves[0]),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn append_only_roots_agree_with_the_rfc_definition(n in 0usize..300) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("event-{i}").into_bytes()).collect();
        let (f, m) = build(&leaves);
        prop_assert_eq!(f.root(), reference_root(&leaves));
        for size in [0, n / 3, n / 2, n] {
            prop_assert_eq!(root_at(&m, size as u64).unwrap(), reference_root(&leaves[..size]));
        }
    }

    /// A proof made at size m verifies against every later checkpoint via consistency.
    #[test]
    fn proofs_for_size_m_hold_at_every_later_size(n in 1usize..200, seed in any::<u64>()) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| (i as u64 ^ seed).to_le_bytes().to_vec()).collect();
        let (_, m) = build(&leaves);
        let old = 1 + (seed as usize % n);
        let idx = (seed as usize / 7) % old;
        let old_root = root_at(&m, old as u64).unwrap();
        let proof = inclusion_proof(&m, idx as u64, old as u64).unwrap();
        verify_inclusion(&leaf_hash(&leaves[idx]), idx as u64, old as u64, &proof, &old_root).unwrap();
        for new in old..=n {
            let new_root = root_at(&m, new as u64).unwrap();
            let cp = consistency_proof(&m, old as u64, new as u64).unwrap();
            verify_consistency(old as u64, new as u64, &old_root, &new_root, &cp).unwrap();
            let p = inclusion_proof(&m, idx as u64, new as u64).unwrap();
            verify_inclusion(&leaf_hash(&leaves[idx]), idx as u64, new as u64, &p, &new_root).unwrap();
        }
    }

    /// Changing any one leaf changes the root and breaks consistency with the old checkpoint.
    #[test]
    fn rewriting_history_is_detected(n in 2usize..150, which in any::<usize>()) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8, (i >> 8) as u8]).collect();
        let (_, m) = build(&leaves);
        let old = n / 2 + 1;
        let old_root = root_at(&m, old as u64).unwrap();
        let mut forged = leaves.clone();
        forged[which % old].push(0xff);
        let (_, fm) = build(&forged);
        let new_root = root_at(&fm, n as u64).unwrap();
        let cp = consistency_proof(&fm, old as u64, n as u64).unwrap();
        prop_assert!(verify_consistency(old as u64, n as u64, &old_root, &new_root, &cp).is_err());
    }
}

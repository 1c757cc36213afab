//! The 電子帳簿保存法 search — date range, amount range, counterparty, alone or combined, and
//! "field is empty" — gives exactly what a naive scan of every document gives, over a few
//! thousand generated documents. `scripts/test-on-postgres.sh` runs it on PostgreSQL too.

use mamori_domain::bookkeeping::search_key;
use mamori_store::{Store, StoreOptions, TxDocumentRow, TxQuery, TxWrite};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: [&str; 8] = [
    "株式会社 医療材料",
    "ＡＢＣ商事",
    "東京ガス株式会社",
    "(株)メディカル_サプライ",
    "有限会社 100%薬品",
    "田中 一郎",
    "医療材料販売",
    "abc商事 大阪支店",
];

fn date(day: u64) -> String {
    let d = mamori_domain::bookkeeping::calendar::ymd(2025, 1, 1) + day as i64;
    mamori_domain::bookkeeping::calendar::format(d)
}

#[derive(Clone)]
struct Doc {
    id: i64,
    date: Option<String>,
    amount: Option<i64>,
    counterparty: Option<String>,
    doc_type: &'static str,
    cancelled: bool,
}

fn matches(d: &Doc, q: &TxQuery) -> bool {
    let key = d.counterparty.as_deref().map(search_key);
    (q.include_cancelled || !d.cancelled)
        && q.date_from
            .as_ref()
            .is_none_or(|f| d.date.as_ref().is_some_and(|x| x >= f))
        && q.date_to
            .as_ref()
            .is_none_or(|t| d.date.as_ref().is_some_and(|x| x <= t))
        && q.amount_min
            .is_none_or(|m| d.amount.is_some_and(|a| a >= m))
        && q.amount_max
            .is_none_or(|m| d.amount.is_some_and(|a| a <= m))
        && q.counterparty_key
            .as_ref()
            .is_none_or(|k| key.as_ref().is_some_and(|x| x.contains(k.as_str())))
        && q.doc_type.as_ref().is_none_or(|t| t == d.doc_type)
        && q.missing.iter().all(|m| match m.as_str() {
            "transaction_date" => d.date.is_none(),
            "amount" => d.amount.is_none(),
            _ => d.counterparty.is_none(),
        })
}

#[test]
fn every_combination_matches_a_naive_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = match mamori_testkit::postgres::suite_database() {
        Some(url) => Store::open_postgres(
            dir.path(),
            &mamori_store::postgres::parse_url(&url).unwrap(),
            StoreOptions::default(),
        ),
        None => Store::open(dir.path(), StoreOptions::default()),
    }
    .unwrap();
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let mut docs: Vec<Doc> = Vec::new();
    for _ in 0..3_000 {
        docs.push(Doc {
            id: 0,
            date: (!rng.chance(5)).then(|| date(rng.below(730))),
            amount: (!rng.chance(5)).then(|| rng.below(2_000_000) as i64),
            counterparty: (!rng.chance(5)).then(|| NAMES[rng.below(8) as usize].to_owned()),
            doc_type: ["invoice", "receipt", "contract"][rng.below(3) as usize],
            cancelled: false,
        });
    }
    for chunk in docs.chunks_mut(500) {
        let batch: Vec<Doc> = chunk.to_vec();
        let ids = store
            .write_blocking(move |tx| -> Result<Vec<i64>, mamori_store::StoreError> {
                let sha = "0".repeat(64);
                tx.insert_blob(&sha, 1, "application/pdf", 0)?;
                let mut ids = Vec::new();
                for d in &batch {
                    let key = d.counterparty.as_deref().map(search_key);
                    let w = TxWrite {
                        doc_type: d.doc_type,
                        direction: "received",
                        transaction_date: d.date.as_deref(),
                        amount: d.amount,
                        counterparty: d.counterparty.as_deref(),
                        counterparty_key: key.as_deref(),
                        registration_number: None,
                        document_number: None,
                        received_on: None,
                        retention_until: "2040-01-01",
                        stamp_due: None,
                        fields_json: "{}",
                        file_sha256: &sha,
                        file_name: "x.pdf",
                        media_type: "application/pdf",
                    };
                    ids.push(tx.insert_tx_document(&w, None, 1)?);
                }
                Ok(ids)
            })
            .unwrap();
        for (d, id) in chunk.iter_mut().zip(ids) {
            d.id = id;
        }
    }
    // Some are cancelled (a new version, the row kept).
    for d in docs.iter_mut().filter(|d| d.id % 17 == 0) {
        d.cancelled = true;
        let id = d.id;
        let dd = d.clone();
        store
            .write_blocking(move |tx| -> Result<(), mamori_store::StoreError> {
                let key = dd.counterparty.as_deref().map(search_key);
                let w = TxWrite {
                    doc_type: dd.doc_type,
                    direction: "received",
                    transaction_date: dd.date.as_deref(),
                    amount: dd.amount,
                    counterparty: dd.counterparty.as_deref(),
                    counterparty_key: key.as_deref(),
                    registration_number: None,
                    document_number: None,
                    received_on: None,
                    retention_until: "2040-01-01",
                    stamp_due: None,
                    fields_json: "{}",
                    file_sha256: &"0".repeat(64),
                    file_name: "x.pdf",
                    media_type: "application/pdf",
                };
                assert_eq!(
                    tx.add_tx_version(id, 1, &w, "cancelled", "二重登録", None, 2)?,
                    Some(2)
                );
                // A second cancellation of the same version is refused (None), not applied.
                assert_eq!(
                    tx.add_tx_version(id, 1, &w, "cancelled", "x", None, 3)?,
                    None
                );
                Ok(())
            })
            .unwrap();
    }
    let guard = store.reader().unwrap();
    let r = guard.get();
    let needles = [
        "abc商事",
        "医療材料",
        "%",
        "_",
        "100%",
        "田中",
        "ガス",
        "zzz",
    ];
    let mut checked = 0;
    for i in 0..400 {
        let mut q = TxQuery {
            limit: 10_000,
            ..Default::default()
        };
        // Each field in about half the queries: alone, in pairs, all together, none.
        if rng.chance(50) {
            let a = rng.below(730);
            q.date_from = Some(date(a));
            if rng.chance(60) {
                q.date_to = Some(date(a + rng.below(120)));
            }
        } else if rng.chance(20) {
            q.date_to = Some(date(rng.below(730)));
        }
        if rng.chance(50) {
            let lo = rng.below(2_000_000) as i64;
            if rng.chance(70) {
                q.amount_min = Some(lo);
            }
            if rng.chance(70) {
                q.amount_max = Some(lo + rng.below(400_000) as i64);
            }
        }
        if rng.chance(40) {
            q.counterparty_key = Some(search_key(needles[rng.below(8) as usize]));
        }
        if rng.chance(15) {
            q.doc_type = Some("contract".into());
        }
        if i % 25 == 0 {
            q = TxQuery {
                missing: vec![["transaction_date", "amount", "counterparty"][i / 25 % 3].into()],
                limit: 10_000,
                ..Default::default()
            };
        }
        q.include_cancelled = rng.chance(20);
        let want: Vec<i64> = {
            let mut m: Vec<&Doc> = docs.iter().filter(|d| matches(d, &q)).collect();
            m.sort_by(|a, b| {
                (a.date.is_none(), &a.date, a.id).cmp(&(b.date.is_none(), &b.date, b.id))
            });
            m.iter().map(|d| d.id).collect()
        };
        let got: Vec<TxDocumentRow> = r.tx_search(&q).unwrap();
        let got: Vec<i64> = got.iter().map(|d| d.id).collect();
        assert_eq!(got, want, "query {q:?}");
        checked += want.len();
    }
    assert!(
        checked > 10_000,
        "the queries found too little to mean much: {checked}"
    );
    // Paging walks the same order.
    let page = |offset| {
        r.tx_search(&TxQuery {
            limit: 100,
            offset,
            ..Default::default()
        })
        .unwrap()
    };
    let (a, b) = (page(0), page(100));
    assert_eq!(a.len(), 100);
    assert!(a.last().unwrap().id != b[0].id);
    drop(guard);
    store.close();
}

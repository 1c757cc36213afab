//! Audit queries combine derived indexes, partial days and the not-yet-indexed tail; they must
//! give exactly what a naive scan of every event gives. `scripts/test-on-postgres.sh` runs this
//! again with the store on PostgreSQL (where every batch is indexed in its own transaction).

use std::collections::BTreeMap;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_store::{AuditFilter, Store, StoreOptions, day_start};

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
}

const ACTIONS: [&str; 4] = [
    actions::RECORD_READ,
    actions::PATIENT_SEARCH,
    actions::RECORD_LIST,
    actions::FINALISED,
];

#[test]
fn counts_and_events_match_a_naive_scan() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        background_indexing: false,
        ..Default::default()
    };
    let store = match mamori_testkit::postgres::suite_database() {
        Some(url) => Store::open_postgres(
            dir.path(),
            &mamori_store::postgres::parse_url(&url).unwrap(),
            opts,
        ),
        None => Store::open(dir.path(), opts),
    }
    .unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let start = day_start(20_600) + 5 * 3_600_000;
    let mut events = Vec::new();
    let mut ts = start;
    for _ in 0..40_000 {
        ts += rng.below(15_000) as i64; // about five days in all
        let actor = rng.below(12) as i64 + 1;
        let mut e = AuditEvent::new(
            ts,
            Some(ActorRef {
                id: actor,
                login: format!("a{actor}"),
                role: "doctor".into(),
            }),
            ACTIONS[rng.below(4) as usize],
            if rng.below(10) == 0 {
                Outcome::Denied
            } else {
                Outcome::Ok
            },
        );
        if rng.below(20) != 0 {
            e.patient = Some(format!("P{}", rng.below(40)));
        }
        events.push(e);
    }
    let (first, rest) = events.split_at(30_000);
    let batch = |evs: Vec<AuditEvent>| {
        store
            .write_blocking(move |tx| -> Result<(), mamori_store::StoreError> {
                for e in &evs {
                    tx.append(e)?;
                }
                Ok(())
            })
            .unwrap()
    };
    batch(first.to_vec());
    store.write_blocking(|tx| tx.index_all()).unwrap();
    // The rest stays unindexed: queries must read it from the ledger itself.
    batch(rest.to_vec());
    let g = store.reader().unwrap();
    let r = g.get();
    // On PostgreSQL each write transaction indexes its own entries: no tail.
    let tail_from = if store.on_postgres() { 40_000 } else { 30_000 };
    assert_eq!(r.indexed_upto().unwrap(), tail_from);

    let naive_counts = |from: i64, to: i64, patient: Option<&str>| {
        let mut m: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
        for e in &events {
            let (Some(p), Some(a)) = (&e.patient, &e.actor) else {
                continue;
            };
            if e.ts >= from
                && e.ts < to
                && patient.is_none_or(|x| x == p)
                && mamori_store::is_chart_access(&e.action, e.outcome.as_str())
            {
                *m.entry(p.clone()).or_default().entry(a.id).or_default() += 1;
            }
        }
        m
    };
    for _ in 0..40 {
        let from = start + rng.below(5 * 86_400_000) as i64;
        let to = from + rng.below(3 * 86_400_000) as i64 + 1;
        let patient = (rng.below(3) == 0).then(|| format!("P{}", rng.below(40)));
        let got = r.access_counts(from, to, patient.as_deref()).unwrap();
        let want = naive_counts(from, to, patient.as_deref());
        let got_map: BTreeMap<String, BTreeMap<i64, i64>> = got
            .into_iter()
            .map(|c| (c.patient_id, c.by_actor.into_iter().collect()))
            .collect();
        assert_eq!(got_map, want, "from {from} to {to} patient {patient:?}");
    }
    // A day-aligned window exercises the full-day path with no edges.
    let (from, to) = (day_start(20_601), day_start(20_603));
    let got: BTreeMap<String, i64> = r
        .access_counts(from, to, None)
        .unwrap()
        .into_iter()
        .map(|c| (c.patient_id, c.total))
        .collect();
    let want: BTreeMap<String, i64> = naive_counts(from, to, None)
        .into_iter()
        .map(|(p, m)| (p, m.values().sum()))
        .collect();
    assert_eq!(got, want);

    for _ in 0..40 {
        let patient = (rng.below(2) == 0).then(|| format!("P{}", rng.below(40)));
        let actor = (rng.below(2) == 0).then(|| rng.below(12) as i64 + 1);
        let from = (rng.below(2) == 0).then(|| start + rng.below(4 * 86_400_000) as i64);
        let to = from.map(|f| f + rng.below(2 * 86_400_000) as i64 + 1);
        let limit = 1 + rng.below(3000) as u32;
        let f = AuditFilter {
            patient: patient.clone(),
            actor,
            from,
            to,
            limit,
            action_prefix: None,
            before_idx: None,
        };
        let got: Vec<i64> = r
            .audit_events(&f)
            .unwrap()
            .into_iter()
            .map(|e| e.idx)
            .collect();
        let want: Vec<i64> = events
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, e)| {
                patient
                    .as_ref()
                    .is_none_or(|p| e.patient.as_ref() == Some(p))
                    && actor.is_none_or(|a| e.actor.as_ref().map(|x| x.id) == Some(a))
                    && from.is_none_or(|t| e.ts >= t)
                    && to.is_none_or(|t| e.ts < t)
            })
            .take(limit as usize)
            .map(|(i, _)| i as i64)
            .collect();
        assert_eq!(
            got, want,
            "patient {patient:?} actor {actor:?} from {from:?} to {to:?} limit {limit}"
        );
    }
    drop(g);
    store.close();
}

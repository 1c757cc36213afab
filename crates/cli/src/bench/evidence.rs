//! `mamori bench evidence`: what signing costs at finalisation (with and without signatures
//! and time-stamps, in the same run), and the time to build and stamp one RFC 4998 evidence
//! record over a million versions, beside the cost of stamping each version on its own.

use std::sync::Arc;
use std::time::Instant;

use mamori_domain::SystemClock;
use mamori_evidence::ers::{self, HashAlg, HashTree};
use mamori_service::access::accounts::NewAccount;
use mamori_service::instance::{InitParams, init, open_with};
use mamori_service::records::RecordInput;
use mamori_service::records::patients::NewPatient;
use mamori_service::{Config, Principal, Service, ServiceError};
use mamori_store::StoreOptions;

const PW: &str = "bench passphrase 12345";

async fn instance(
    dir: &std::path::Path,
    sign: bool,
) -> Result<(Arc<Service>, Principal), ServiceError> {
    // Opening a store waits on its writer thread: not on the runtime's own threads.
    let svc = tokio::task::block_in_place(|| -> Result<_, ServiceError> {
        init(
            dir,
            &InitParams {
                facility: "ベンチ診療所",
                admin_login: "admin",
                admin_password: PW,
            },
        )?;
        let mut cfg = Config::load(dir)?;
        cfg.evidence.sign = sign;
        cfg.evidence.dev_tsa = sign;
        cfg.lockout.failure_delay_ms = 0;
        open_with(
            dir,
            Arc::new(SystemClock),
            StoreOptions::default(),
            Some(cfg),
        )
    })?;
    let ok = svc
        .change_password("admin", PW, "bench passphrase 67890", None)
        .await?;
    let admin = svc.authenticate(&ok.token, None).await?;
    svc.create_account(
        &admin,
        NewAccount {
            login: "dr.bench".into(),
            display_name: "ベンチ 医師".into(),
            role: "doctor".into(),
            password: Some(PW.into()),
            service: false,
        },
    )
    .await?;
    let ok = svc
        .change_password("dr.bench", PW, "bench passphrase 67890", None)
        .await?;
    let dr = svc.authenticate(&ok.token, None).await?;
    svc.create_patient(
        &dr,
        NewPatient {
            id: "P1".into(),
            name_kanji: "計測 太郎".into(),
            name_kana: "ケイソク タロウ".into(),
            birth_date: "1970-01-01".into(),
            sex: "male".into(),
        },
    )
    .await?;
    Ok((svc, dr))
}

/// Finalises `n` drafts from `clients` concurrent clients; returns finalisations per second.
async fn finalise_rate(sign: bool, n: usize, clients: usize) -> Result<f64, ServiceError> {
    let dir = tempfile::tempdir().map_err(ServiceError::internal)?;
    let data = dir.path().join("data");
    let (svc, dr) = instance(&data, sign).await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let w = svc
            .create_record(
                &dr,
                RecordInput {
                    patient_id: "P1".into(),
                    kind: "medical_record".into(),
                    title: format!("経過記録 {i}"),
                    body: "S: 頭痛なし。O: 血圧 124/78。A/P: 経過観察。".repeat(8),
                    ..Default::default()
                },
                vec![],
            )
            .await?;
        ids.push(w.record_id);
    }
    // One warm-up (the first signature issues the author's certificate).
    let started = Instant::now();
    let chunks: Vec<Vec<i64>> = ids
        .chunks(n.div_ceil(clients))
        .map(<[i64]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (svc, dr) = (svc.clone(), dr.clone());
        tasks.push(tokio::spawn(async move {
            for id in chunk {
                svc.finalise_record(&dr, id).await?;
            }
            Ok::<_, ServiceError>(())
        }));
    }
    for t in tasks {
        t.await.map_err(ServiceError::internal)??;
    }
    let secs = started.elapsed().as_secs_f64();
    if sign {
        let st = svc.store().reader()?;
        let (pending, _) = st.get().timestamps_pending()?;
        if pending != 0 {
            return Err(ServiceError::internal(format!(
                "{pending} signatures without a time-stamp"
            )));
        }
    }
    tokio::task::block_in_place(|| svc.store().close());
    Ok(n as f64 / secs)
}

pub async fn run(versions: usize, finalisations: usize) -> Result<(), ServiceError> {
    println!("== finalisation: {finalisations} records, sequential and 8 concurrent clients");
    for clients in [1, 8] {
        let plain = finalise_rate(false, finalisations, clients).await?;
        let signed = finalise_rate(true, finalisations, clients).await?;
        println!(
            "  {clients} client(s): without signatures {plain:.0}/s; signed + time-stamped (CAdES-B-T, dev TSA) {signed:.0}/s ({:.2}× the unsigned rate)",
            signed / plain
        );
    }

    println!("== evidence record over {versions} versions (statement + signature per version)");
    let dir = tempfile::tempdir().map_err(ServiceError::internal)?;
    let (svc, _) = instance(&dir.path().join("data"), true).await?;
    let alg = HashAlg::Sha256;
    // Stand-ins for statement and .p7s bytes of typical size (the hashing is what scales).
    let statement = vec![0x5au8; 1_200];
    let p7s = vec![0xa5u8; 1_900];
    let started = Instant::now();
    let mut leaves = Vec::with_capacity(versions * 32);
    let mut s = statement.clone();
    for i in 0..versions {
        s[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let members = vec![alg.digest(&s), alg.digest(&p7s)];
        leaves.extend(ers::group_leaf(alg, &members));
    }
    let hashed = started.elapsed().as_secs_f64();
    let tree = HashTree::build(alg, leaves).map_err(|e| ServiceError::internal(e.message))?;
    let built = started.elapsed().as_secs_f64();
    let (token, _) = svc.time_stamp(tree.root().to_vec()).await?;
    let stamped = started.elapsed().as_secs_f64();
    // One member's evidence record, and its verification.
    let i = versions / 3;
    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let members = vec![alg.digest(&s), alg.digest(&p7s)];
    let t = Instant::now();
    let ats = ers::archive_time_stamp(alg, tree.reduced(i, &members), &token)
        .map_err(|e| ServiceError::internal(e.message))?;
    let er = ers::encode(vec![vec![ats]]).map_err(|e| ServiceError::internal(e.message))?;
    let ca = mamori_service::access::ca::ca_pem(svc.data_dir()).unwrap_or_default();
    let anchors = mamori_evidence::cert::Cert::from_pem_chain(&ca).unwrap_or_default();
    ers::verify(&er, &[&s, &p7s], &anchors).map_err(|e| ServiceError::internal(e.message))?;
    let one = t.elapsed().as_secs_f64();
    // The alternative: one time-stamp per version.
    let t = Instant::now();
    let k = 200;
    for j in 0..k {
        svc.time_stamp(alg.digest(&(j as u64).to_le_bytes()))
            .await?;
    }
    let per_token = t.elapsed().as_secs_f64() / k as f64;
    println!(
        "  hash {versions} × 2 objects: {hashed:.2} s; tree: {:.2} s; one time-stamp: {:.3} s; total {stamped:.2} s (goal < 10 s)",
        built - hashed,
        stamped - built
    );
    println!(
        "  one version's evidence record ({} bytes, {} hash lists) built and verified in {:.1} ms",
        er.len(),
        tree.reduced(i, &members).map(|l| l.len()).unwrap_or(0),
        one * 1000.0
    );
    println!(
        "  one time-stamp per version instead: {:.2} ms each (dev TSA, in process) → {:.0} s for {versions}, {:.0}× the evidence record",
        per_token * 1000.0,
        per_token * versions as f64,
        per_token * versions as f64 / stamped
    );
    tokio::task::block_in_place(|| svc.store().close());
    Ok(())
}

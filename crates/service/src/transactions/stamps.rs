//! Time-stamps on transaction documents (電子帳簿保存法施行規則4条1項2号): each file gets an
//! RFC 3161 token from the configured TSA right after it is registered (or retried in the
//! background until it does), and 一括検証 (2条6項2号ロ) checks every token of a period at once.

use super::*;
use mamori_domain::Millis;

/// Longest wait between two attempts at a stamp.
const MAX_BACKOFF: Millis = 6 * 3_600_000;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StampVerdict {
    /// The token verifies and the file is the one it was made for.
    Valid,
    /// Valid, but from the development TSA (no legal weight).
    Development,
    /// The file now differs from what was stamped.
    FileChanged,
    /// The token itself does not verify.
    Invalid,
    /// The current file has no token yet.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct StampCheck {
    pub document: i64,
    pub file_sha256: String,
    pub verdict: StampVerdict,
    pub gen_time: Option<Millis>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct BulkVerifyReport {
    pub from: String,
    pub to: String,
    pub documents: usize,
    pub stamps: usize,
    pub valid: usize,
    pub development: usize,
    pub problems: Vec<StampCheck>,
}

impl BulkVerifyReport {
    pub fn passed(&self) -> bool {
        self.problems
            .iter()
            .all(|p| p.verdict == StampVerdict::Development)
    }
}

impl Service {
    /// Asks the TSA for the current file's token and records it; on failure records when to
    /// try again. A file already stamped is left as it is.
    pub async fn stamp_transaction(self: &Arc<Self>, id: i64) -> Result<TxStampView> {
        let doc = self
            .store
            .read(move |r| Ok((r.tx_document(id)?, r.tx_stamps(id)?)))
            .await?;
        let (Some(doc), stamps) = doc else {
            return Err(ServiceError::not_found("取引書類"));
        };
        if let Some(s) = stamps.iter().find(|s| s.file_sha256 == doc.file_sha256) {
            return Ok(TxStampView::from(s));
        }
        let digest = hex::decode(&doc.file_sha256).map_err(ServiceError::internal)?;
        match self.time_stamp(digest).await {
            Ok((token, info)) => {
                let row = mamori_store::TxStampRow {
                    document_id: id,
                    file_sha256: doc.file_sha256.clone(),
                    development: info.development,
                    token,
                    gen_time: info.gen_time,
                    tsa: info.tsa_subject.clone(),
                    stamped_at: self.now(),
                };
                let mut t = Target::default();
                t.detail("document", id);
                t.detail("file_sha256", doc.file_sha256.clone());
                t.detail("gen_time", info.gen_time);
                t.detail("tsa", info.tsa_subject.clone());
                t.detail("tsa_serial", info.serial.clone());
                t.detail("development", info.development);
                let view = TxStampView::from(&row);
                self.write_audited(
                    None,
                    actions::TRANSACTION_TIMESTAMPED,
                    t,
                    move |_, tx, _| Ok(tx.insert_tx_stamp(&row)?),
                )
                .await?;
                Ok(view)
            }
            Err(e) => {
                let backoff = (60_000_i64 << doc.stamp_attempts.clamp(0, 10)).min(MAX_BACKOFF);
                let next = self.now() + backoff;
                let msg = e.message.clone();
                if doc.stamp_attempts == 0 {
                    let mut t = Target::default();
                    t.detail("document", id);
                    t.detail("error", msg.clone());
                    self.write_audited(
                        None,
                        actions::TRANSACTION_TIMESTAMP_FAILED,
                        t,
                        move |_, tx, _| Ok(tx.note_tx_stamp_failure(id, &msg, Some(next))?),
                    )
                    .await?;
                } else {
                    self.write_audited(
                        None,
                        actions::TRANSACTION_TIMESTAMP_FAILED,
                        {
                            let mut t = Target::default();
                            t.detail("document", id);
                            t.detail("attempt", doc.stamp_attempts + 1);
                            t
                        },
                        move |_, tx, _| Ok(tx.note_tx_stamp_failure(id, &msg, Some(next))?),
                    )
                    .await?;
                }
                Err(e)
            }
        }
    }

    /// Stamps what is still awaited (run every minute by the serving node holding the lead).
    pub async fn transaction_stamp_sweep(self: &Arc<Self>) -> Result<(usize, usize)> {
        let now = self.now();
        let due = self.store.read(move |r| r.tx_stamps_due(now, 100)).await?;
        let (mut ok, mut failed) = (0, 0);
        for d in due {
            match self.stamp_transaction(d.id).await {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        Ok((ok, failed))
    }

    /// 一括検証: every time-stamp of the documents whose 取引年月日 is in the period (and of
    /// those without a date registered in it), each token checked against the TSA roots and
    /// the file re-hashed.
    pub async fn verify_transaction_stamps(
        self: &Arc<Self>,
        p: Option<&Principal>,
        from: String,
        to: String,
    ) -> Result<BulkVerifyReport> {
        self.may_read(p, actions::TRANSACTION_STAMPS_VERIFIED)
            .await?;
        let q = self
            .ledgered(
                p,
                actions::TRANSACTION_STAMPS_VERIFIED,
                TxSearch::period(from, to, "検証する"),
            )
            .await?;
        let (df, dt) = (
            q.date_from.clone().unwrap_or_default(),
            q.date_to.clone().unwrap_or_default(),
        );
        self.read_logged(p, actions::TRANSACTION_STAMPS_VERIFIED, move |svc, r, t| {
            let mut docs = r.tx_search(&q)?;
            docs.extend(undated_in(r, &df, &dt)?);
            let mut rep = BulkVerifyReport {
                from: df.clone(),
                to: dt.clone(),
                documents: docs.len(),
                ..Default::default()
            };
            for d in &docs {
                let stamps = r.tx_stamps(d.id)?;
                if !stamps.iter().any(|s| s.file_sha256 == d.file_sha256) {
                    rep.problems.push(StampCheck {
                        document: d.id,
                        file_sha256: d.file_sha256.clone(),
                        verdict: StampVerdict::Missing,
                        gen_time: None,
                        message: "現在のファイルにタイムスタンプがありません".into(),
                    });
                }
                for s in stamps {
                    rep.stamps += 1;
                    let check = |verdict, message: String| StampCheck {
                        document: d.id,
                        file_sha256: s.file_sha256.clone(),
                        verdict,
                        gen_time: Some(s.gen_time),
                        message,
                    };
                    let bytes = match svc.store().blobs().get(&s.file_sha256) {
                        Ok(b) => b,
                        Err(e) => {
                            rep.problems.push(check(
                                StampVerdict::FileChanged,
                                format!("ファイルを読めません: {e}"),
                            ));
                            continue;
                        }
                    };
                    let actual = sha256_hex(&bytes);
                    if actual != s.file_sha256 {
                        rep.problems.push(check(
                            StampVerdict::FileChanged,
                            format!(
                                "ファイルがタイムスタンプの後に変わっています（SHA-256 {actual}）"
                            ),
                        ));
                        continue;
                    }
                    let digest = hex::decode(&s.file_sha256).map_err(ServiceError::internal)?;
                    match svc.check_time_stamp(&s.token, &digest) {
                        Ok(info) if info.development => {
                            rep.development += 1;
                            rep.problems.push(check(
                                StampVerdict::Development,
                                "有効（ただし開発用TSA・法的効力なし）".into(),
                            ));
                        }
                        Ok(info) if info.gen_time != s.gen_time => rep.problems.push(check(
                            StampVerdict::Invalid,
                            "トークンの時刻が記録と一致しません".into(),
                        )),
                        Ok(_) => rep.valid += 1,
                        Err(e) => rep.problems.push(check(
                            StampVerdict::Invalid,
                            format!("トークンを検証できません: {}", e.message),
                        )),
                    }
                }
            }
            t.detail("from", df.clone());
            t.detail("to", dt.clone());
            t.detail("documents", rep.documents);
            t.detail("stamps", rep.stamps);
            t.detail("valid", rep.valid);
            t.detail("development", rep.development);
            t.detail("problems", rep.problems.len() - rep.development);
            Ok(rep)
        })
        .await
    }
}

/// Documents without a 取引年月日 registered (JST) within [from, to].
pub(super) fn undated_in(
    r: &Reader<'_>,
    from: &str,
    to: &str,
) -> Result<Vec<mamori_store::TxDocumentRow>> {
    let (Some(f), Some(t)) = (calendar::parse(from), calendar::parse(to)) else {
        return Ok(Vec::new());
    };
    let q = mamori_store::TxQuery {
        missing: vec!["transaction_date".into()],
        include_cancelled: true,
        limit: 10_000,
        ..Default::default()
    };
    Ok(r.tx_search(&q)?
        .into_iter()
        .filter(|d| (f..=t).contains(&jst_today(d.registered_at)))
        .collect())
}

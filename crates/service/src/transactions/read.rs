//! Reading transaction documents: one document with its versions, checks and warnings; the
//! search; a file or a time-stamp token. Each read is in the ledger before it is answered.

use super::*;
use mamori_domain::Millis;
use mamori_domain::bookkeeping::Check;
use mamori_store::{TxDocumentRow, TxQuery, TxStampRow};

#[derive(Debug, Clone, Serialize)]
pub struct TxVersionView {
    pub version_no: i64,
    pub change: String,
    pub reason: Option<String>,
    pub entered_by: Option<i64>,
    pub entered_by_name: Option<String>,
    pub entered_at: Millis,
    pub file_name: String,
    pub media_type: String,
    pub file_sha256: String,
    pub fields: DocumentFields,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxStampView {
    pub file_sha256: String,
    pub gen_time: Millis,
    pub tsa: String,
    /// The development TSA's stamp: no legal effect (電帳法 needs a 総務大臣認定 TSA).
    pub development: bool,
}

impl From<&TxStampRow> for TxStampView {
    fn from(s: &TxStampRow) -> Self {
        Self {
            file_sha256: s.file_sha256.clone(),
            gen_time: s.gen_time,
            tsa: s.tsa.clone(),
            development: s.development,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TxView {
    pub document: TxDocumentRow,
    pub fields: DocumentFields,
    pub versions: Vec<TxVersionView>,
    /// The time-stamp of the current file, if it has one.
    pub stamp: Option<TxStampView>,
    pub stamps: Vec<TxStampView>,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
}

/// What the search form or the API's query string gives (all text, checked here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TxSearch {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub counterparty: String,
    #[serde(default)]
    pub doc_type: String,
    #[serde(default)]
    pub direction: String,
    /// `transaction_date`, `amount` or `counterparty`: only documents where it is empty.
    #[serde(default)]
    pub missing: String,
    #[serde(default)]
    pub include_cancelled: bool,
    #[serde(default)]
    pub offset: u32,
    #[serde(default)]
    pub limit: u32,
}

fn yen_arg(s: &str, field: &'static str) -> Result<Option<i64>> {
    match bookkeeping::parse_yen(s) {
        Ok(Some(v)) if !(0..=bookkeeping::MAX_AMOUNT).contains(&v) => Err(ServiceError::invalid(
            field,
            "金額は0以上で入力してください",
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(ServiceError::invalid(
            field,
            "金額は数字で入力してください（例: 12100）",
        )),
    }
}

fn date_arg(s: &str, field: &'static str) -> Result<Option<String>> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !mamori_domain::date::valid(t) {
        return Err(ServiceError::invalid(
            field,
            "日付は YYYY-MM-DD の実在する日付で入力してください",
        ));
    }
    Ok(Some(t.to_owned()))
}

impl TxSearch {
    pub fn query(&self) -> Result<TxQuery> {
        let date_from = date_arg(&self.from, "from")?;
        let date_to = date_arg(&self.to, "to")?;
        if let (Some(f), Some(t)) = (&date_from, &date_to)
            && t < f
        {
            return Err(ServiceError::invalid(
                "to",
                "期間の終わりが始まりより前です",
            ));
        }
        let amount_min = yen_arg(&self.min, "min")?;
        let amount_max = yen_arg(&self.max, "max")?;
        if let (Some(a), Some(b)) = (amount_min, amount_max)
            && b < a
        {
            return Err(ServiceError::invalid(
                "max",
                "金額の上限が下限より小さいです",
            ));
        }
        let doc_type = match self.doc_type.trim() {
            "" => None,
            t => Some(
                bookkeeping::DocType::parse(t)
                    .ok_or_else(|| {
                        ServiceError::invalid("doc_type", "書類の種類が正しくありません")
                    })?
                    .as_str()
                    .to_owned(),
            ),
        };
        let direction = match self.direction.trim() {
            "" => None,
            d => Some(
                bookkeeping::Direction::parse(d)
                    .ok_or_else(|| {
                        ServiceError::invalid("direction", "受領・発行の指定が正しくありません")
                    })?
                    .as_str()
                    .to_owned(),
            ),
        };
        let missing = match self.missing.trim() {
            "" => Vec::new(),
            m @ ("transaction_date" | "amount" | "counterparty") => vec![m.to_owned()],
            _ => {
                return Err(ServiceError::invalid(
                    "missing",
                    "未入力の項目は transaction_date・amount・counterparty のいずれかです",
                ));
            }
        };
        let counterparty = self.counterparty.trim();
        if counterparty.chars().count() > 200 {
            return Err(ServiceError::invalid(
                "counterparty",
                "取引先は200文字以内で入力してください",
            ));
        }
        Ok(TxQuery {
            date_from,
            date_to,
            amount_min,
            amount_max,
            counterparty_key: Some(bookkeeping::search_key(counterparty)).filter(|k| !k.is_empty()),
            doc_type,
            direction,
            missing,
            include_cancelled: self.include_cancelled,
            limit: if self.limit == 0 {
                200
            } else {
                self.limit.min(10_000)
            },
            offset: self.offset,
        })
    }

    /// The query of a period both ends of which are required (一括検証, the tax officer's ZIP):
    /// every document, cancelled ones included.
    pub fn period(from: String, to: String, what: &str) -> Result<TxQuery> {
        let q = TxSearch {
            from,
            to,
            include_cancelled: true,
            limit: 10_000,
            ..Default::default()
        }
        .query()?;
        if q.date_from.is_none() || q.date_to.is_none() {
            return Err(ServiceError::invalid(
                "from",
                format!("{what}期間（始まりと終わり）を指定してください"),
            ));
        }
        Ok(q)
    }

    /// The query as the ledger keeps it (what was looked for, not what was found).
    fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from, "to": self.to, "min": self.min, "max": self.max,
            "counterparty": self.counterparty, "doc_type": self.doc_type,
            "direction": self.direction, "missing": self.missing,
        })
    }
}

/// What a document's dates say about the law's deadlines (施行規則4条1項2号: the stamp
/// 速やかに after receipt, or within the processing period and then 速やかに).
pub fn warnings(
    doc: &TxDocumentRow,
    fields: &DocumentFields,
    stamp: Option<&TxStampRow>,
    today: calendar::Day,
) -> Vec<String> {
    let mut w = Vec::new();
    let due = doc.stamp_due.as_deref().and_then(calendar::parse);
    let registered = jst_today(doc.registered_at);
    if fields.direction == bookkeeping::Direction::Received && fields.received_on.is_none() {
        w.push("受領日が未入力のため、タイムスタンプの期限を判定できません".to_owned());
    }
    if let Some(due) = due {
        if registered > due {
            w.push(format!(
                "期限（{}）より後に登録されました（{}）",
                calendar::format(due),
                calendar::format(registered)
            ));
        }
        match stamp {
            Some(s) if jst_today(s.gen_time) > due => w.push(format!(
                "タイムスタンプが期限（{}）より後に付与されました（{}）",
                calendar::format(due),
                calendar::format(jst_today(s.gen_time))
            )),
            None if today > due => w.push(format!(
                "タイムスタンプの期限（{}）を過ぎていますが、まだ付与されていません",
                calendar::format(due)
            )),
            _ => {}
        }
    }
    if stamp.is_none() {
        w.push(match &doc.stamp_error {
            Some(e) => format!("タイムスタンプ待ち（前回: {e}）"),
            None => "タイムスタンプ待ち".to_owned(),
        });
    }
    if stamp.is_some_and(|s| s.development) {
        w.push(
            "開発用TSAのタイムスタンプです（法的効力なし）。総務大臣認定のタイムスタンプ局を evidence.tsa_urls に設定してください"
                .to_owned(),
        );
    }
    if doc.status == "cancelled" {
        w.push("この書類は取り消されています（記録は保存期間中残ります）".to_owned());
    }
    w
}

impl Service {
    /// Refuses (in the ledger) a person without the right to read the documents, before
    /// anything else is looked at.
    pub(super) async fn may_read(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
    ) -> Result<()> {
        self.may_do(p, action, Action::ReadTransactions).await
    }

    /// The same for the right to register and correct.
    pub(super) async fn may_write(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
    ) -> Result<()> {
        self.may_do(p, action, Action::WriteTransactions).await
    }

    async fn may_do(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
        right: Action,
    ) -> Result<()> {
        match p {
            Some(p) => self.gate(p, action, may(Some(p), right)).await,
            None => Ok(()),
        }
    }

    /// A read by a person (`read_audited`) or by the command-line operator (the same entry
    /// without an actor).
    pub(super) async fn read_logged<R: Send + 'static>(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
        f: impl FnOnce(&Service, &Reader<'_>, &mut Target) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if let Some(p) = p {
            let pc = p.clone();
            return self
                .read_audited(p, action, move |svc, r, t| {
                    may(Some(&pc), Action::ReadTransactions)?;
                    f(svc, r, t)
                })
                .await;
        }
        let this = Arc::clone(self);
        let (result, mut target) = self
            .store
            .read(move |r| {
                let mut t = Target::default();
                let res = f(&this, r, &mut t);
                Ok((res, t))
            })
            .await?;
        if result.is_ok() {
            target.detail("operator", "command line");
            let this = Arc::clone(self);
            self.write_audited(None, action, target, move |_, _, _| {
                let _ = &this;
                Ok(())
            })
            .await?;
        }
        result
    }

    pub async fn transaction(self: &Arc<Self>, p: Option<&Principal>, id: i64) -> Result<TxView> {
        let now = self.now();
        self.read_logged(p, actions::TRANSACTION_VIEWED, move |_, r, t| {
            t.detail("document", id);
            load_view(r, id, now)
        })
        .await
    }

    pub async fn search_transactions(
        self: &Arc<Self>,
        p: Option<&Principal>,
        search: TxSearch,
    ) -> Result<Vec<TxDocumentRow>> {
        self.may_read(p, actions::TRANSACTION_SEARCHED).await?;
        let q = self
            .ledgered(p, actions::TRANSACTION_SEARCHED, search.query())
            .await?;
        let detail = search.detail();
        self.read_logged(p, actions::TRANSACTION_SEARCHED, move |_, r, t| {
            t.detail("query", detail);
            let rows = r.tx_search(&q)?;
            t.detail("found", rows.len());
            Ok(rows)
        })
        .await
    }

    /// A version's file (the current one when `version` is None): name, media type, bytes.
    pub async fn transaction_file(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
        version: Option<i64>,
    ) -> Result<(String, String, Vec<u8>)> {
        self.read_logged(p, actions::TRANSACTION_FILE_READ, move |svc, r, t| {
            t.detail("document", id);
            let versions = r.tx_versions(id)?;
            let v = match version {
                Some(n) => versions.iter().find(|v| v.version_no == n),
                None => versions.last(),
            }
            .ok_or_else(|| ServiceError::not_found("取引書類"))?;
            t.detail("version", v.version_no);
            t.detail("file_sha256", v.file_sha256.clone());
            let bytes = svc.store().blobs().get(&v.file_sha256)?;
            Ok((v.file_name.clone(), v.media_type.clone(), bytes))
        })
        .await
    }

    /// The current file's RFC 3161 time-stamp token (DER), to check with any tool.
    pub async fn transaction_token(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
    ) -> Result<Vec<u8>> {
        self.read_logged(p, actions::TRANSACTION_FILE_READ, move |_, r, t| {
            t.detail("document", id);
            t.detail("what", "timestamp_token");
            let doc = r
                .tx_document(id)?
                .ok_or_else(|| ServiceError::not_found("取引書類"))?;
            r.tx_stamps(id)?
                .into_iter()
                .find(|s| s.file_sha256 == doc.file_sha256)
                .map(|s| s.token)
                .ok_or_else(|| ServiceError::not_found("タイムスタンプ"))
        })
        .await
    }
}

pub(crate) fn load_view(r: &Reader<'_>, id: i64, now: Millis) -> Result<TxView> {
    let document = r
        .tx_document(id)?
        .ok_or_else(|| ServiceError::not_found("取引書類"))?;
    let rows = r.tx_versions(id)?;
    let mut versions = Vec::with_capacity(rows.len());
    for v in rows {
        let fields: DocumentFields =
            serde_json::from_str(&v.fields).map_err(ServiceError::internal)?;
        let entered_by_name = match v.entered_by {
            Some(a) => r.account(a)?.map(|a| a.display_name),
            None => Some("コマンドライン（運用者）".to_owned()),
        };
        versions.push(TxVersionView {
            version_no: v.version_no,
            change: v.change,
            reason: v.reason,
            entered_by: v.entered_by,
            entered_by_name,
            entered_at: v.entered_at,
            file_name: v.file_name,
            media_type: v.media_type,
            file_sha256: v.file_sha256,
            fields,
        });
    }
    let fields = versions
        .last()
        .map(|v| v.fields.clone())
        .ok_or_else(|| ServiceError::internal("document without versions"))?;
    let stamp_rows = r.tx_stamps(id)?;
    let current = stamp_rows
        .iter()
        .find(|s| s.file_sha256 == document.file_sha256);
    let warnings = warnings(&document, &fields, current, jst_today(now));
    let mut checks = bookkeeping::checks(&fields);
    if let Some(c) = super::registry::registry_check(r, &fields)? {
        checks.push(c);
    }
    Ok(TxView {
        stamp: current.map(TxStampView::from),
        stamps: stamp_rows.iter().map(TxStampView::from).collect(),
        document,
        fields,
        versions,
        checks,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(due: Option<&str>, registered: &str) -> TxDocumentRow {
        let reg = calendar::parse(registered).unwrap() * 86_400_000;
        TxDocumentRow {
            id: 1,
            current_version: 1,
            doc_type: "invoice".into(),
            direction: "received".into(),
            transaction_date: None,
            amount: None,
            counterparty: None,
            registration_number: None,
            document_number: None,
            received_on: None,
            file_sha256: "a".into(),
            status: "active".into(),
            retention_until: "2040-01-01".into(),
            stamp_due: due.map(Into::into),
            registered_at: reg,
            registered_by: None,
            updated_at: reg,
            stamp_attempts: 0,
            stamp_next_at: None,
            stamp_error: None,
        }
    }

    fn stamp(on: &str, development: bool) -> TxStampRow {
        TxStampRow {
            document_id: 1,
            file_sha256: "a".into(),
            token: vec![],
            gen_time: calendar::parse(on).unwrap() * 86_400_000,
            tsa: "TSA".into(),
            development,
            stamped_at: 0,
        }
    }

    #[test]
    fn late_registration_and_stamps_are_named() {
        let f = DocumentFields {
            received_on: Some("2026-11-02".into()),
            ..Default::default()
        };
        let today = calendar::parse("2026-12-05").unwrap();
        // On time: nothing to say.
        let d = doc(Some("2026-11-12"), "2026-11-04");
        assert!(warnings(&d, &f, Some(&stamp("2026-11-04", false)), today).is_empty());
        // Registered late, stamped late.
        let d = doc(Some("2026-11-12"), "2026-11-20");
        let w = warnings(&d, &f, Some(&stamp("2026-11-20", false)), today);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("期限（2026-11-12）より後に登録"));
        assert!(w[1].contains("タイムスタンプが期限"));
        // Not stamped and past due; a development stamp says so.
        let w = warnings(&doc(Some("2026-11-12"), "2026-11-04"), &f, None, today);
        assert!(w.iter().any(|w| w.contains("まだ付与されていません")));
        let w = warnings(
            &doc(Some("2026-11-12"), "2026-11-04"),
            &f,
            Some(&stamp("2026-11-04", true)),
            today,
        );
        assert!(w.iter().any(|w| w.contains("開発用TSA")));
        // A received document without its receipt date cannot be judged.
        let w = warnings(
            &doc(None, "2026-11-04"),
            &DocumentFields::default(),
            None,
            today,
        );
        assert!(w[0].contains("受領日が未入力"));
    }

    #[test]
    fn search_arguments_are_checked_in_japanese() {
        let bad = |s: TxSearch, field: &str| {
            let e = s.query().unwrap_err();
            assert_eq!(e.field, Some(field), "{}", e.message);
        };
        bad(
            TxSearch {
                from: "2026/01/01".into(),
                ..Default::default()
            },
            "from",
        );
        bad(
            TxSearch {
                from: "2026-02-01".into(),
                to: "2026-01-01".into(),
                ..Default::default()
            },
            "to",
        );
        bad(
            TxSearch {
                min: "-5".into(),
                ..Default::default()
            },
            "min",
        );
        bad(
            TxSearch {
                min: "abc".into(),
                ..Default::default()
            },
            "min",
        );
        bad(
            TxSearch {
                min: "100".into(),
                max: "50".into(),
                ..Default::default()
            },
            "max",
        );
        bad(
            TxSearch {
                missing: "x".into(),
                ..Default::default()
            },
            "missing",
        );
        let q = TxSearch {
            min: "１２，１００円".into(),
            counterparty: " ＡＢＣ商事 ".into(),
            ..Default::default()
        }
        .query()
        .unwrap();
        assert_eq!(q.amount_min, Some(12_100));
        assert_eq!(q.counterparty_key.as_deref(), Some("abc商事"));
    }
}

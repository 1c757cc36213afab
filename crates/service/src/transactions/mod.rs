//! 電子帳簿保存法 (法7条, 施行規則4条): the facility's electronic transaction documents —
//! invoices, receipts, quotations, contracts received or sent as data — kept with 真実性 (every
//! version, no deletion, each change with its reason in the ledger, and an RFC 3161 time-stamp
//! on each file) and 可視性 (search by date, amount and counterparty; display; the download a
//! tax officer asks for), and the インボイス checks of received invoices.
//!
//! Owns: registration, correction and cancellation (here), the views and search (`read`), the
//! time-stamps and 一括検証 (`stamps`), the tax officer's ZIP (`export`). Calls `ledger`
//! through the audited read and write, and `evidence` for the time-stamp itself. The rules
//! (check digit, required items, per-rate rounding, holidays, deadlines, retention, JP PINT)
//! are the domain's `bookkeeping`.

mod documents;
mod export;
mod read;
mod registry;
mod stamps;

pub use documents::BooksDoc;
pub use export::ExportSummary;
pub use read::*;
pub use registry::REGISTRY_KEY;
pub use registry::RegistryStatus;
pub use stamps::{BulkVerifyReport, StampVerdict};

use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::bookkeeping::calendar::jst_day as jst_today;
use mamori_domain::bookkeeping::{self, BookkeepingSettings, DocumentFields, calendar, ubl};
use mamori_domain::content::{clean_file_name, sha256_hex, sniff_media_type};
use mamori_domain::permission::Action;
use mamori_store::{Reader, TxWrite};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::{ErrorCode, Principal, Service, Target};

/// The `meta` key holding the facility's bookkeeping settings (legal form, year end,
/// processing period), so they are in the ledger like every other stored fact.
const SETTINGS_KEY: &str = "bookkeeping_settings";

/// A file received or sent: its name as given and its bytes.
#[derive(Debug, Clone)]
pub struct TxFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a person (or the command line) gives when registering or correcting.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TxInput {
    #[serde(flatten)]
    pub fields: DocumentFields,
    /// The registration number is kept as the document prints it even though its check digit
    /// fails (the check then shows the failure).
    #[serde(default)]
    pub as_printed: bool,
    /// Which fields the person gave (the rest may come from a JP PINT file). Empty: all.
    #[serde(skip)]
    pub given: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxWritten {
    pub id: i64,
    pub version: i64,
    /// Whether the file carries its time-stamp now (otherwise it is retried in the background
    /// and the document shows it as awaited).
    pub stamped: bool,
    pub stamp_error: Option<String>,
    /// The JP PINT specification the file declared, when it was an e-invoice.
    pub e_invoice: Option<String>,
}

/// Media types a transaction document's file may have: those of records, and UBL XML.
const XML: &str = "application/xml";

pub(crate) fn may(p: Option<&Principal>, action: Action) -> Result<()> {
    match p {
        Some(p) => p.require(action, None),
        None => Ok(()),
    }
}

/// A file's media type, and the invoice read from it when it is XML.
fn inspect_file(
    f: &TxFile,
    max: u64,
    direction: bookkeeping::Direction,
) -> Result<(String, &'static str, Option<ubl::ParsedInvoice>)> {
    let name = clean_file_name(&f.name).map_err(|e| ServiceError::from(e).with_field("file"))?;
    if f.bytes.is_empty() {
        return Err(ServiceError::invalid(
            "file",
            format!("ファイル「{name}」が空です"),
        ));
    }
    if f.bytes.len() as u64 > max {
        return Err(ServiceError::new(
            ErrorCode::TooLarge,
            format!(
                "ファイル「{name}」が大きすぎます（上限 {} MB）",
                max / (1024 * 1024)
            ),
        )
        .with_field("file"));
    }
    if let Some(m) = sniff_media_type(&f.bytes) {
        return Ok((name, m, None));
    }
    if ubl::looks_like_xml(&f.bytes) {
        let parsed = ubl::parse(&f.bytes, direction).map_err(|m| {
            ServiceError::invalid("file", format!("電子インボイス（XML）を読めません: {m}"))
        })?;
        return Ok((name, XML, Some(parsed)));
    }
    Err(ServiceError::new(
        ErrorCode::UnsupportedType,
        format!("ファイル「{name}」の形式は使えません（PDF・JPEG・PNG・TIFF・電子インボイスの XML のみ）"),
    )
    .with_field("file"))
}

/// The fields a JP PINT file gave, with what the person typed taking precedence.
fn merge(parsed: DocumentFields, given: &TxInput) -> DocumentFields {
    let g = &given.fields;
    let typed = |name: &str| given.given.is_empty() || given.given.contains(&name);
    let pick = |ours: &Option<String>, theirs: Option<String>, name: &str| {
        if typed(name) && ours.is_some() {
            ours.clone()
        } else {
            theirs
        }
    };
    DocumentFields {
        doc_type: g.doc_type,
        direction: g.direction,
        transaction_date: pick(
            &g.transaction_date,
            parsed.transaction_date,
            "transaction_date",
        ),
        amount: if typed("amount") && g.amount.is_some() {
            g.amount
        } else {
            parsed.amount
        },
        counterparty: pick(&g.counterparty, parsed.counterparty, "counterparty"),
        counterparty_kind: g.counterparty_kind,
        registration_number: pick(
            &g.registration_number,
            parsed.registration_number,
            "registration_number",
        ),
        received_on: g.received_on.clone(),
        document_number: pick(
            &g.document_number,
            parsed.document_number,
            "document_number",
        ),
        invoice_kind: g.invoice_kind.or(parsed.invoice_kind),
        recipient: pick(&g.recipient, parsed.recipient, "recipient"),
        description: pick(&g.description, parsed.description, "description"),
        rates: if g.rates.is_empty() {
            parsed.rates
        } else {
            g.rates.clone()
        },
        amounts_include_tax: if g.rates.is_empty() {
            parsed.amounts_include_tax
        } else {
            g.amounts_include_tax
        },
    }
}

/// The search columns and version of a document, as the store writes them.
struct Prepared {
    fields: DocumentFields,
    fields_json: String,
    key: Option<String>,
    retention_until: String,
    stamp_due: Option<String>,
    file_sha256: String,
    file_name: String,
    media_type: String,
}

impl Prepared {
    fn write(&self) -> TxWrite<'_> {
        let f = &self.fields;
        TxWrite {
            doc_type: f.doc_type.as_str(),
            direction: f.direction.as_str(),
            transaction_date: f.transaction_date.as_deref(),
            amount: f.amount,
            counterparty: f.counterparty.as_deref(),
            counterparty_key: self.key.as_deref(),
            registration_number: f.registration_number.as_deref(),
            document_number: f.document_number.as_deref(),
            received_on: f.received_on.as_deref(),
            retention_until: &self.retention_until,
            stamp_due: self.stamp_due.as_deref(),
            fields_json: &self.fields_json,
            file_sha256: &self.file_sha256,
            file_name: &self.file_name,
            media_type: &self.media_type,
        }
    }

    fn target(&self, t: &mut Target, id: Option<i64>, version: i64) {
        if let Some(id) = id {
            t.detail("document", id);
        }
        t.detail("version", version);
        t.detail("doc_type", self.fields.doc_type.as_str());
        t.detail("file_sha256", self.file_sha256.clone());
        t.detail("fields_sha256", sha256_hex(self.fields_json.as_bytes()));
    }
}

pub(crate) fn settings_of(r: &Reader<'_>) -> Result<BookkeepingSettings> {
    Ok(match r.meta(SETTINGS_KEY)? {
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| ServiceError::internal(format!("bookkeeping settings: {e}")))?,
        None => BookkeepingSettings::default(),
    })
}

impl Service {
    /// A refusal found before the write began (a broken file, a bad query) is in the ledger
    /// like any other: the person's, with the error's code.
    pub(super) async fn ledgered<T>(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
        r: Result<T>,
    ) -> Result<T> {
        if let (Err(e), Some(p)) = (&r, p) {
            self.gate(p, action, Err(e.clone())).await?;
        }
        r
    }

    fn prepare_tx(
        &self,
        r: &Reader<'_>,
        mut fields: DocumentFields,
        as_printed: bool,
        file: (String, String, String),
        registered_on: calendar::Day,
    ) -> Result<Prepared> {
        let today = jst_today(self.now());
        fields
            .validate(today, as_printed)
            .map_err(|e| ServiceError::invalid(e.field, e.message))?;
        let settings = settings_of(r)?;
        let key = fields.counterparty.as_deref().map(bookkeeping::search_key);
        let retention_until = calendar::format(fields.retention_until(&settings, registered_on));
        let stamp_due = fields.stamp_deadline(&settings).map(calendar::format);
        let fields_json = serde_json::to_string(&fields).map_err(ServiceError::internal)?;
        let (file_sha256, file_name, media_type) = file;
        Ok(Prepared {
            fields,
            fields_json,
            key,
            retention_until,
            stamp_due,
            file_sha256,
            file_name,
            media_type,
        })
    }

    /// Registers a document (`p` None: the command-line operator). The file is stored before
    /// the transaction; the time-stamp is asked for right after it commits.
    pub async fn register_transaction(
        self: &Arc<Self>,
        p: Option<&Principal>,
        input: TxInput,
        file: TxFile,
    ) -> Result<TxWritten> {
        self.may_write(p, actions::TRANSACTION_REGISTERED).await?;
        let max = self.config.records.max_attachment_bytes;
        let (name, media, parsed) = self
            .ledgered(
                p,
                actions::TRANSACTION_REGISTERED,
                inspect_file(&file, max, input.fields.direction),
            )
            .await?;
        let e_invoice = parsed.as_ref().map(|p| p.customization_id.clone());
        let (fields, from_file) = match parsed {
            Some(p) => {
                let merged = merge(p.fields.clone(), &input);
                let kept = merged.registration_number.is_some()
                    && merged.registration_number == p.fields.registration_number;
                (merged, kept)
            }
            None => (input.fields.clone(), false),
        };
        // A number read from the sender's e-invoice is kept as sent; its check shows if it fails.
        let as_printed = input.as_printed || from_file;
        let (sha, held) = self.store.blobs().put_held(&file.bytes)?;
        let size = file.bytes.len() as u64;
        let now = self.now();
        let (sha2, media2) = (sha.clone(), media.to_owned());
        let pc = p.cloned();
        let result = self
            .write_audited(
                p,
                actions::TRANSACTION_REGISTERED,
                Target::default(),
                move |svc, tx, t| {
                    let prep = svc.prepare_tx(
                        &tx.read(),
                        fields.clone(),
                        as_printed,
                        (sha2.clone(), name.clone(), media2.clone()),
                        jst_today(now),
                    )?;
                    refuse_duplicate(&tx.read(), &prep, None)?;
                    tx.insert_blob(&sha2, size, &media2, now)?;
                    let id = tx.insert_tx_document(
                        &prep.write(),
                        pc.as_ref().map(|p| p.account.id),
                        now,
                    )?;
                    tx.tx_stamp_wanted(id, now)?;
                    prep.target(t, Some(id), 1);
                    if pc.is_none() {
                        t.detail("operator", "command line");
                    }
                    Ok(id)
                },
            )
            .await;
        drop(held);
        self.discard_if_refused(&result, vec![sha.clone()]).await;
        let id = result?;
        let stamp = self.stamp_transaction(id).await;
        Ok(TxWritten {
            id,
            version: 1,
            stamped: stamp.is_ok(),
            stamp_error: stamp.err().map(|e| e.message),
            e_invoice,
        })
    }

    /// Records a correction (訂正): a new version with the reason; the earlier ones stay. A
    /// new file gets its own time-stamp.
    pub async fn correct_transaction(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
        base_version: i64,
        input: TxInput,
        file: Option<TxFile>,
        reason: String,
    ) -> Result<TxWritten> {
        self.may_write(p, actions::TRANSACTION_CORRECTED).await?;
        let reason = self
            .ledgered(p, actions::TRANSACTION_CORRECTED, required_reason(&reason))
            .await?;
        let max = self.config.records.max_attachment_bytes;
        let mut from_file = false;
        let new_file = match &file {
            Some(f) => {
                let (name, media, parsed) = self
                    .ledgered(
                        p,
                        actions::TRANSACTION_CORRECTED,
                        inspect_file(f, max, input.fields.direction),
                    )
                    .await?;
                let fields = match parsed {
                    Some(p) => {
                        let merged = merge(p.fields.clone(), &input);
                        from_file = merged.registration_number.is_some()
                            && merged.registration_number == p.fields.registration_number;
                        merged
                    }
                    None => input.fields.clone(),
                };
                let (sha, held) = self.store.blobs().put_held(&f.bytes)?;
                Some((
                    fields,
                    name,
                    media.to_owned(),
                    sha,
                    held,
                    f.bytes.len() as u64,
                ))
            }
            None => None,
        };
        let stored: Vec<String> = new_file.iter().map(|f| f.3.clone()).collect();
        let as_printed = input.as_printed || from_file;
        let plain_fields = input.fields.clone();
        let upload = new_file
            .as_ref()
            .map(|(f, n, m, s, _, size)| (f.clone(), n.clone(), m.clone(), s.clone(), *size));
        let now = self.now();
        let by = p.map(|p| p.account.id);
        let result = self
            .write_audited(
                p,
                actions::TRANSACTION_CORRECTED,
                Target::default(),
                move |svc, tx, t| {
                    let r = tx.read();
                    let doc = r
                        .tx_document(id)?
                        .ok_or_else(|| ServiceError::not_found("取引書類"))?;
                    if doc.status != "active" {
                        return Err(ServiceError::new(
                            ErrorCode::InvalidState,
                            "取り消された書類は訂正できません",
                        ));
                    }
                    let current = r
                        .tx_versions(id)?
                        .pop()
                        .ok_or_else(|| ServiceError::internal("document without versions"))?;
                    let (fields, file) = match &upload {
                        Some((f, n, m, s, _)) => (f.clone(), (s.clone(), n.clone(), m.clone())),
                        None => (
                            plain_fields.clone(),
                            (
                                current.file_sha256.clone(),
                                current.file_name.clone(),
                                current.media_type.clone(),
                            ),
                        ),
                    };
                    let registered_on = jst_today(doc.registered_at);
                    let prep = svc.prepare_tx(&r, fields, as_printed, file, registered_on)?;
                    refuse_duplicate(&r, &prep, Some(id))?;
                    if let Some((_, _, m, s, size)) = &upload {
                        tx.insert_blob(s, *size, m, now)?;
                    }
                    let version = tx
                    .add_tx_version(id, base_version, &prep.write(), "corrected", &reason, by, now)?
                    .ok_or_else(|| {
                        ServiceError::new(
                            ErrorCode::Conflict,
                            "ほかの人が先にこの書類を訂正しました。最新の内容を確認してください",
                        )
                    })?;
                    let new_file = prep.file_sha256 != doc.file_sha256;
                    if new_file {
                        tx.tx_stamp_wanted(id, now)?;
                    }
                    prep.target(t, Some(id), version);
                    t.detail("reason", reason.clone());
                    t.detail("new_file", new_file);
                    Ok((version, new_file))
                },
            )
            .await;
        drop(new_file);
        self.discard_if_refused(&result, stored).await;
        let (version, new_file) = result?;
        let stamp = if new_file {
            self.stamp_transaction(id).await.map(|_| ())
        } else {
            Ok(())
        };
        Ok(TxWritten {
            id,
            version,
            stamped: stamp.is_ok(),
            stamp_error: stamp.err().map(|e| e.message),
            e_invoice: None,
        })
    }

    /// Cancels a document (取消, e.g. registered twice): a last version saying so with the
    /// reason. Nothing is removed; the document stays findable and its retention runs on.
    pub async fn cancel_transaction(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
        base_version: i64,
        reason: String,
    ) -> Result<i64> {
        self.may_write(p, actions::TRANSACTION_CANCELLED).await?;
        let reason = required_reason(&reason)?;
        let now = self.now();
        let by = p.map(|p| p.account.id);
        self.write_audited(
            p,
            actions::TRANSACTION_CANCELLED,
            Target::default(),
            move |svc, tx, t| {
                let r = tx.read();
                let doc = r
                    .tx_document(id)?
                    .ok_or_else(|| ServiceError::not_found("取引書類"))?;
                let current = r
                    .tx_versions(id)?
                    .pop()
                    .ok_or_else(|| ServiceError::internal("document without versions"))?;
                let fields: DocumentFields =
                    serde_json::from_str(&current.fields).map_err(ServiceError::internal)?;
                let mut prep = svc.prepare_tx(
                    &r,
                    fields,
                    true,
                    (current.file_sha256, current.file_name, current.media_type),
                    jst_today(doc.registered_at),
                )?;
                // A cancelled document keeps the retention it had (never shorter).
                prep.retention_until = prep.retention_until.max(doc.retention_until.clone());
                let version = tx
                    .add_tx_version(
                        id,
                        base_version,
                        &prep.write(),
                        "cancelled",
                        &reason,
                        by,
                        now,
                    )?
                    .ok_or_else(|| {
                        ServiceError::new(
                            ErrorCode::Conflict,
                            "この書類は取り消し済みか、ほかの人が先に変更しました",
                        )
                    })?;
                prep.target(t, Some(id), version);
                t.detail("reason", reason.clone());
                Ok(version)
            },
        )
        .await
    }

    pub async fn bookkeeping_settings(self: &Arc<Self>) -> Result<BookkeepingSettings> {
        self.store.read(|r| Ok(settings_of(r))).await?
    }

    /// Saves the facility's bookkeeping settings. Retention dates already computed are not
    /// shortened by a change (they are recomputed only upward when a document next changes).
    pub async fn save_bookkeeping_settings(
        self: &Arc<Self>,
        p: Option<&Principal>,
        settings: BookkeepingSettings,
    ) -> Result<()> {
        self.may_write(p, actions::TRANSACTION_SETTINGS).await?;
        self.ledgered(
            p,
            actions::TRANSACTION_SETTINGS,
            settings
                .validate()
                .map_err(|(f, m)| ServiceError::invalid(f, m)),
        )
        .await?;
        let json = serde_json::to_string(&settings).map_err(ServiceError::internal)?;
        let mut t = Target::default();
        t.detail("legal_form", settings.legal_form.as_str());
        t.detail("fiscal_year_end_month", settings.fiscal_year_end_month);
        t.detail("processing_months", settings.processing_months);
        self.write_audited(p, actions::TRANSACTION_SETTINGS, t, move |_, tx, _| {
            Ok(tx.set_meta(SETTINGS_KEY, &json)?)
        })
        .await
    }
}

fn required_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            "訂正・取消の理由を入力してください（電子帳簿保存法: 訂正削除の履歴）",
        ));
    }
    if r.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "reason",
            "理由は500文字以内で入力してください",
        ));
    }
    Ok(r.to_owned())
}

/// The same file, or the same counterparty's document of the same number and date, already
/// registered: a second registration would count the transaction twice.
fn refuse_duplicate(r: &Reader<'_>, prep: &Prepared, this: Option<i64>) -> Result<()> {
    let same_file: Vec<i64> = r
        .tx_documents_with_file(&prep.file_sha256)?
        .into_iter()
        .filter(|id| Some(*id) != this)
        .collect();
    if let Some(other) = same_file.first() {
        return Err(ServiceError::new(
            ErrorCode::Conflict,
            format!("同じファイルが取引書類 #{other} として登録済みです（二重登録）"),
        )
        .with_field("file"));
    }
    if let (Some(key), Some(number)) = (&prep.key, &prep.fields.document_number)
        && let Some(other) =
            r.tx_same_document(key, number, prep.fields.transaction_date.as_deref())?
        && Some(other) != this
    {
        return Err(ServiceError::new(
            ErrorCode::Conflict,
            format!(
                "同じ取引先・書類番号・取引年月日の書類が取引書類 #{other} として登録済みです（二重登録）"
            ),
        )
        .with_field("document_number"));
    }
    Ok(())
}

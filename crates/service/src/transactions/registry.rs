//! The NTA 公表サイト's data of registered invoice issuers, imported offline (the operator
//! downloads the CSV; mamori calls no one): it confirms that a received invoice's registration
//! number was registered, and not cancelled or lapsed, on the transaction date. The table is
//! reference data proven as a whole: the import states its digest, `verify` recomputes it.

use super::*;
use mamori_domain::bookkeeping::registry;

/// The `meta` key with what the last import stated: digest, rows, date, file.
pub const REGISTRY_KEY: &str = "invoice_registry";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryStatus {
    pub digest: String,
    pub rows: u64,
    pub imported_on: String,
    pub file_name: String,
    pub file_sha256: String,
}

pub(crate) fn registry_status(r: &Reader<'_>) -> Result<Option<RegistryStatus>> {
    Ok(match r.meta(REGISTRY_KEY)? {
        Some(s) => Some(serde_json::from_str(&s).map_err(ServiceError::internal)?),
        None => None,
    })
}

/// The registry check of a document's number, when data has been imported.
pub(crate) fn registry_check(
    r: &Reader<'_>,
    fields: &DocumentFields,
) -> Result<Option<bookkeeping::Check>> {
    let (Some(number), Some(status)) = (&fields.registration_number, registry_status(r)?) else {
        return Ok(None);
    };
    let entry = r.registry_entry(number)?;
    Ok(Some(registry::check(
        entry.as_ref(),
        fields.transaction_date.as_deref(),
        &status.imported_on,
    )))
}

impl Service {
    /// Imports a 公表サイト CSV (全件 or 差分): new and changed numbers, removals.
    pub async fn import_invoice_registry(
        self: &Arc<Self>,
        p: Option<&Principal>,
        file_name: String,
        bytes: Vec<u8>,
    ) -> Result<RegistryStatus> {
        self.may_write(p, actions::TRANSACTION_REGISTRY_IMPORTED)
            .await?;
        let changes = self
            .ledgered(
                p,
                actions::TRANSACTION_REGISTRY_IMPORTED,
                registry::parse_csv(&bytes).map_err(|m| {
                    ServiceError::invalid("file", format!("公表サイトのデータを読めません: {m}"))
                }),
            )
            .await?;
        let file_sha256 = sha256_hex(&bytes);
        let imported_on = crate::ledger::audit::jst_date(self.now());
        let mut t = Target::default();
        t.detail("file_name", file_name.clone());
        t.detail("file_sha256", file_sha256.clone());
        self.write_audited(
            p,
            actions::TRANSACTION_REGISTRY_IMPORTED,
            t,
            move |_, tx, t| {
                let (upserted, removed) = tx.apply_registry(&changes)?;
                let (digest, rows) = tx.read().registry_digest()?;
                let status = RegistryStatus {
                    digest: digest.clone(),
                    rows,
                    imported_on: imported_on.clone(),
                    file_name: file_name.clone(),
                    file_sha256: file_sha256.clone(),
                };
                tx.set_meta(
                    REGISTRY_KEY,
                    &serde_json::to_string(&status).map_err(ServiceError::internal)?,
                )?;
                t.detail("upserted", upserted);
                t.detail("removed", removed);
                t.detail("rows", rows);
                t.detail("digest", digest);
                Ok(status)
            },
        )
        .await
    }

    pub async fn invoice_registry_status(self: &Arc<Self>) -> Result<Option<RegistryStatus>> {
        self.store.read(|r| Ok(registry_status(r))).await?
    }
}

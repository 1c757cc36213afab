//! Erasing a backup target mamori wrote (情報の破棄): the plan (which repository, how many
//! objects) is in the ledger before anything is deleted; afterwards the outcome, a printable
//! erasure record (PDF) and an entry in the disposal register go in one transaction. Only an
//! administrator, only a repository the configured backup key opens, only with its name typed.

use std::sync::Arc;

use mamori_backup::LockKind;
use mamori_compliance::doc::Doc;
use mamori_compliance::registers::{Entry, Register};
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use serde::Serialize;

use crate::backup::{configured_key, open_repository, target_label};
use crate::compliance::registers::{OwnFile, record_own_entry};
use crate::error::{Result, ServiceError};
use crate::ledger::audit::{jst, jst_date};
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Serialize)]
pub struct ErasureReport {
    pub target: String,
    pub repository: String,
    pub objects: usize,
    pub deleted: usize,
    /// Objects a retention period still keeps (sealed; their key slots are deleted).
    pub still_locked: Vec<String>,
    /// The disposal register entry that records it.
    pub register_entry: i64,
}

fn erasure_doc(
    facility: &str,
    by: &str,
    started: i64,
    finished: i64,
    out: &mamori_backup::EraseOutcome,
    label: &str,
) -> Doc {
    let mut d = Doc::new("バックアップ先の消去記録");
    d.subtitle = vec![
        format!("施設: {facility}"),
        format!("作成: mamori {}", jst(finished)),
    ];
    d.heading("消去した対象");
    d.fields(vec![
        ("バックアップ先".into(), label.to_owned()),
        ("リポジトリ ID".into(), out.repository.clone()),
        ("実施者".into(), by.to_owned()),
        ("開始".into(), jst(started)),
        ("終了".into(), jst(finished)),
        (
            "方法".into(),
            "全オブジェクト（S3 では全バージョン）の削除と、暗号鍵の格納部（keys/）の削除".into(),
        ),
    ]);
    d.heading("結果");
    d.fields(vec![
        ("消去前のオブジェクト数".into(), out.objects.to_string()),
        ("削除したオブジェクト数".into(), out.deleted.to_string()),
        (
            "保持期間のため残ったもの".into(),
            out.still_locked.len().to_string(),
        ),
    ]);
    if out.still_locked.is_empty() {
        d.para("このバックアップ先に mamori が書いたデータは残っていません。");
    } else {
        d.para("次のオブジェクトは書き換え禁止の保持期間（Object Lock など）のため削除できませんでした。暗号化されたままで、鍵の格納部も削除済みです。保持期間が過ぎたら、もう一度消去してください。バックアップ鍵（鍵ファイルと印刷した控え）を他のバックアップ先で使っていなければ、それも破棄すると復元は誰にもできなくなります。");
        d.list(out.still_locked.iter().take(200).cloned().collect());
    }
    d.para("消去の計画と結果は mamori の台帳（ledger）に記録され、mamori verify で改ざんのないことを確かめられます。");
    d.footer = format!("mamori 消去記録 — {facility}");
    d
}

impl Service {
    pub async fn erase_backup_target(
        self: &Arc<Self>,
        p: &Principal,
        target: &str,
        confirm: &str,
    ) -> Result<ErasureReport> {
        self.gate(
            p,
            actions::BACKUP_ERASE_PLANNED,
            p.require(Action::AdminSettings, None),
        )
        .await?;
        // A configured target may be named by its label (as the backup page shows it).
        let typed = target.trim();
        let target = self
            .config
            .backup
            .target_list()
            .into_iter()
            .find(|t| target_label(t) == typed)
            .unwrap_or_else(|| typed.to_owned());
        let label = target_label(&target);
        if target.is_empty() {
            return Err(ServiceError::invalid(
                "target",
                "消去するバックアップ先を入力してください",
            ));
        }
        if confirm.trim() != label {
            return Err(ServiceError::invalid(
                "confirm",
                "確認のため、消去するバックアップ先の名前をそのまま入力してください",
            ));
        }
        let _turn = self.claim_backup_runner().await?;
        self.erase_claimed(p, target, label).await
    }

    async fn erase_claimed(
        self: &Arc<Self>,
        p: &Principal,
        target: String,
        label: String,
    ) -> Result<ErasureReport> {
        let started = self.now();
        let (dir, cfg) = (self.data_dir.clone(), self.config.backup.clone());
        let opened = tokio::task::spawn_blocking(move || -> Result<_> {
            let key = configured_key(&dir, &cfg)?;
            let repo = open_repository(&target, &key)?;
            let lock = repo
                .lock(LockKind::Exclusive, "erase")
                .map_err(ServiceError::from)?;
            let objects = repo
                .target()
                .list("")
                .map_err(ServiceError::from)?
                .into_iter()
                .filter(|n| !n.starts_with(mamori_backup::lock::LOCKS))
                .count();
            Ok((repo, lock, objects))
        })
        .await
        .map_err(ServiceError::internal)??;
        let (repo, lock, objects) = opened;
        let mut t = Target::default();
        t.detail("target", label.clone());
        t.detail("repository", repo.config.id.clone());
        t.detail("objects", objects);
        let pc = p.clone();
        self.write_audited(Some(p), actions::BACKUP_ERASE_PLANNED, t, move |_, _, _| {
            pc.require(Action::AdminSettings, None)
        })
        .await?;
        let out = tokio::task::spawn_blocking(move || {
            let out = mamori_backup::erase(&repo, &lock);
            drop(lock);
            out
        })
        .await
        .map_err(ServiceError::internal)?
        .map_err(ServiceError::from)?;
        let finished = self.now();
        let by = format!("{}（{}）", p.account.display_name, p.account.login);
        let pdf = mamori_compliance::pdf::render(&erasure_doc(
            self.facility(),
            &by,
            started,
            finished,
            &out,
            &label,
        ));
        let (sha, held) = self.store().blobs().put_held(&pdf)?;
        let file = OwnFile {
            sha256: sha.clone(),
            name: format!("消去記録-{}.pdf", jst_date(finished)),
        };
        let mut entry = Entry::default();
        for (k, v) in [
            ("disposed_on", jst_date(finished)),
            (
                "what",
                format!("バックアップ先 {label}（リポジトリ {}）", out.repository),
            ),
            ("personal", "yes".to_owned()),
            ("method", "crypto_erase".to_owned()),
            ("performed_by", by.clone()),
            (
                "note",
                if out.still_locked.is_empty() {
                    format!("mamori が {} 個のオブジェクトをすべて削除", out.deleted)
                } else {
                    format!(
                        "mamori が {} 個を削除。保持期間のため {} 個が暗号化されたまま残る（期間後に再消去）",
                        out.deleted,
                        out.still_locked.len()
                    )
                },
            ),
        ] {
            entry.fields.insert(k.to_owned(), v);
        }
        let mut t = Target::default();
        t.detail("target", label.clone());
        t.detail("repository", out.repository.clone());
        t.detail("objects", out.objects);
        t.detail("deleted", out.deleted);
        t.detail("still_locked", out.still_locked.len());
        t.detail("record_sha256", sha.clone());
        let now = finished;
        let account = p.account.id;
        let size = pdf.len() as u64;
        let written = self
            .write_audited(Some(p), actions::BACKUP_ERASED, t, move |_, tx, t| {
                let _held = &held;
                tx.insert_blob(&file.sha256, size, "application/pdf", now)?;
                let id = record_own_entry(
                    tx,
                    Register::Disposal,
                    entry.clone(),
                    Some(&file),
                    Some(account),
                    now,
                )?;
                t.detail("register_entry", id);
                Ok(id)
            })
            .await;
        self.discard_if_refused(&written, vec![sha]).await;
        Ok(ErasureReport {
            target: label,
            repository: out.repository,
            objects: out.objects,
            deleted: out.deleted,
            still_locked: out.still_locked,
            register_entry: written?,
        })
    }
}

//! Export bundles that may leave the facility (持ち出し, guideline システム運用編 7③): the
//! ordinary bundle, inside a ZIP whose one entry is encrypted with AES-256 (WinZip AE-2, which
//! 7-Zip, WinZip, Windows 11's Explorer with 7-Zip support, macOS Keka and `7z`/`bsdtar` on
//! Linux open). The password is long and random by default and never stored; the take-out
//! register gets an entry in the same transaction as the ledger entry that names the file.

use std::io::Write;
use std::sync::Arc;

use mamori_compliance::registers::{Entry, Register};
use mamori_domain::audit::actions;
use zip::AesMode;
use zip::write::SimpleFileOptions;

use crate::compliance::registers::record_own_entry;
use crate::error::{Result, ServiceError};
use crate::ledger::audit::jst_date;
use crate::records::export::Scope;
use crate::{Principal, Service, Target};

/// Shortest password accepted: AE-2 derives its key with only 1,000 rounds of PBKDF2-SHA1,
/// so the password itself must carry the strength (16 random characters ≈ 80 bits).
pub const MIN_PASSWORD_CHARS: usize = 16;
/// The name of the one entry; the outer ZIP's names are not encrypted, so it says nothing.
pub const INNER_NAME: &str = "mamori-bundle.zip";

/// A password of 24 characters in groups of four (120 bits), to be passed on separately:
/// capitals and digits that cannot be mistaken for one another when read aloud or copied.
pub fn generate_password() -> String {
    crate::crypto::grouped_code(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 6)
}

/// Why the bundle leaves, and who allowed it (the take-out register's fields).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TakeOut {
    pub password: String,
    pub purpose: String,
    #[serde(default)]
    pub destination: String,
    pub approved_by: String,
}

/// Encrypts `inner` (a bundle) as the one entry of a new ZIP.
pub fn seal_bundle(inner: &[u8], password: &str) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_aes_encryption(AesMode::Aes256, password);
    let fail = |e: &dyn std::fmt::Display| {
        ServiceError::new(
            crate::ErrorCode::Export,
            format!("暗号化に失敗しました: {e}"),
        )
    };
    zip.start_file(INNER_NAME, opts).map_err(|e| fail(&e))?;
    zip.write_all(inner).map_err(|e| fail(&e))?;
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

impl Service {
    /// The bundle of `scope`, encrypted with `t.password`, with a take-out register entry.
    pub async fn export_bundle_encrypted(
        self: &Arc<Self>,
        p: &Principal,
        scope: Scope,
        t: TakeOut,
    ) -> Result<Vec<u8>> {
        let password = t.password.trim().to_owned();
        if password.chars().count() < MIN_PASSWORD_CHARS || password.chars().count() > 128 {
            return Err(ServiceError::invalid(
                "password",
                format!(
                    "パスワードは{MIN_PASSWORD_CHARS}文字以上にしてください（mamori が作った値をそのまま使えます）"
                ),
            ));
        }
        let mut entry = Entry::default();
        let what = match &scope {
            Scope::Record(id) => format!("記録 {id} の出力"),
            Scope::Patient(pid) => format!("患者 {pid} の記録一式の出力"),
        };
        for (k, v) in [
            ("taken_on", jst_date(self.now())),
            ("what", what),
            ("medium", "encrypted_bundle".to_owned()),
            ("encrypted", "yes".to_owned()),
            ("purpose", t.purpose),
            ("destination", t.destination),
            (
                "taken_by",
                format!("{}（{}）", p.account.display_name, p.account.login),
            ),
            ("approved_by", t.approved_by),
        ] {
            entry.fields.insert(k.to_owned(), v);
        }
        // Checked before anything is exported, so a missing purpose refuses cleanly.
        let entry = entry
            .checked(Register::TakeOut)
            .map_err(|(f, m)| ServiceError::invalid(f, m))?;
        let plain = self.export_bundle(p, scope.clone()).await?;
        let sealed = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || seal_bundle(&plain, &password))
                .await
                .map_err(ServiceError::internal)??
        };
        let mut target = Target::default();
        target.detail("register", Register::TakeOut.code());
        target.detail(
            "bundle_sha256",
            hex::encode(mamori_evidence::sha256(&sealed)),
        );
        target.detail("bytes", sealed.len());
        target.detail("encryption", "zip-aes-256 (AE-2)");
        target.detail("entry", serde_json::to_value(&entry).unwrap_or_default());
        if let Scope::Patient(pid) = &scope {
            target.patient = Some(pid.clone());
        }
        let (account, now) = (p.account.id, self.now());
        self.write_audited(Some(p), actions::REGISTER_SAVED, target, move |_, tx, t| {
            let id = record_own_entry(
                tx,
                Register::TakeOut,
                entry.clone(),
                None,
                Some(account),
                now,
            )?;
            t.detail("entry_id", id);
            Ok(())
        })
        .await?;
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_grouped_and_unambiguous() {
        let a = generate_password();
        assert_eq!(a.len(), 29);
        assert!(a.split('-').all(|g| g.len() == 4));
        assert!(!a.contains(['0', 'O', '1', 'I']));
        assert_ne!(a, generate_password());
    }

    #[test]
    fn a_sealed_bundle_opens_only_with_its_password() {
        let sealed = seal_bundle(b"PK inner bundle", "ABCD-EFGH-JKLM-NPQR").unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(&sealed)).unwrap();
        assert!(z.by_index_decrypt(0, b"wrong password!!").is_err());
        let mut f = z.by_index_decrypt(0, b"ABCD-EFGH-JKLM-NPQR").unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut out).unwrap();
        assert_eq!(out, b"PK inner bundle");
        assert!(
            !sealed.windows(5).any(|w| w == b"inner"),
            "content not in clear"
        );
    }
}

//! Rows of the evidence pillar: staff signing certificates, signatures per finalised version,
//! and RFC 4998 evidence-record trees with their archive time-stamps.

use crate::sql::{OptionalExtension, Row, params};
use mamori_domain::Millis;
use serde::Serialize;

use crate::{Reader, StoreError, WriteTx};

#[derive(Debug, Clone, Serialize)]
pub struct SigningCertRow {
    pub serial: String,
    pub account_id: i64,
    #[serde(skip)]
    pub cert: Vec<u8>,
    /// `facility` (issued by the facility CA, key in `keys/signers/`) or `imported`.
    pub source: String,
    pub not_before: Millis,
    pub not_after: Millis,
    pub created_at: Millis,
    pub retired_at: Option<Millis>,
}

/// A version's signed PDF: the file (in blobs) as it stands and its PAdES level.
#[derive(Debug, Clone, Serialize)]
pub struct SignedPdfRow {
    pub record_id: i64,
    pub version_no: i64,
    /// [`SIGNED_PDF_LETTER`] for mamori's own document of the version; otherwise the SHA-256 of the
    /// uploaded PDF attachment the author signed.
    pub source: String,
    pub pdf_sha256: String,
    pub level: String,
    pub signer_serial: String,
    pub signed_at: Millis,
    pub timestamped_at: Option<Millis>,
    /// B-LTA: expiry of the newest document time-stamp's TSA certificate.
    pub tsa_not_after: Option<Millis>,
}

/// The `source` of the PDF mamori makes of a version itself.
pub const SIGNED_PDF_LETTER: &str = "";

impl SignedPdfRow {
    /// The uploaded attachment this file is a signed copy of, if it is one.
    pub fn attachment(&self) -> Option<&str> {
        (self.source != SIGNED_PDF_LETTER).then_some(self.source.as_str())
    }
}

const PDF_COLUMNS: &str = "record_id, version_no, source, pdf_sha256, level, signer_serial, signed_at, timestamped_at, tsa_not_after";

fn signed_pdf_from(r: &Row<'_>) -> Result<SignedPdfRow, crate::sql::Error> {
    Ok(SignedPdfRow {
        record_id: r.get(0)?,
        version_no: r.get(1)?,
        source: r.get(2)?,
        pdf_sha256: r.get(3)?,
        level: r.get(4)?,
        signer_serial: r.get(5)?,
        signed_at: r.get(6)?,
        timestamped_at: r.get(7)?,
        tsa_not_after: r.get(8)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureRow {
    pub record_id: i64,
    pub version_no: i64,
    pub statement_sha256: String,
    /// The exact bytes signed.
    #[serde(skip)]
    pub statement: Vec<u8>,
    #[serde(skip)]
    pub p7s: Vec<u8>,
    pub signer_account: i64,
    pub signer_serial: String,
    pub signer_subject: String,
    pub signed_at: Millis,
    /// The signature time-stamp's time; `None` while it is pending.
    pub timestamped_at: Option<Millis>,
    pub tsa_attempts: i64,
    pub tsa_last_error: Option<String>,
    pub tsa_next_try: Option<Millis>,
    pub evidence_family: Option<i64>,
    pub evidence_position: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceTree {
    pub id: i64,
    pub family: i64,
    pub chain_no: i64,
    pub alg: String,
    pub created_at: Millis,
    pub leaf_count: i64,
    #[serde(skip)]
    pub root: Vec<u8>,
    #[serde(skip)]
    pub leaves: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceStamp {
    pub tree_id: i64,
    pub seq: i64,
    #[serde(skip)]
    pub token: Vec<u8>,
    pub gen_time: Millis,
    pub tsa_not_after: Millis,
}

const SIG_COLUMNS: &str =
    "record_id, version_no, statement_sha256, statement, p7s, signer_account, signer_serial,
    signer_subject, signed_at, timestamped_at, tsa_attempts, tsa_last_error, tsa_next_try,
    evidence_family, evidence_position";

fn signature_from(r: &Row<'_>) -> crate::sql::Result<SignatureRow> {
    Ok(SignatureRow {
        record_id: r.get(0)?,
        version_no: r.get(1)?,
        statement_sha256: r.get(2)?,
        statement: r.get(3)?,
        p7s: r.get(4)?,
        signer_account: r.get(5)?,
        signer_serial: r.get(6)?,
        signer_subject: r.get(7)?,
        signed_at: r.get(8)?,
        timestamped_at: r.get(9)?,
        tsa_attempts: r.get(10)?,
        tsa_last_error: r.get(11)?,
        tsa_next_try: r.get(12)?,
        evidence_family: r.get(13)?,
        evidence_position: r.get(14)?,
    })
}

fn signing_cert_from(r: &Row<'_>) -> crate::sql::Result<SigningCertRow> {
    Ok(SigningCertRow {
        serial: r.get(0)?,
        account_id: r.get(1)?,
        cert: r.get(2)?,
        source: r.get(3)?,
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        created_at: r.get(6)?,
        retired_at: r.get(7)?,
    })
}

fn tree_from(r: &Row<'_>) -> crate::sql::Result<EvidenceTree> {
    Ok(EvidenceTree {
        id: r.get(0)?,
        family: r.get(1)?,
        chain_no: r.get(2)?,
        alg: r.get(3)?,
        created_at: r.get(4)?,
        leaf_count: r.get(5)?,
        root: r.get(6)?,
        leaves: r.get(7)?,
    })
}

fn stamp_from(r: &Row<'_>) -> crate::sql::Result<EvidenceStamp> {
    Ok(EvidenceStamp {
        tree_id: r.get(0)?,
        seq: r.get(1)?,
        token: r.get(2)?,
        gen_time: r.get(3)?,
        tsa_not_after: r.get(4)?,
    })
}

/// A signature being made outside mamori, between its two steps.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    pub record_id: i64,
    pub version_no: i64,
    pub statement: Vec<u8>,
    /// The signer's certificate (DER) and further certificates of its chain (concatenated DER).
    pub cert: Vec<u8>,
    pub chain: Vec<u8>,
    pub signing_time: Millis,
    pub requested_by: i64,
}

/// The newest archive time-stamp of an evidence record (what renewal decides on), read
/// without the trees' leaves.
#[derive(Debug, Clone)]
pub struct EvidenceHead {
    pub family: i64,
    pub tree_id: i64,
    pub alg: String,
    pub stamp: EvidenceStamp,
}

/// One ledger entry as (index, record, payload).
pub type LedgerEntry = (i64, Option<i64>, Vec<u8>);

/// A checkpoint an evidence record covers, or may cover.
/// A finalised version waiting for its author's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwaitingSignature {
    pub record_id: i64,
    pub version_no: i64,
    pub patient_id: String,
    pub kind: String,
    pub finalised_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct CheckpointMember {
    pub size: u64,
    pub note: String,
}

impl WriteTx<'_> {
    /// Retires a signing certificate (its key will sign no more); `false` if it was retired.
    pub fn retire_signing_cert(&mut self, serial: &str, at: Millis) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE signing_certs SET retired_at = ?2 WHERE serial = ?1 AND retired_at IS NULL",
            params![serial, at],
        )? == 1)
    }

    /// Retires every current signing certificate of an account (disabled).
    pub fn retire_signing_certs_of(
        &mut self,
        account_id: i64,
        at: Millis,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE signing_certs SET retired_at = ?2 WHERE account_id = ?1 AND retired_at IS NULL",
            params![account_id, at],
        )?)
    }

    pub fn insert_signing_cert(&mut self, c: &SigningCertRow) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE signing_certs SET retired_at = ?2 WHERE account_id = ?1 AND retired_at IS NULL",
            params![c.account_id, c.created_at],
        )?;
        self.conn.execute(
            "INSERT INTO signing_certs (serial, account_id, cert, source, not_before, not_after, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.serial,
                c.account_id,
                c.cert,
                c.source,
                c.not_before,
                c.not_after,
                c.created_at
            ],
        )?;
        Ok(())
    }

    /// Records a signature; false if the version already has one (signing is idempotent).
    pub fn insert_signature(&mut self, s: &SignatureRow) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO signatures (record_id, version_no, statement_sha256, statement, p7s,
                signer_account, signer_serial, signer_subject, signed_at, timestamped_at,
                tsa_attempts, tsa_last_error, tsa_next_try)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING",
            params![
                s.record_id,
                s.version_no,
                s.statement_sha256,
                s.statement,
                s.p7s,
                s.signer_account,
                s.signer_serial,
                s.signer_subject,
                s.signed_at,
                s.timestamped_at,
                s.tsa_attempts,
                s.tsa_last_error,
                s.tsa_next_try
            ],
        )?;
        Ok(n == 1)
    }

    /// Records a version's signed PDF (its file already in blobs); false if it has one.
    pub fn insert_signed_pdf(&mut self, s: &SignedPdfRow) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &format!(
                "INSERT INTO signed_pdfs ({PDF_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING"
            ),
            params![
                s.record_id,
                s.version_no,
                s.source,
                s.pdf_sha256,
                s.level,
                s.signer_serial,
                s.signed_at,
                s.timestamped_at,
                s.tsa_not_after
            ],
        )?;
        Ok(n == 1)
    }

    /// A signed PDF's newer file (a time-stamp added, or an LTA renewal); only while the row
    /// still names `previous`, so two renewals never both apply. False if it moved on.
    pub fn update_signed_pdf(
        &mut self,
        s: &SignedPdfRow,
        previous: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE signed_pdfs SET pdf_sha256 = ?3, level = ?4, timestamped_at = ?5, tsa_not_after = ?6
             WHERE record_id = ?1 AND version_no = ?2 AND pdf_sha256 = ?7 AND source = ?8",
            params![
                s.record_id,
                s.version_no,
                s.pdf_sha256,
                s.level,
                s.timestamped_at,
                s.tsa_not_after,
                previous,
                s.source
            ],
        )?;
        Ok(n == 1)
    }

    /// Replaces a B-B signature with its B-T form.
    pub fn set_signature_timestamp(
        &mut self,
        record_id: i64,
        version_no: i64,
        p7s: &[u8],
        gen_time: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE signatures SET p7s = ?3, timestamped_at = ?4, tsa_last_error = NULL, tsa_next_try = NULL
             WHERE record_id = ?1 AND version_no = ?2 AND timestamped_at IS NULL",
            params![record_id, version_no, p7s, gen_time],
        )?;
        Ok(())
    }

    pub fn note_timestamp_failure(
        &mut self,
        record_id: i64,
        version_no: i64,
        error: &str,
        next_try: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE signatures SET tsa_attempts = tsa_attempts + 1, tsa_last_error = ?3, tsa_next_try = ?4
             WHERE record_id = ?1 AND version_no = ?2 AND timestamped_at IS NULL",
            params![record_id, version_no, error, next_try],
        )?;
        Ok(())
    }

    /// Starts (or restarts) an external signature of a version.
    pub fn put_signing_request(&mut self, q: &SigningRequest) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO signing_requests
                (record_id, version_no, statement, cert, chain, signing_time, requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (record_id, version_no) DO UPDATE SET statement = excluded.statement,
                cert = excluded.cert, chain = excluded.chain, signing_time = excluded.signing_time,
                requested_by = excluded.requested_by",
            params![
                q.record_id,
                q.version_no,
                q.statement,
                q.cert,
                q.chain,
                q.signing_time,
                q.requested_by
            ],
        )?;
        Ok(())
    }

    pub fn delete_signing_request(
        &mut self,
        record_id: i64,
        version_no: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM signing_requests WHERE record_id = ?1 AND version_no = ?2",
            params![record_id, version_no],
        )?;
        Ok(())
    }

    /// Stores a tree; a first chain (`family` 0) starts its own family.
    pub fn insert_evidence_tree(&mut self, t: &EvidenceTree) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO evidence_trees (family, chain_no, alg, created_at, leaf_count, root, leaves)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![
                t.family,
                t.chain_no,
                t.alg,
                t.created_at,
                t.leaf_count,
                t.root,
                t.leaves
            ],
            |r| r.get(0),
        )?;
        let id = inserted;
        if t.family == 0 {
            self.conn
                .execute("UPDATE evidence_trees SET family = id WHERE id = ?1", [id])?;
        }
        Ok(id)
    }

    pub fn insert_evidence_stamp(&mut self, s: &EvidenceStamp) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO evidence_stamps (tree_id, seq, token, gen_time, tsa_not_after)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.tree_id, s.seq, s.token, s.gen_time, s.tsa_not_after],
        )?;
        Ok(())
    }

    pub fn set_signature_family(
        &mut self,
        record_id: i64,
        version_no: i64,
        family: i64,
        position: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE signatures SET evidence_family = ?3, evidence_position = ?4
                 WHERE record_id = ?1 AND version_no = ?2 AND evidence_family IS NULL",
            )?
            .execute(params![record_id, version_no, family, position])?;
        Ok(())
    }

    pub fn set_checkpoint_family(
        &mut self,
        size: u64,
        family: i64,
        position: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE checkpoints SET evidence_family = ?2, evidence_position = ?3
             WHERE size = ?1 AND evidence_family IS NULL",
            params![size as i64, family, position],
        )?;
        Ok(())
    }
}

impl Reader<'_> {
    /// The account's current signing certificate (not retired; may have expired).
    pub fn signing_cert(&self, account_id: i64) -> Result<Option<SigningCertRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT serial, account_id, cert, source, not_before, not_after, created_at, retired_at
                 FROM signing_certs WHERE account_id = ?1 AND retired_at IS NULL
                 ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row([account_id], signing_cert_from)
            .optional()?)
    }

    /// One signing certificate by its serial (hex, as stored).
    pub fn signing_cert_by_serial(
        &self,
        serial: &str,
    ) -> Result<Option<SigningCertRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT serial, account_id, cert, source, not_before, not_after, created_at, retired_at
                 FROM signing_certs WHERE serial = ?1",
                [serial],
                signing_cert_from,
            )
            .optional()?)
    }

    pub fn signing_certs(&self) -> Result<Vec<SigningCertRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT serial, account_id, cert, source, not_before, not_after, created_at, retired_at
             FROM signing_certs ORDER BY created_at DESC",
        )?;
        Ok(st
            .query_map((), signing_cert_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn signature(
        &self,
        record_id: i64,
        version_no: i64,
    ) -> Result<Option<SignatureRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SIG_COLUMNS} FROM signatures WHERE record_id = ?1 AND version_no = ?2"
            ))?
            .query_row([record_id, version_no], signature_from)
            .optional()?)
    }

    /// One version's signed PDF: its letter ([`SIGNED_PDF_LETTER`]) or a signed attachment (its SHA-256).
    pub fn signed_pdf(
        &self,
        record_id: i64,
        version_no: i64,
        source: &str,
    ) -> Result<Option<SignedPdfRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {PDF_COLUMNS} FROM signed_pdfs
                 WHERE record_id = ?1 AND version_no = ?2 AND source = ?3"
            ))?
            .query_row(params![record_id, version_no, source], signed_pdf_from)
            .optional()?)
    }

    /// Every signed PDF of one version, its letter first.
    pub fn signed_pdfs_of_version(
        &self,
        record_id: i64,
        version_no: i64,
    ) -> Result<Vec<SignedPdfRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {PDF_COLUMNS} FROM signed_pdfs WHERE record_id = ?1 AND version_no = ?2
             ORDER BY source"
        ))?;
        Ok(st
            .query_map([record_id, version_no], signed_pdf_from)?
            .collect::<Result<_, _>>()?)
    }

    /// The signed PDFs of a record's versions.
    pub fn signed_pdfs_of(&self, record_id: i64) -> Result<Vec<SignedPdfRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {PDF_COLUMNS} FROM signed_pdfs WHERE record_id = ?1 ORDER BY version_no, source"
        ))?;
        Ok(st
            .query_map([record_id], signed_pdf_from)?
            .collect::<Result<_, _>>()?)
    }

    /// Signed PDFs that need the sweep: without their time-stamps yet (a TSA was down), or
    /// whose newest document time-stamp's TSA certificate expires before `renew_before`.
    pub fn signed_pdfs_due(
        &self,
        renew_before: Millis,
        limit: i64,
    ) -> Result<Vec<SignedPdfRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {PDF_COLUMNS} FROM signed_pdfs
             WHERE tsa_not_after < ?1 OR level <> 'PAdES-B-LTA'
             ORDER BY record_id, version_no, source LIMIT ?2"
        ))?;
        Ok(st
            .query_map(params![renew_before, limit], signed_pdf_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn signatures_of(&self, record_id: i64) -> Result<Vec<SignatureRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {SIG_COLUMNS} FROM signatures WHERE record_id = ?1 ORDER BY version_no"
        ))?;
        Ok(st
            .query_map([record_id], signature_from)?
            .collect::<Result<_, _>>()?)
    }

    /// Every signature (for `evidence verify` over the whole instance), in key order.
    pub fn for_each_signature(
        &self,
        mut f: impl FnMut(SignatureRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {SIG_COLUMNS} FROM signatures ORDER BY record_id, version_no"
        ))?;
        let mut rows = st.query(())?;
        while let Some(r) = rows.next()? {
            let r = &r;
            f(signature_from(r)?)?;
        }
        Ok(())
    }

    /// Signatures whose time-stamp is due to be (re)tried at `now`.
    pub fn timestamps_due(&self, now: Millis, limit: i64) -> Result<Vec<SignatureRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {SIG_COLUMNS} FROM signatures
             WHERE timestamped_at IS NULL AND (tsa_next_try IS NULL OR tsa_next_try <= ?1)
             ORDER BY tsa_next_try LIMIT ?2"
        ))?;
        Ok(st
            .query_map(params![now, limit], signature_from)?
            .collect::<Result<_, _>>()?)
    }

    /// (count, oldest signing time) of signatures still waiting for a time-stamp.
    pub fn timestamps_pending(&self) -> Result<(i64, Option<Millis>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*), min(signed_at) FROM signatures WHERE timestamped_at IS NULL",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Finalised versions whose responsible author is `author_id` and that have no signature
    /// yet, oldest first: what awaits the author's signing window.
    pub fn awaiting_signature(
        &self,
        author_id: i64,
        limit: i64,
    ) -> Result<Vec<AwaitingSignature>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT v.record_id, v.version_no, r.patient_id, r.kind, v.finalised_at FROM versions v
             JOIN records r ON r.id = v.record_id
             LEFT JOIN signatures s ON s.record_id = v.record_id AND s.version_no = v.version_no
             WHERE v.author_id = ?1 AND v.state = 'finalised' AND s.record_id IS NULL
             ORDER BY v.finalised_at, v.record_id LIMIT ?2",
        )?;
        Ok(st
            .query_map(params![author_id, limit], |r| {
                Ok(AwaitingSignature {
                    record_id: r.get(0)?,
                    version_no: r.get(1)?,
                    patient_id: r.get(2)?,
                    kind: r.get(3)?,
                    finalised_at: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// The `.p7s` of the time-stamped signatures of the newest records (walking the primary
    /// key backwards: no scan of every signature).
    pub fn latest_timestamped_signatures(&self, limit: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT p7s FROM signatures WHERE timestamped_at IS NOT NULL
             ORDER BY record_id DESC, version_no DESC LIMIT ?1",
        )?;
        Ok(st
            .query_map([limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// Finalised versions without a signature (signing failed or was interrupted).
    pub fn unsigned_finalised(&self, limit: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT v.record_id, v.version_no FROM versions v
             LEFT JOIN signatures s ON s.record_id = v.record_id AND s.version_no = v.version_no
             WHERE v.state = 'finalised' AND s.record_id IS NULL
             ORDER BY v.finalised_at LIMIT ?1",
        )?;
        Ok(st
            .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Time-stamped signatures not yet in an evidence record, in key order.
    /// Time-stamped signatures in no evidence record yet, oldest records first, at most
    /// `limit` (all with `None`).
    pub fn unsealed_signatures(
        &self,
        limit: Option<usize>,
    ) -> Result<Vec<SignatureRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {SIG_COLUMNS} FROM signatures
             WHERE evidence_family IS NULL AND timestamped_at IS NOT NULL
             ORDER BY record_id, version_no LIMIT ?1"
        ))?;
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        Ok(st
            .query_map([limit], signature_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn unsealed_checkpoints(&self) -> Result<Vec<CheckpointMember>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT size, note FROM checkpoints WHERE evidence_family IS NULL ORDER BY size",
        )?;
        Ok(st
            .query_map((), |r| {
                Ok(CheckpointMember {
                    size: r.get::<_, i64>(0)? as u64,
                    note: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// The signatures and checkpoints of a family, in leaf order (signatures first).
    pub fn family_members(
        &self,
        family: i64,
    ) -> Result<(Vec<SignatureRow>, Vec<CheckpointMember>), StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {SIG_COLUMNS} FROM signatures WHERE evidence_family = ?1 ORDER BY evidence_position"
        ))?;
        let sigs = st
            .query_map([family], signature_from)?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT size, note FROM checkpoints WHERE evidence_family = ?1 ORDER BY evidence_position",
        )?;
        let cps = st
            .query_map([family], |r| {
                Ok(CheckpointMember {
                    size: r.get::<_, i64>(0)? as u64,
                    note: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok((sigs, cps))
    }

    /// Where a checkpoint sits in an evidence record, if it does.
    pub fn checkpoint_family(&self, size: u64) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT evidence_family, evidence_position FROM checkpoints
                 WHERE size = ?1 AND evidence_family IS NOT NULL",
                [size as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// A family's trees (chains), oldest first.
    pub fn evidence_chains(&self, family: i64) -> Result<Vec<EvidenceTree>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, family, chain_no, alg, created_at, leaf_count, root, leaves
             FROM evidence_trees WHERE family = ?1 ORDER BY chain_no",
        )?;
        Ok(st
            .query_map([family], tree_from)?
            .collect::<Result<_, _>>()?)
    }

    /// Each family's newest chain and its newest stamp.
    pub fn evidence_heads(&self) -> Result<Vec<EvidenceHead>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT t.family, t.id, t.alg, s.tree_id, s.seq, s.token, s.gen_time, s.tsa_not_after
             FROM evidence_trees t JOIN evidence_stamps s ON s.tree_id = t.id
             WHERE t.chain_no = (SELECT max(chain_no) FROM evidence_trees WHERE family = t.family)
               AND s.seq = (SELECT max(seq) FROM evidence_stamps WHERE tree_id = t.id)
             ORDER BY t.family",
        )?;
        Ok(st
            .query_map((), |r| {
                Ok(EvidenceHead {
                    family: r.get(0)?,
                    tree_id: r.get(1)?,
                    alg: r.get(2)?,
                    stamp: EvidenceStamp {
                        tree_id: r.get(3)?,
                        seq: r.get(4)?,
                        token: r.get(5)?,
                        gen_time: r.get(6)?,
                        tsa_not_after: r.get(7)?,
                    },
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub fn evidence_stamps(&self, tree_id: i64) -> Result<Vec<EvidenceStamp>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT tree_id, seq, token, gen_time, tsa_not_after FROM evidence_stamps
             WHERE tree_id = ?1 ORDER BY seq",
        )?;
        Ok(st
            .query_map([tree_id], stamp_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn signing_request(
        &self,
        record_id: i64,
        version_no: i64,
    ) -> Result<Option<SigningRequest>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT record_id, version_no, statement, cert, chain, signing_time, requested_by
                 FROM signing_requests WHERE record_id = ?1 AND version_no = ?2",
                params![record_id, version_no],
                |r| {
                    Ok(SigningRequest {
                        record_id: r.get(0)?,
                        version_no: r.get(1)?,
                        statement: r.get(2)?,
                        cert: r.get(3)?,
                        chain: r.get(4)?,
                        signing_time: r.get(5)?,
                        requested_by: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ledger entries of successful `action` events, oldest first.
    pub fn ledger_entries_of(&self, action: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT idx, record_id, payload FROM ledger WHERE action = ?1 AND outcome = 'ok' ORDER BY idx",
        )?;
        Ok(st
            .query_map([action], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// When the newest evidence tree was made.
    pub fn last_evidence_at(&self) -> Result<Option<Millis>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT max(created_at) FROM evidence_trees", (), |r| {
                r.get(0)
            })?)
    }
}

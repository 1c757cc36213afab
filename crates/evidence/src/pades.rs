//! PAdES baseline signatures (ETSI EN 319 142-1) over a PDF's byte range: the CMS is the same
//! detached SignedData as CAdES, without the signing-time attribute (the time is the PDF's
//! `/M`); B-T adds the signature time-stamp inside the CMS, B-LTA a document time-stamp in a
//! later revision. The PDF structure is mamori-pdf's; this module signs and checks.

use mamori_pdf::{PdfSignature, SignatureKind};
use serde::Serialize;

use crate::asn1::ID_DATA;
use crate::cades::{SignatureInfo, verify_over};
use crate::cert::Cert;
use crate::cms::{Origin, Prepared, RawSigner, assemble_with, prepare_attrs};
use crate::tsp::{self, TokenInfo};
use crate::{EvidenceError, Result, UnixMs, sha256};

/// Step 1 for a PDF: the signed attributes over the byte range's digest (for a key outside
/// mamori, e.g. an HPKI card, the same three steps as CAdES).
pub fn prepare(signed_bytes: &[u8], signer: &Cert) -> Result<Prepared> {
    prepare_attrs(ID_DATA, &sha256(signed_bytes), signer, None)
}

/// All three steps with a key mamori holds (a token under its holder's PIN).
pub fn sign(
    signed_bytes: &[u8],
    signer: &Cert,
    chain: &[Cert],
    key: &dyn RawSigner,
) -> Result<Vec<u8>> {
    let p = prepare(signed_bytes, signer)?;
    let sig = key.sign(&p.to_be_signed)?;
    assemble_with(p, key.algorithm(), &sig, chain, None, Origin::OwnKey)
}

/// What one signature or document time-stamp of a PDF proves.
#[derive(Clone, Debug, Serialize)]
pub struct PdfSignatureReport {
    pub field: String,
    /// `PAdES-B-B`, `PAdES-B-T`, or `DocTimeStamp`.
    pub level: String,
    pub signature: Option<SignatureInfo>,
    pub doc_timestamp: Option<TokenInfo>,
    /// False when later revisions were appended (validation data, document time-stamps).
    pub covers_whole_file: bool,
    pub revision_len: usize,
    /// `ETSI.CAdES.detached` (PAdES; what mamori writes) or `adbe.pkcs7.detached` (the
    /// older form other software, e.g. for マイナンバーカード signatures, still writes).
    pub sub_filter: String,
}

/// The signature encodings read: both are a detached CMS over the byte range.
const SUB_FILTERS: [&str; 2] = ["ETSI.CAdES.detached", "adbe.pkcs7.detached"];

fn claimed(s: &PdfSignature) -> Option<UnixMs> {
    let d = s.claimed_time.as_deref()?.strip_prefix("D:")?;
    let n = |r: std::ops::Range<usize>| d.get(r)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(
        n(8..10).unwrap_or(0) as u8,
        n(10..12).unwrap_or(0) as u8,
        n(12..14).unwrap_or(0) as u8,
    )
    .ok()?;
    // mamori writes UTC (`Z`); an offset written by others is not guessed at.
    if !d[14.min(d.len())..].starts_with('Z') {
        return None;
    }
    Some((date.with_time(t).assume_utc().unix_timestamp() * 1000) as UnixMs)
}

/// Verifies every signature and document time-stamp of `pdf`: each byte range against the
/// file (mamori-pdf), each CMS over its range's digest, each chain at its time-stamp's time.
/// The newest revision must be covered by something: bytes appended after the last signature
/// or time-stamp are refused.
pub fn verify(
    pdf: &[u8],
    anchors: &[Cert],
    tsa_anchors: &[Cert],
) -> Result<Vec<PdfSignatureReport>> {
    let sigs =
        mamori_pdf::signatures(pdf).map_err(|e| EvidenceError::new(e.code(), e.to_string()))?;
    if sigs.is_empty() {
        return Err(EvidenceError::new("pdf_unsigned", "PDF に署名がありません"));
    }
    if !sigs.last().is_some_and(|s| s.covers_whole_file) {
        return Err(EvidenceError::new(
            "content_mismatch",
            "署名の後に、署名もタイムスタンプもない変更が加えられています",
        ));
    }
    let mut out = Vec::new();
    for s in &sigs {
        let digest = sha256(&s.signed_bytes(pdf).collect::<Vec<_>>().concat());
        let report = match s.kind {
            SignatureKind::Signature => {
                if !SUB_FILTERS.contains(&s.sub_filter.as_str()) {
                    return Err(EvidenceError::malformed(
                        "PDF 署名",
                        format!("SubFilter {} は扱いません", s.sub_filter),
                    ));
                }
                let info = verify_over(
                    &s.contents,
                    &digest,
                    anchors,
                    tsa_anchors,
                    claimed(s),
                    // Validation data of a PDF is in its DSS, not in the CMS.
                    ["PAdES-B-T", "PAdES-B-T", "PAdES-B-B"],
                )?;
                PdfSignatureReport {
                    field: s.field_name.clone(),
                    level: info.level.to_owned(),
                    signature: Some(info),
                    doc_timestamp: None,
                    covers_whole_file: s.covers_whole_file,
                    revision_len: s.revision_len(),
                    sub_filter: s.sub_filter.clone(),
                }
            }
            SignatureKind::DocTimeStamp => PdfSignatureReport {
                field: s.field_name.clone(),
                level: "DocTimeStamp".into(),
                signature: None,
                doc_timestamp: Some(tsp::verify_token(&s.contents, &digest, tsa_anchors)?),
                covers_whole_file: s.covers_whole_file,
                revision_len: s.revision_len(),
                sub_filter: s.sub_filter.clone(),
            },
        };
        out.push(report);
    }
    Ok(out)
}

//! RFC 3161 time-stamps: requests, responses, token verification, and a development TSA.
//!
//! The development TSA exists for demos and tests only: its tokens are cryptographically the
//! same as a real TSA's, but a 総務大臣認定 TSA is what gives a time-stamp legal weight.

use cmpv2::status::{PkiStatus, PkiStatusInfo};
use der::asn1::{GeneralizedTime, Int, ObjectIdentifier as Oid, OctetString};
use der::{Any, Decode, Encode};
use serde::Serialize;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::asn1::*;
use crate::cert::{Cert, chain_to_anchor};
use crate::cms::{self as cades, EcdsaP256, RawSigner};
use crate::{EvidenceError, Result, UnixMs};

/// The policy of mamori's development TSA: under IANA's enterprise number for documentation
/// and examples (RFC 5612), so it can never be mistaken for a real TSA's policy.
pub const DEV_TSA_POLICY: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.77.1");

fn imprint_alg(digest: &[u8]) -> Result<Oid> {
    match digest.len() {
        32 => Ok(ID_SHA256),
        48 => Ok(ID_SHA384),
        64 => Ok(ID_SHA512),
        _ => Err(EvidenceError::malformed(
            "ハッシュ値",
            "長さが SHA-2 と合いません",
        )),
    }
}

/// A positive INTEGER from big-endian bytes, in minimal DER form (random nonces and serials
/// may start with zero bytes, which DER forbids).
fn positive_int(bytes: &[u8]) -> Result<Int> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let mut v = bytes[start..].to_vec();
    if v.is_empty() {
        v.push(0);
    }
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    Int::new(&v).map_err(|e| EvidenceError::malformed("整数", e))
}

/// A `TimeStampReq` (DER) over `digest` with `nonce`, asking for the TSA's certificate.
pub fn request(digest: &[u8], nonce: &[u8]) -> Result<Vec<u8>> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: imprint_alg(digest)?,
                parameters: Some(Any::null()),
            },
            hashed_message: OctetString::new(digest.to_vec())
                .map_err(|e| EvidenceError::malformed("要求", e))?,
        },
        req_policy: None,
        nonce: Some(positive_int(nonce)?),
        cert_req: true,
        extensions: None,
    };
    req.to_der()
        .map_err(|e| EvidenceError::malformed("タイムスタンプ要求", e))
}

fn tst_info(token: &cades::Parsed) -> Result<(TstInfo, Vec<u8>)> {
    let encap = &token.sd.encap_content_info;
    if encap.econtent_type != ID_CT_TST_INFO {
        return Err(EvidenceError::malformed(
            "タイムスタンプ",
            "TSTInfo ではありません",
        ));
    }
    let content = encap
        .econtent
        .as_ref()
        .ok_or_else(|| EvidenceError::malformed("タイムスタンプ", "TSTInfo がありません"))?;
    let octets: OctetString = content
        .decode_as()
        .map_err(|e| EvidenceError::malformed("タイムスタンプ", e))?;
    let der = octets.as_bytes().to_vec();
    let info = TstInfo::from_der(&der).map_err(|e| EvidenceError::malformed("TSTInfo", e))?;
    Ok((info, der))
}

fn check_imprint(info: &TstInfo, digest: &[u8]) -> Result<()> {
    if info.message_imprint.hash_algorithm.oid != imprint_alg(digest)?
        || info.message_imprint.hashed_message.as_bytes() != digest
    {
        return Err(EvidenceError::new(
            "imprint_mismatch",
            "タイムスタンプが対象のハッシュ値と一致しません",
        ));
    }
    Ok(())
}

/// Takes the token out of a TSA's response after checking status, imprint and nonce
/// (the token's signature is checked by [`verify_token`] against the configured TSA roots).
pub fn token_from_response(resp: &[u8], digest: &[u8], nonce: &[u8]) -> Result<Vec<u8>> {
    let r = TimeStampResp::from_der(resp).map_err(|e| EvidenceError::malformed("TSA の応答", e))?;
    if !matches!(
        r.status.status,
        PkiStatus::Accepted | PkiStatus::GrantedWithMods
    ) {
        return Err(EvidenceError::new(
            "tsa_rejected",
            format!("TSA が要求を拒否しました（状態 {:?}）", r.status.status),
        ));
    }
    let token = r
        .time_stamp_token
        .ok_or_else(|| EvidenceError::malformed("TSA の応答", "トークンがありません"))?;
    let der = token
        .to_der()
        .map_err(|e| EvidenceError::malformed("タイムスタンプ", e))?;
    let (info, _) = tst_info(&cades::parse(&der, "タイムスタンプ")?)?;
    check_imprint(&info, digest)?;
    if info.nonce.as_ref().map(|n| n.as_bytes()) != Some(positive_int(nonce)?.as_bytes()) {
        return Err(EvidenceError::new(
            "nonce_mismatch",
            "TSA の応答のナンスが要求と一致しません（再送または別の要求への応答）",
        ));
    }
    Ok(der)
}

/// What a verified time-stamp token proves.
#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    pub gen_time: UnixMs,
    pub serial: String,
    pub policy: String,
    pub tsa_subject: String,
    pub tsa_not_after: UnixMs,
    /// Whether the token comes from mamori's development TSA (no legal weight).
    pub development: bool,
}

/// Verifies a `TimeStampToken` (DER `ContentInfo`) over `digest`: TSTInfo imprint, the
/// signed attributes' digest of the TSTInfo, the TSA's signature, its certificate's
/// time-stamping purpose, and its chain to `anchors` at the token's time.
pub fn verify_token(token: &[u8], digest: &[u8], anchors: &[Cert]) -> Result<TokenInfo> {
    let p = cades::parse(token, "タイムスタンプ")?;
    let (info, info_der) = tst_info(&p)?;
    check_imprint(&info, digest)?;
    if p.content_type_attr() != Some(ID_CT_TST_INFO) {
        return Err(EvidenceError::malformed(
            "タイムスタンプ",
            "content-type 属性が不正です",
        ));
    }
    let md = match p.si.digest_alg.oid {
        ID_SHA256 => crate::sha256(&info_der).to_vec(),
        ID_SHA384 => {
            use sha2::Digest;
            sha2::Sha384::digest(&info_der).to_vec()
        }
        ID_SHA512 => {
            use sha2::Digest;
            sha2::Sha512::digest(&info_der).to_vec()
        }
        _ => {
            return Err(EvidenceError::new(
                "unsupported_algorithm",
                "対応していないハッシュアルゴリズムのタイムスタンプです",
            ));
        }
    };
    if p.message_digest()? != md {
        return Err(EvidenceError::new(
            "bad_signature",
            "タイムスタンプの TSTInfo が署名と一致しません",
        ));
    }
    let tsa = p.signer(anchors)?;
    p.check_signature(&tsa).map_err(|_| {
        EvidenceError::new(
            "bad_signature",
            "タイムスタンプの署名が TSA の証明書と一致しません",
        )
    })?;
    if !tsa.has_eku(ID_KP_TIME_STAMPING) || !tsa.eku_critical() {
        return Err(EvidenceError::new(
            "not_a_tsa",
            format!(
                "「{}」はタイムスタンプ用の証明書ではありません（extendedKeyUsage timeStamping が必要）",
                tsa.subject()
            ),
        ));
    }
    let gen_time = info.gen_time.to_unix_duration().as_millis() as UnixMs;
    chain_to_anchor(
        &tsa,
        &p.certificates(),
        anchors,
        gen_time,
        crate::cert::Purpose::TimeStamping,
    )?;
    Ok(TokenInfo {
        gen_time,
        serial: hex::encode(info.serial_number.as_bytes()),
        policy: info.policy.to_string(),
        tsa_subject: tsa.subject(),
        tsa_not_after: tsa.not_after(),
        development: info.policy == DEV_TSA_POLICY,
    })
}

/// The token's time and TSA certificate without checking trust (for scheduling renewals).
pub fn peek(token: &[u8]) -> Result<(UnixMs, Option<Cert>)> {
    let p = cades::parse(token, "タイムスタンプ")?;
    let (info, _) = tst_info(&p)?;
    let cert = p.signer(&[]).ok();
    Ok((info.gen_time.to_unix_duration().as_millis() as UnixMs, cert))
}

/// Whether a token comes from mamori's development TSA (by its policy; no trust implied).
pub fn is_development(token: &[u8]) -> bool {
    cades::parse(token, "タイムスタンプ")
        .and_then(|p| tst_info(&p))
        .is_ok_and(|(info, _)| info.policy == DEV_TSA_POLICY)
}

/// The TSAs the facility names as accredited (総務大臣認定): their certificates, or the CA
/// certificates that issue them, and optionally the policies their tokens must carry.
#[derive(Clone, Debug, Default)]
pub struct AccreditedTsas {
    pub certs: Vec<Cert>,
    /// Policy OIDs (dotted); empty: any policy of a listed TSA.
    pub policies: Vec<String>,
}

impl AccreditedTsas {
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Whether `token` was made by one of these TSAs: its signing certificate is listed, or
    /// chains (at the token's time, as a time-stamping certificate) to one listed; and its
    /// policy is listed when policies are named. mamori's development TSA never is, whatever
    /// the list says. Says nothing about whether the token is otherwise valid.
    pub fn accepts(&self, token: &[u8]) -> bool {
        if self.certs.is_empty() {
            return false;
        }
        let Ok(p) = cades::parse(token, "タイムスタンプ") else {
            return false;
        };
        let Ok((info, _)) = tst_info(&p) else {
            return false;
        };
        if info.policy == DEV_TSA_POLICY {
            return false;
        }
        let policy = info.policy.to_string();
        if !self.policies.is_empty() && !self.policies.iter().any(|x| x.trim() == policy) {
            return false;
        }
        let Ok(tsa) = p.signer(&[]) else {
            return false;
        };
        if self.certs.iter().any(|c| c.der == tsa.der) {
            return true;
        }
        let at = info.gen_time.to_unix_duration().as_millis() as UnixMs;
        chain_to_anchor(
            &tsa,
            &p.certificates(),
            &self.certs,
            at,
            crate::cert::Purpose::TimeStamping,
        )
        .is_ok()
    }
}

/// mamori's development TSA: answers RFC 3161 requests with tokens under [`DEV_TSA_POLICY`].
pub struct DevTsa {
    key: EcdsaP256,
    cert: Cert,
    chain: Vec<Cert>,
    policy: Oid,
}

impl DevTsa {
    pub fn new(pkcs8: &[u8], cert: Cert, chain: Vec<Cert>) -> Result<Self> {
        Ok(Self {
            key: EcdsaP256::from_pkcs8(pkcs8)?,
            cert,
            chain,
            policy: DEV_TSA_POLICY,
        })
    }

    /// The same TSA under another policy: a stand-in, in tests, for someone else's TSA (an
    /// accredited one, say). mamori itself only ever runs it under [`DEV_TSA_POLICY`].
    pub fn with_policy(mut self, policy: Oid) -> Self {
        self.policy = policy;
        self
    }

    pub fn certificate(&self) -> &Cert {
        &self.cert
    }

    /// The DER `TimeStampResp` for a DER `TimeStampReq`: a token, or a rejection that says why.
    pub fn respond(&self, req: &[u8], now: UnixMs, serial: &[u8]) -> Vec<u8> {
        match self.grant(req, now, serial) {
            Ok(der) => der,
            Err(_) => rejection(),
        }
    }

    fn grant(&self, req: &[u8], now: UnixMs, serial: &[u8]) -> Result<Vec<u8>> {
        let req = TimeStampReq::from_der(req).map_err(|e| EvidenceError::malformed("要求", e))?;
        imprint_alg(req.message_imprint.hashed_message.as_bytes())?;
        if req.message_imprint.hash_algorithm.oid
            != imprint_alg(req.message_imprint.hashed_message.as_bytes())?
        {
            return Err(EvidenceError::malformed("要求", "ハッシュアルゴリズム"));
        }
        let secs = std::time::Duration::from_secs((now.max(0) / 1000) as u64);
        let info = TstInfo {
            version: TspVersion::V1,
            policy: req.req_policy.unwrap_or(self.policy),
            message_imprint: req.message_imprint,
            serial_number: positive_int(serial)?,
            gen_time: GeneralizedTime::from_unix_duration(secs)
                .map_err(|e| EvidenceError::malformed("時刻", e))?,
            accuracy: Some(Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: req.nonce,
            tsa: Some(GeneralName::DirectoryName(
                self.cert.parsed.tbs_certificate.subject.clone(),
            )),
            extensions: None,
        };
        if info.policy != self.policy {
            return Err(EvidenceError::malformed("要求", "未知のポリシー"));
        }
        let info_der = info
            .to_der()
            .map_err(|e| EvidenceError::malformed("TSTInfo", e))?;
        let prepared =
            cades::prepare_for(ID_CT_TST_INFO, &crate::sha256(&info_der), &self.cert, now)?;
        let sig = self.key.sign(&prepared.to_be_signed)?;
        let econtent = Any::encode_from(
            &OctetString::new(info_der).map_err(|e| EvidenceError::malformed("TSTInfo", e))?,
        )
        .map_err(|e| EvidenceError::malformed("TSTInfo", e))?;
        let chain = if req.cert_req {
            self.chain.clone()
        } else {
            Vec::new()
        };
        let token = cades::assemble_with(
            prepared,
            self.key.algorithm(),
            &sig,
            &chain,
            Some(econtent),
            cades::Origin::OwnKey,
        )?;
        let resp = TimeStampResp {
            status: PkiStatusInfo {
                status: PkiStatus::Accepted,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(
                cms::content_info::ContentInfo::from_der(&token)
                    .map_err(|e| EvidenceError::malformed("トークン", e))?,
            ),
        };
        resp.to_der()
            .map_err(|e| EvidenceError::malformed("応答", e))
    }
}

fn rejection() -> Vec<u8> {
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: None,
    };
    resp.to_der().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_from_random_bytes_are_minimal_der() {
        for bytes in [
            &[0u8, 0, 5][..],
            &[0, 0x80],
            &[0x80, 1],
            &[0, 0, 0],
            &[0x7f],
        ] {
            let i = positive_int(bytes).unwrap();
            let der = i.to_der().unwrap();
            assert_eq!(Int::from_der(&der).unwrap(), i, "{bytes:?}");
        }
        assert_eq!(positive_int(&[0, 0, 5]).unwrap().as_bytes(), &[5]);
        assert_eq!(positive_int(&[0, 0x80]).unwrap().as_bytes(), &[0, 0x80]);
    }
}

//! CMS SignedData (RFC 5652) built and read: the signers (ECDSA P-256 and PKCS #8 keys), the
//! signed attributes, the three signing steps ([`prepare`], sign anywhere, [`assemble`]) and
//! parsing. CAdES signatures (`cades`) and time-stamp tokens (`tsp`) are both built on it.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier as Oid, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

use crate::asn1::*;
use crate::cert::{Cert, verify_raw};
use crate::{EvidenceError, Result, UnixMs, sha256};

/// Whoever holds a signing key: signs the DER signed attributes with SHA-256.
pub trait RawSigner {
    /// The signature algorithm (e.g. `ecdsa-with-SHA256`).
    fn algorithm(&self) -> Oid;
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// An in-process ECDSA P-256 key (PKCS#8), for keys mamori itself holds.
pub struct EcdsaP256 {
    key: EcdsaKeyPair,
}

impl EcdsaP256 {
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &SystemRandom::new())
                .map_err(|e| EvidenceError::malformed("署名鍵", e))?;
        Ok(Self { key })
    }
}

impl RawSigner for EcdsaP256 {
    fn algorithm(&self) -> Oid {
        ECDSA_WITH_SHA256
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.key
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| EvidenceError::new("sign_failed", "署名の計算に失敗しました"))
    }
}

/// A key from PKCS#8 (ECDSA P-256/P-384 or RSA) that mamori holds: its own staff keys, or one
/// imported from a PKCS#12 bundle. RSA signing goes through ring, never the `rsa` crate.
pub enum Pkcs8Signer {
    Ecdsa(EcdsaKeyPair, Oid),
    Rsa(ring::signature::RsaKeyPair),
}

impl Pkcs8Signer {
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        use ring::signature::{ECDSA_P384_SHA384_ASN1_SIGNING, RsaKeyPair};
        let rng = SystemRandom::new();
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng) {
            return Ok(Self::Ecdsa(k, ECDSA_WITH_SHA256));
        }
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &rng) {
            return Ok(Self::Ecdsa(k, ECDSA_WITH_SHA384));
        }
        RsaKeyPair::from_pkcs8(pkcs8).map(Self::Rsa).map_err(|_| {
            EvidenceError::new(
                "unsupported_algorithm",
                "署名鍵の形式に対応していません（ECDSA P-256/P-384 または RSA 2048 ビット以上）",
            )
        })
    }

    /// Whether this key belongs to `cert` (a test signature verified with its public key).
    pub fn matches(&self, cert: &Cert) -> bool {
        let msg = b"mamori key check";
        self.sign(msg).is_ok_and(|sig| {
            verify_raw(cert.spki(), &self.algorithm(), Some(&ID_SHA256), msg, &sig).is_ok()
        })
    }
}

impl RawSigner for Pkcs8Signer {
    fn algorithm(&self) -> Oid {
        match self {
            Self::Ecdsa(_, oid) => *oid,
            Self::Rsa(_) => SHA256_WITH_RSA,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        let failed = |_| EvidenceError::new("sign_failed", "署名の計算に失敗しました");
        match self {
            Self::Ecdsa(k, _) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// Signed attributes ready for the key holder.
#[derive(Clone, Debug)]
pub struct Prepared {
    signer: Cert,
    econtent_type: Oid,
    attrs: SetOfVec<Attribute>,
    /// The DER `SET OF Attribute` the signature covers (RFC 5652 §5.4).
    pub to_be_signed: Vec<u8>,
}

pub(crate) fn attribute(oid: Oid, value: Any) -> Result<Attribute> {
    let mut values = SetOfVec::new();
    values
        .insert(value)
        .map_err(|e| EvidenceError::malformed("属性", e))?;
    Ok(Attribute { oid, values })
}

pub(crate) fn any<T: der::EncodeValue + der::Tagged>(v: &T) -> Result<Any> {
    Any::encode_from(v).map_err(|e| EvidenceError::malformed("ASN.1", e))
}

pub(crate) fn signing_certificate_v2(cert: &Cert) -> Result<SigningCertificateV2> {
    let tbs = &cert.parsed.tbs_certificate;
    Ok(SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(cert.sha256().to_vec())
                .map_err(|e| EvidenceError::malformed("ESS", e))?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                serial_number: tbs.serial_number.clone(),
            }),
        }],
    })
}

/// Step 1: the signed attributes over content whose SHA-256 is `digest`.
pub(crate) fn prepare_for(
    econtent_type: Oid,
    digest: &[u8; 32],
    signer: &Cert,
    signing_time: UnixMs,
) -> Result<Prepared> {
    prepare_attrs(econtent_type, digest, signer, Some(signing_time))
}

/// The signed attributes: content type, message digest, the ESS signing certificate, and the
/// signing time where the format wants it in the CMS (PAdES keeps it in the PDF, `/M`).
pub(crate) fn prepare_attrs(
    econtent_type: Oid,
    digest: &[u8; 32],
    signer: &Cert,
    signing_time: Option<UnixMs>,
) -> Result<Prepared> {
    let mut list = vec![attribute(ID_CONTENT_TYPE, any(&econtent_type)?)?];
    if let Some(at) = signing_time {
        let time = UtcTime::from_unix_duration(std::time::Duration::from_millis(at.max(0) as u64))
            .map_err(|e| EvidenceError::malformed("署名時刻", e))?;
        list.push(attribute(ID_SIGNING_TIME, any(&time)?)?);
    }
    list.push(attribute(
        ID_MESSAGE_DIGEST,
        any(&OctetString::new(digest.to_vec()).map_err(|e| EvidenceError::malformed("属性", e))?)?,
    )?);
    list.push(attribute(
        ID_AA_SIGNING_CERTIFICATE_V2,
        any(&signing_certificate_v2(signer)?)?,
    )?);
    let attrs = SetOfVec::try_from(list).map_err(|e| EvidenceError::malformed("属性", e))?;
    let to_be_signed = attrs
        .to_der()
        .map_err(|e| EvidenceError::malformed("属性", e))?;
    Ok(Prepared {
        signer: signer.clone(),
        econtent_type,
        attrs,
        to_be_signed,
    })
}

/// Step 1 for a detached signature over `content` (CAdES-B-B).
pub fn prepare(content: &[u8], signer: &Cert, signing_time: UnixMs) -> Result<Prepared> {
    prepare_for(ID_DATA, &sha256(content), signer, signing_time)
}

/// Who produced the signature value [`assemble_with`] is given.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A card, a cloud service or any other outside party: checked before use.
    External,
    /// A key this process holds and just used: nothing to check.
    OwnKey,
}

/// Step 3: checks an external `signature` against the signer's certificate and builds the
/// `ContentInfo` (DER). `econtent` is `None` for a detached signature.
pub(crate) fn assemble_with(
    p: Prepared,
    signature_algorithm: Oid,
    signature: &[u8],
    chain: &[Cert],
    econtent: Option<Any>,
    origin: Origin,
) -> Result<Vec<u8>> {
    if origin == Origin::External {
        verify_external(&p, signature_algorithm, signature)?;
    }
    build(p, signature_algorithm, signature, chain, econtent)
}

pub(crate) fn verify_external(
    p: &Prepared,
    signature_algorithm: Oid,
    signature: &[u8],
) -> Result<()> {
    verify_raw(
        p.signer.spki(),
        &signature_algorithm,
        Some(&ID_SHA256),
        &p.to_be_signed,
        signature,
    )
    .map_err(|_| {
        EvidenceError::new(
            "bad_signature",
            "外部で計算された署名値が署名者の証明書と一致しません",
        )
    })
}

pub(crate) fn build(
    p: Prepared,
    signature_algorithm: Oid,
    signature: &[u8],
    chain: &[Cert],
    econtent: Option<Any>,
) -> Result<Vec<u8>> {
    let tbs = &p.signer.parsed.tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_alg(ID_SHA256),
        signed_attrs: Some(p.attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: signature_algorithm,
            parameters: None,
        },
        signature: OctetString::new(signature.to_vec())
            .map_err(|e| EvidenceError::malformed("署名値", e))?,
        unsigned_attrs: None,
    };
    let mut certs = vec![CertificateChoices::Certificate(p.signer.parsed.clone())];
    for c in chain {
        if *c != p.signer {
            certs.push(CertificateChoices::Certificate(c.parsed.clone()));
        }
    }
    let mut digests = SetOfVec::new();
    digests
        .insert(digest_alg(ID_SHA256))
        .map_err(|e| EvidenceError::malformed("SignedData", e))?;
    let sd = SignedData {
        version: if p.econtent_type == ID_DATA {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        },
        digest_algorithms: digests,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: p.econtent_type,
            econtent,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(certs).map_err(|e| EvidenceError::malformed("SignedData", e))?,
        )),
        crls: None,
        signer_infos: SignerInfos(
            SetOfVec::try_from(vec![signer_info])
                .map_err(|e| EvidenceError::malformed("SignedData", e))?,
        ),
    };
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: any(&sd)?,
    };
    ci.to_der()
        .map_err(|e| EvidenceError::malformed("SignedData", e))
}

/// Step 3 for a detached signature: the `.p7s` (DER).
pub fn assemble(
    p: Prepared,
    signature_algorithm: Oid,
    signature: &[u8],
    chain: &[Cert],
) -> Result<Vec<u8>> {
    assemble_with(
        p,
        signature_algorithm,
        signature,
        chain,
        None,
        Origin::External,
    )
}

/// All three steps with a key mamori holds.
pub fn sign_detached(
    content: &[u8],
    signer_cert: &Cert,
    chain: &[Cert],
    key: &dyn RawSigner,
    signing_time: UnixMs,
) -> Result<Vec<u8>> {
    let p = prepare(content, signer_cert, signing_time)?;
    let sig = key.sign(&p.to_be_signed)?;
    assemble_with(p, key.algorithm(), &sig, chain, None, Origin::OwnKey)
}

/// A parsed `SignedData` with its one signer.
pub(crate) struct Parsed {
    pub sd: SignedData,
    pub si: SignerInfo,
}

pub(crate) fn parse(ci_der: &[u8], what: &str) -> Result<Parsed> {
    let ci = ContentInfo::from_der(ci_der).map_err(|e| EvidenceError::malformed(what, e))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(EvidenceError::malformed(what, "SignedData ではありません"));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| EvidenceError::malformed(what, e))?;
    let si = match sd.signer_infos.0.iter().collect::<Vec<_>>().as_slice() {
        [one] => (*one).clone(),
        _ => {
            return Err(EvidenceError::malformed(
                what,
                "署名者は 1 人である必要があります",
            ));
        }
    };
    Ok(Parsed { sd, si })
}

pub(crate) fn attr_value(si: &SignerInfo, oid: Oid) -> Option<&Any> {
    si.signed_attrs
        .as_ref()?
        .iter()
        .find(|a| a.oid == oid)
        .and_then(|a| a.values.get(0))
}

impl Parsed {
    pub fn certificates(&self) -> Vec<Cert> {
        self.sd
            .certificates
            .as_ref()
            .map(|s| {
                s.0.iter()
                    .filter_map(|c| match c {
                        CertificateChoices::Certificate(c) => Cert::from_parsed(c.clone()).ok(),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The signer's certificate: named by issuer and serial, and (when the ESS attribute is
    /// present, which this crate always writes) bound by its hash.
    pub fn signer(&self, extra: &[Cert]) -> Result<Cert> {
        let SignerIdentifier::IssuerAndSerialNumber(ias) = &self.si.sid else {
            return Err(EvidenceError::malformed(
                "署名",
                "署名者の指定方法に対応していません",
            ));
        };
        let cert = self
            .certificates()
            .into_iter()
            .chain(extra.iter().cloned())
            .find(|c| {
                c.parsed.tbs_certificate.issuer == ias.issuer
                    && c.parsed.tbs_certificate.serial_number == ias.serial_number
            })
            .ok_or_else(|| {
                EvidenceError::new("signer_missing", "署名者の証明書が見つかりません")
            })?;
        if let Some(v) = attr_value(&self.si, ID_AA_SIGNING_CERTIFICATE_V2) {
            let sc: SigningCertificateV2 = v
                .decode_as()
                .map_err(|e| EvidenceError::malformed("signing-certificate-v2", e))?;
            let bound = sc.certs.first().is_some_and(|id| {
                id.hash_algorithm
                    .as_ref()
                    .is_none_or(|a| a.oid == ID_SHA256)
                    && id.cert_hash.as_bytes() == cert.sha256()
            });
            if !bound {
                return Err(EvidenceError::new(
                    "wrong_certificate",
                    "署名に埋め込まれた証明書が、署名時に指定された証明書（ESS signing-certificate-v2）と異なります",
                ));
            }
        }
        Ok(cert)
    }

    pub fn message_digest(&self) -> Result<Vec<u8>> {
        let v = attr_value(&self.si, ID_MESSAGE_DIGEST)
            .ok_or_else(|| EvidenceError::malformed("署名", "message-digest 属性がありません"))?;
        let o: OctetString = v
            .decode_as()
            .map_err(|e| EvidenceError::malformed("message-digest", e))?;
        Ok(o.as_bytes().to_vec())
    }

    pub fn signing_time(&self) -> Option<UnixMs> {
        let v = attr_value(&self.si, ID_SIGNING_TIME)?;
        let t = x509_cert::time::Time::from_der(&v.to_der().ok()?).ok()?;
        Some(t.to_unix_duration().as_millis() as UnixMs)
    }

    /// Checks the signature over the signed attributes with `signer`'s key.
    pub fn check_signature(&self, signer: &Cert) -> Result<()> {
        let attrs = self
            .si
            .signed_attrs
            .as_ref()
            .ok_or_else(|| EvidenceError::malformed("署名", "署名属性がありません"))?;
        let tbs = attrs
            .to_der()
            .map_err(|e| EvidenceError::malformed("署名属性", e))?;
        verify_raw(
            signer.spki(),
            &self.si.signature_algorithm.oid,
            Some(&self.si.digest_alg.oid),
            &tbs,
            self.si.signature.as_bytes(),
        )
    }

    pub fn content_type_attr(&self) -> Option<Oid> {
        attr_value(&self.si, ID_CONTENT_TYPE)?.decode_as().ok()
    }
}

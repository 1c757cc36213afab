//! Object identifiers and the ASN.1 structures the RustCrypto crates do not define
//! (ESS signing-certificate-v2 from RFC 5035, evidence records from RFC 4998).

use cms::content_info::ContentInfo;
use der::Sequence;
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

pub const ID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
pub const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub const ID_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
pub const ID_AA_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
pub const ID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const ID_SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const ID_SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const ID_KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
pub const ID_CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const ID_CE_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const ID_CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");

/// The algorithm identifier of a digest, with absent parameters (RFC 5754).
pub fn digest_alg(oid: Oid) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// RFC 5035 `IssuerSerial`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

/// RFC 5035 `ESSCertIDv2`; the hash algorithm defaults to SHA-256 and is then left out.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 `SigningCertificateV2` (policies are not used).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

/// RFC 4998 `PartialHashtree ::= SEQUENCE OF OCTET STRING`.
pub type PartialHashtree = Vec<OctetString>;

/// RFC 4998 `ArchiveTimeStamp` (the ERS module uses implicit tags).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ArchiveTimeStamp {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub digest_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub reduced_hashtree: Option<Vec<PartialHashtree>>,
    pub time_stamp: ContentInfo,
}

/// RFC 4998 `ArchiveTimeStampChain ::= SEQUENCE OF ArchiveTimeStamp`.
pub type ArchiveTimeStampChain = Vec<ArchiveTimeStamp>;

/// RFC 4998 `EvidenceRecord` (version 1; no crypto or encryption infos).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EvidenceRecord {
    pub version: u8,
    pub digest_algorithms: Vec<AlgorithmIdentifierOwned>,
    pub archive_time_stamp_sequence: Vec<ArchiveTimeStampChain>,
}

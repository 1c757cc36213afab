//! The signer's qualification in their certificate: the ISO 17090 `hcRole` attribute
//! (HCActorData) in subjectDirectoryAttributes, as the HPKI certificate policy (保健医療福祉分野
//! PKI 認証局 証明書ポリシ 7.1.2) profiles it:
//!
//! ```text
//! subjectDirectoryAttributes (2.5.29.9) ::= SEQUENCE OF Attribute
//! Attribute { type 1.0.17090.0.1 (hcRole), values SET OF HCActorData }
//! HCActorData ::= SET OF HCActor
//! HCActor ::= SEQUENCE { codedData [0] EXPLICIT CodedData OPTIONAL, regionalHCActorData [1] … }
//! CodedData ::= SET { codingSchemeReference [0] EXPLICIT OBJECT IDENTIFIER,
//!                     codeDataValue [1] EXPLICIT UTF8String OPTIONAL,
//!                     codeDataFreeText [2] EXPLICIT DirectoryString OPTIONAL }
//! ```
//!
//! HPKI writes the national qualification's English name ("Medical Doctor", "Dentist",
//! "Pharmacist" …) as codeDataFreeText under the scheme [`HPKI_QUALIFICATIONS`]. The facility
//! CA writes the same form under mamori's own scheme [`FACILITY_ROLE`], so a reader sees at once
//! that the facility — not an HPKI CA — vouches for it.

use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, TagNumber};
use serde::Serialize;

use crate::cert::Cert;

/// ISO 17090-2 `id-hcpki-at-healthcareactor`: the hcRole attribute.
pub const ID_HC_ACTOR: Oid = Oid::new_unwrap("1.0.17090.0.1");
/// The HPKI certificate policy's coding scheme of national qualifications (国家資格).
pub const HPKI_QUALIFICATIONS: Oid = Oid::new_unwrap("1.2.392.100495.1.6.1.1");
/// mamori's own scheme (under IANA's example arc, like its development TSA): a role the
/// facility CA states from the account's 職種 — not an HPKI qualification.
pub const FACILITY_ROLE: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.77.2");
const SUBJECT_DIRECTORY_ATTRIBUTES: Oid = Oid::new_unwrap("2.5.29.9");

/// One hcRole of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HcRole {
    /// The coding scheme (dotted OID).
    pub scheme: String,
    /// The role as written (codeDataFreeText, else codeDataValue), e.g. `Medical Doctor`.
    pub name: String,
}

impl HcRole {
    /// Vouched for by an HPKI CA's coding scheme of national qualifications.
    pub fn is_hpki(&self) -> bool {
        self.scheme == HPKI_QUALIFICATIONS.to_string()
    }

    pub fn is_facility(&self) -> bool {
        self.scheme == FACILITY_ROLE.to_string()
    }

    /// The Japanese name of a national qualification, else the name as written.
    pub fn name_ja(&self) -> String {
        match self.name.as_str() {
            "Medical Doctor" => "医師",
            "Dentist" => "歯科医師",
            "Pharmacist" => "薬剤師",
            other => other,
        }
        .to_owned()
    }

    /// `医師（HPKI）`, `医師（施設CAによる・HPKIではない）` …
    pub fn label_ja(&self) -> String {
        let source = if self.is_hpki() {
            "HPKI"
        } else if self.is_facility() {
            "施設CAによる・HPKIではない"
        } else {
            "HPKI 以外の体系"
        };
        format!("{}（{source}）", self.name_ja())
    }
}

/// Reads a TLV at the front of `input`: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(Tag, &[u8], &[u8])> {
    let mut r = SliceReader::new(input).ok()?;
    let header = Header::decode(&mut r).ok()?;
    let contents = r.read_slice(header.length).ok()?;
    let rest: usize = r.remaining_len().try_into().ok()?;
    Some((header.tag, contents, &input[input.len() - rest..]))
}

/// One TLV: its tag, its contents, and the whole encoding.
type Item<'a> = (Tag, &'a [u8], &'a [u8]);

/// Every TLV inside `contents`, in order.
fn items(mut contents: &[u8]) -> Option<Vec<Item<'_>>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let whole = contents;
        let (tag, body, rest) = tlv(contents)?;
        out.push((tag, body, &whole[..whole.len() - rest.len()]));
        contents = rest;
    }
    Some(out)
}

fn context(n: u8) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::new(n),
    }
}

/// The text of a DirectoryString / UTF8String TLV.
fn text(der: &[u8]) -> Option<String> {
    let (tag, body, _) = tlv(der)?;
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            String::from_utf8(body.to_vec()).ok()
        }
        _ => None,
    }
}

fn coded_data(set_body: &[u8]) -> Option<HcRole> {
    let (mut scheme, mut value, mut free) = (None, None, None);
    for (tag, body, _) in items(set_body)? {
        if tag == context(0) {
            scheme = Oid::from_der(body).ok();
        } else if tag == context(1) {
            value = text(body);
        } else if tag == context(2) {
            free = text(body);
        }
    }
    Some(HcRole {
        scheme: scheme?.to_string(),
        name: free.or(value)?,
    })
}

/// The hcRoles a certificate carries (none when it has no subjectDirectoryAttributes or no
/// hcRole in them; a malformed attribute yields nothing rather than a guess).
pub fn roles(cert: &Cert) -> Vec<HcRole> {
    let Some(ext) = cert
        .parsed
        .tbs_certificate
        .extensions
        .as_ref()
        .and_then(|x| x.iter().find(|e| e.extn_id == SUBJECT_DIRECTORY_ATTRIBUTES))
    else {
        return Vec::new();
    };
    roles_in_extension(ext.extn_value.as_bytes())
}

/// The hcRoles in a subjectDirectoryAttributes extension value (DER); nothing when malformed.
pub fn roles_in_extension(value: &[u8]) -> Vec<HcRole> {
    roles_in(value).unwrap_or_default()
}

fn roles_in(sda: &[u8]) -> Option<Vec<HcRole>> {
    let mut out = Vec::new();
    let (tag, attrs, _) = tlv(sda)?;
    if tag != Tag::Sequence {
        return None;
    }
    for (tag, attr, _) in items(attrs)? {
        if tag != Tag::Sequence {
            return None;
        }
        let parts = items(attr)?;
        let [(Tag::ObjectIdentifier, _, oid_tlv), (Tag::Set, values, _)] = parts.as_slice() else {
            return None;
        };
        if Oid::from_der(oid_tlv).ok()? != ID_HC_ACTOR {
            continue;
        }
        // values: SET OF HCActorData; HCActorData: SET OF HCActor.
        for (tag, actor_data, _) in items(values)? {
            if tag != Tag::Set {
                return None;
            }
            for (tag, actor, _) in items(actor_data)? {
                if tag != Tag::Sequence {
                    return None;
                }
                for (tag, coded, _) in items(actor)? {
                    if tag == context(0) {
                        let (set_tag, set_body, _) = tlv(coded)?;
                        if set_tag != Tag::Set {
                            return None;
                        }
                        out.push(coded_data(set_body)?);
                    }
                }
            }
        }
    }
    Some(out)
}

fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// The DER value of a subjectDirectoryAttributes extension with one hcRole `name` under
/// `scheme` (for the facility CA: [`FACILITY_ROLE`]).
pub fn extension_value(scheme: Oid, name: &str) -> Vec<u8> {
    let oid = scheme.to_der().unwrap_or_default();
    let coded = [wrap(0xa0, &oid), wrap(0xa2, &wrap(0x0c, name.as_bytes()))].concat();
    let actor = wrap(0x30, &wrap(0xa0, &wrap(0x31, &coded)));
    let values = wrap(0x31, &wrap(0x31, &actor));
    let attr = wrap(
        0x30,
        &[ID_HC_ACTOR.to_der().unwrap_or_default(), values].concat(),
    );
    wrap(0x30, &attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subjectDirectoryAttributes of MEDIS's published HPKI test certificate (subject
    /// serialNumber Test117120, "Medical Doctor"), as `openssl asn1parse` shows it: the shape
    /// real HPKI cards carry.
    const MEDIS_TEST_SDA: &str = "303430320606288185420001312831263024a0223120a00c060a2a830886910f01060101a2100c0e4d65646963616c20446f63746f72";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn an_hpki_medical_doctor_is_read_as_such() {
        let roles = roles_in(&hex(MEDIS_TEST_SDA)).unwrap();
        assert_eq!(
            roles,
            vec![HcRole {
                scheme: "1.2.392.100495.1.6.1.1".into(),
                name: "Medical Doctor".into()
            }]
        );
        assert!(roles[0].is_hpki());
        assert_eq!(roles[0].label_ja(), "医師（HPKI）");
    }

    #[test]
    fn what_the_facility_ca_writes_reads_back_marked_as_not_hpki() {
        let der = extension_value(FACILITY_ROLE, "Pharmacist");
        let roles = roles_in(&der).unwrap();
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].name_ja(), "薬剤師");
        assert!(!roles[0].is_hpki() && roles[0].is_facility());
        assert_eq!(roles[0].label_ja(), "薬剤師（施設CAによる・HPKIではない）");
        // The same shape as HPKI's, byte for byte, but for the scheme.
        let hpki = extension_value(HPKI_QUALIFICATIONS, "Medical Doctor");
        assert_eq!(hpki, hex(MEDIS_TEST_SDA));
    }

    #[test]
    fn broken_attributes_yield_nothing() {
        let good = hex(MEDIS_TEST_SDA);
        for cut in 0..good.len() {
            // Never a panic; a cut structure is not read as a role.
            let r = roles_in(&good[..cut]);
            assert!(r.as_ref().is_none_or(|r| r.is_empty()), "{cut}: {r:?}");
        }
        assert!(roles_in(&[0x04, 0x00]).is_none());
    }
}

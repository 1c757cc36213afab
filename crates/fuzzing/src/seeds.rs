//! Well-formed inputs for each target, made with the same code that makes them in mamori, so
//! that mutations start past the first length check.

use der::Encode;
use mamori_evidence::tsp;
use sha1::Digest;

use crate::parsers::{self, CHALLENGE, ORIGIN, P12_PASSWORD, RP_ID, TSP_DIGEST, TSP_NONCE};
use crate::pki::{NOW, pki};

pub fn upload() -> Vec<Vec<u8>> {
    vec![
        b"%PDF-1.7\n".to_vec(),
        vec![0xFF, 0xD8, 0xFF, 0xE0],
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"II*\0".to_vec(),
        "紹介状 2026-12.pdf".as_bytes().to_vec(),
        b"../../etc/passwd".to_vec(),
    ]
}

pub fn asset_csv() -> Vec<Vec<u8>> {
    let text = "\u{feff}kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note\n\
                server,電子カルテサーバ,サーバ室,院長,Ubuntu 24.04,2026-11-01,yes,〇〇メディカル,〇〇メディカル,received,,\n\
                network,UTM,サーバ室,院長,FortiOS 7.4,2026-09-15,いいえ,,△△ネット,受領,\"院内LANと保守VPNのみ, 管理画面は院内から\",\n";
    vec![text.as_bytes().to_vec()]
}

pub fn catalogue() -> Vec<Vec<u8>> {
    mamori_compliance::catalogue::EMBEDDED
        .iter()
        .map(|(_, text)| text.as_bytes().to_vec())
        .collect()
}

pub fn tsp_response() -> Vec<Vec<u8>> {
    let req = tsp::request(&TSP_DIGEST, &TSP_NONCE).expect("a request");
    vec![
        pki().tsa.respond(&req, NOW, &[1, 2]),
        pki().tsa.respond(b"not a request", NOW, &[3]),
    ]
}

pub fn ocsp_request() -> Vec<Vec<u8>> {
    use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};
    let p = pki();
    let name =
        p.ca.parsed
            .tbs_certificate
            .subject
            .to_der()
            .expect("a name");
    let key = p.ca.spki().subject_public_key.raw_bytes();
    let id = |serial: x509_cert::serial_number::SerialNumber| CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: der::asn1::ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: None,
        },
        issuer_name_hash: der::asn1::OctetString::new(sha1::Sha1::digest(&name).to_vec())
            .expect("octets"),
        issuer_key_hash: der::asn1::OctetString::new(sha1::Sha1::digest(key).to_vec())
            .expect("octets"),
        serial_number: serial,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id(p.signer.cert.parsed.tbs_certificate.serial_number.clone()),
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    vec![req.to_der().expect("DER")]
}

pub fn certificate() -> Vec<Vec<u8>> {
    let p = pki();
    vec![
        p.ca.der.clone(),
        p.signer.cert.der.clone(),
        p.tsa.certificate().der.clone(),
        p.signer.cert.to_pem().into_bytes(),
    ]
}

/// A CRL of the fuzz CA listing its signer, as PEM and as DER.
pub fn signer_crl() -> Vec<Vec<u8>> {
    let p = pki();
    let key = rcgen::KeyPair::try_from(p.ca_pkcs8.as_slice()).expect("the CA key");
    let issuer = rcgen::Issuer::from_ca_cert_der(&p.ca.der.clone().into(), key).expect("issuer");
    let at = time::OffsetDateTime::from_unix_timestamp(crate::pki::NOW / 1000).expect("a time");
    let crl = rcgen::CertificateRevocationListParams {
        this_update: at,
        next_update: at + time::Duration::days(7),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(
                p.signer
                    .cert
                    .parsed
                    .tbs_certificate
                    .serial_number
                    .as_bytes(),
            ),
            revocation_time: at,
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .expect("a CRL");
    vec![crl.der().to_vec(), crl.pem().expect("PEM").into_bytes()]
}

pub fn hc_role() -> Vec<Vec<u8>> {
    use mamori_evidence::hcrole::{FACILITY_ROLE, HPKI_QUALIFICATIONS, extension_value};
    vec![
        extension_value(HPKI_QUALIFICATIONS, "Medical Doctor"),
        extension_value(FACILITY_ROLE, "Pharmacist"),
    ]
}

pub fn pkcs12() -> Vec<Vec<u8>> {
    let p = pki();
    let mut store = p12_keystore::KeyStore::new();
    let chain = vec![
        p12_keystore::Certificate::from_der(&p.signer.cert.der).expect("a certificate"),
        p12_keystore::Certificate::from_der(&p.ca.der).expect("a certificate"),
    ];
    store.add_entry(
        "signer",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            p.signer.pkcs8.clone(),
            [1u8; 8],
            chain,
        )),
    );
    vec![store.writer(P12_PASSWORD).write().expect("PKCS#12")]
}

pub fn webauthn() -> Vec<Vec<u8>> {
    let mut a = mamori_passkey::soft::Authenticator::new();
    let (cd, att) = a.create(RP_ID, ORIGIN, &CHALLENGE);
    let rp = mamori_passkey::RelyingParty {
        id: RP_ID.into(),
        origins: vec![ORIGIN.into()],
    };
    let cred = mamori_passkey::verify_registration(&rp, &CHALLENGE, &cd, &att).expect("registers");
    let mut reg = vec![0u8];
    reg.extend(parsers::join(&[&cd, &att]));
    let (cd2, auth, sig) = a.get(RP_ID, ORIGIN, &CHALLENGE);
    let mut get = vec![1u8];
    get.extend(parsers::join(&[&cred.public_key, &cd2, &auth, &sig]));
    vec![reg, get]
}

pub fn cades() -> Vec<Vec<u8>> {
    vec![parsers::cades_seed()]
}

pub fn evidence_record() -> Vec<Vec<u8>> {
    vec![parsers::evidence_record_seed()]
}

pub fn backup_manifest() -> Vec<Vec<u8>> {
    let m = mamori_backup::Manifest {
        format: "mamori-backup-manifest/1".into(),
        snapshot: "0".repeat(64),
        created_at: "2026-12-05T00:00:00Z".into(),
        created_ms: NOW,
        host: "clinic".into(),
        tool: "mamori".into(),
        parent: None,
        total_bytes: 3,
        locked_until: None,
        facts: serde_json::json!({"ledger": {"size": 1, "root": "00"}}),
        files: vec![mamori_backup::FileEntry {
            path: "mamori.db".into(),
            size: 3,
            mtime_ms: NOW,
            blake3: "11".repeat(32),
            chunks: vec!["22".repeat(32)],
            paged: None,
        }],
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    vec![mamori_backup::SignedManifest::sign(&m, &key).to_object()]
}

pub fn sntp() -> Vec<Vec<u8>> {
    let sent = mamori_domain::timesync::request(NOW);
    let mut reply = sent;
    reply[0] = 0x24; // version 4, mode 4 (server)
    reply[1] = 2;
    reply[24..32].copy_from_slice(&sent[40..48]);
    vec![reply.to_vec()]
}

pub fn forwarded_for() -> Vec<Vec<u8>> {
    [
        "10.0.0.0/8\n198.51.100.7",
        "10.0.0.2, fd00::/8\n6.6.6.6, 198.51.100.7, 10.1.2.3",
        "\n203.0.113.9",
        "10.0.0.2\n::ffff:198.51.100.7, unknown",
    ]
    .map(|s| s.as_bytes().to_vec())
    .to_vec()
}

/// The published JP PINT samples (tests/fixtures/jp-pint), a credit note, and a registration
/// number as a person types it.
pub fn jp_pint() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/jp-pint");
    let mut out: Vec<Vec<u8>> = ["Example1-minimum.xml", "NTA_QandA_45.xml"]
        .iter()
        .map(|n| std::fs::read(format!("{dir}/{n}")).expect("fixture"))
        .collect();
    let credit = String::from_utf8(out[1].clone())
        .expect("utf-8")
        .replace("Invoice-2", "CreditNote-2")
        .replace("<Invoice ", "<CreditNote ")
        .replace("</Invoice>", "</CreditNote>")
        .replace("InvoiceLine>", "CreditNoteLine>");
    out.push(credit.into_bytes());
    out.push("Ｔ１１８０-３０１０-１８７７１".as_bytes().to_vec());
    out
}

/// A JP_Patient and a DocumentReference as an EHR sends them.
pub fn fhir_resource() -> Vec<Vec<u8>> {
    let rep = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
    vec![
        serde_json::json!({
            "resourceType": "Patient",
            "identifier": [{ "system": "urn:oid:1.2.392.100495.20.3.51.11311234567", "value": "P1" }],
            "name": [
                { "extension": [{ "url": rep, "valueCode": "IDE" }], "family": "山田", "given": ["太郎"] },
                { "extension": [{ "url": rep, "valueCode": "SYL" }], "family": "やまだ", "given": ["たろう"] }
            ],
            "gender": "male",
            "birthDate": "1980-04-01"
        })
        .to_string()
        .into_bytes(),
        serde_json::json!({
            "resourceType": "DocumentReference",
            "masterIdentifier": { "system": "urn:ehr", "value": "D1" },
            "status": "current",
            "docStatus": "final",
            "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "referral" }] },
            "subject": { "reference": "Patient/P1" },
            "description": "紹介状",
            "content": [
                { "attachment": { "contentType": "text/plain", "data": "5pys5paH" } },
                { "attachment": { "contentType": "application/pdf", "title": "a.pdf", "data": "JVBERi0=" } }
            ]
        })
        .to_string()
        .into_bytes(),
        serde_json::json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "DocumentReference",
                        "content": [{ "attachment": { "title": "a.pdf", "url": "urn:uuid:1" } }]
                    },
                    "request": { "method": "POST", "url": "DocumentReference" }
                },
                {
                    "fullUrl": "urn:uuid:1",
                    "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0=" },
                    "request": { "method": "POST", "url": "Binary" }
                }
            ]
        })
        .to_string()
        .into_bytes(),
        serde_json::json!({
            "resourceType": "Parameters",
            "parameter": [{ "name": "referralToOrganization", "valueString": "東京第一病院" }]
        })
        .to_string()
        .into_bytes(),
        serde_json::json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" }).to_string().into_bytes(),
    ]
}

/// Client assertions: a well-formed one (signed by another key) and broken shapes.
pub fn client_assertion() -> Vec<Vec<u8>> {
    let (key, _) = mamori_fhir::smart::ClientKey::generate();
    vec![
        key.assertion("c", "https://x/token", "j", 1_800_000_000, 60)
            .into_bytes(),
        b"eyJhbGciOiJub25lIn0.eyJpc3MiOiJjIn0.".to_vec(),
        b"a.b.c".to_vec(),
    ]
}

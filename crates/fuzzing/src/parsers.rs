//! Targets over the parsers that need no instance: each takes any bytes, must not panic, and
//! checks what must hold of whatever it accepts.

use mamori_domain::content::{ALLOWED_MEDIA_TYPES, clean_file_name, sniff_media_type};
use mamori_evidence::cades;
use mamori_evidence::cert::Cert;
use mamori_evidence::cms::{EcdsaP256, Pkcs8Signer};
use mamori_evidence::ers::{self, HashAlg, HashTree};
use mamori_evidence::tsp;
use mamori_passkey::RelyingParty;

use crate::pki::{NOW, pki};

/// Uploads: the type is sniffed from the bytes, the name cleaned.
pub fn upload_type(data: &[u8]) {
    if let Some(t) = sniff_media_type(data) {
        assert!(ALLOWED_MEDIA_TYPES.contains(&t));
    }
    if let Ok(name) = clean_file_name(&String::from_utf8_lossy(data)) {
        assert!(!name.contains(['/', '\\']) && !name.chars().any(char::is_control));
        assert!(!name.is_empty() && name != "." && name != "..");
    }
}

/// The asset-ledger CSV import: whatever it accepts, its own export reads back the same.
pub fn asset_csv(data: &[u8]) {
    if let Ok(assets) = mamori_compliance::assets::parse_csv(data) {
        let again =
            mamori_compliance::assets::parse_csv(&mamori_compliance::assets::to_csv(&assets))
                .expect("an export reads back");
        assert_eq!(again, assets);
    }
}

/// A received e-invoice (JP PINT / Peppol UBL XML, the sender's file): whatever is read holds
/// what the service then relies on, the fields validate or are refused by name, and the
/// インボイス checks run on anything; a registration number typed by a person never panics.
pub fn jp_pint_invoice(data: &[u8]) {
    use mamori_domain::bookkeeping::{Direction, checks, registration, ubl};
    let _ = registration::check(
        &String::from_utf8_lossy(data),
        registration::CounterpartyKind::Corporation,
    );
    for direction in [Direction::Received, Direction::Issued] {
        if let Ok(p) = ubl::parse(data, direction) {
            let f = &p.fields;
            assert!(f.amount.is_none_or(|a| a >= 0));
            assert!(
                f.rates
                    .iter()
                    .all(|r| r.base >= 0 && r.tax.is_none_or(|t| t >= 0))
            );
            assert!(
                f.transaction_date
                    .as_deref()
                    .is_some_and(mamori_domain::date::valid)
            );
            let _ = checks(f);
            let mut g = f.clone();
            if g.validate(mamori_domain::bookkeeping::calendar::ymd(2100, 1, 1), true)
                .is_ok()
            {
                let _ = checks(&g);
            }
        }
    }
}

/// Catalogue TOML (an administrator may load their own checklist).
pub fn catalogue_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mamori_compliance::catalogue::Catalogue::parse("fuzz.toml", text);
    }
}

pub const TSP_DIGEST: [u8; 32] = [0x5a; 32];
pub const TSP_NONCE: [u8; 8] = [7; 8];

/// A TSA's response (RFC 3161): the token it carries is checked against the digest asked for.
pub fn tsp_response(data: &[u8]) {
    if let Ok(token) = tsp::token_from_response(data, &TSP_DIGEST, &TSP_NONCE) {
        let _ = tsp::peek(&token);
        let _ = tsp::is_development(&token);
        if let Ok(info) = tsp::verify_token(&token, &TSP_DIGEST, std::slice::from_ref(&pki().ca)) {
            assert!(info.gen_time > 0);
        }
    }
    let _ = tsp::peek(data);
}

/// The OCSP responder (`POST /ocsp`, unauthenticated): every request, however broken, gets a
/// DER OCSPResponse.
pub fn ocsp_request(data: &[u8]) {
    use der::Decode;
    let p = pki();
    let key = EcdsaP256::from_pkcs8(&p.ca_pkcs8).expect("the CA key");
    let out = mamori_evidence::ocsp::respond(data, &p.ca, &key, NOW, |_| {
        mamori_evidence::ocsp::Status::Good
    });
    x509_ocsp::OcspResponse::from_der(&out).expect("an OCSP response");
}

/// Certificates: imported trust anchors, client certificates, the chains inside signatures.
pub fn certificate(data: &[u8]) {
    if let Ok(c) = Cert::from_der(data) {
        let _ = (c.subject(), c.issuer(), c.serial_hex(), c.to_pem());
        let _ = (c.not_before(), c.not_after(), c.is_ca(), c.path_len());
        let _ = (
            c.may_sign_certificates(),
            c.eku_critical(),
            c.is_signed_by(&c),
        );
        let _ = mamori_evidence::cert::chain_to_anchor(
            &c,
            &[],
            std::slice::from_ref(&pki().ca),
            NOW,
            mamori_evidence::cert::Purpose::Signing,
        );
        assert_eq!(Cert::from_pem_chain(&c.to_pem()).expect("own PEM").len(), 1);
        let _ = mamori_evidence::hcrole::roles(&c);
        if let Some(h) = mamori_evidence::jpki::holder(&c) {
            let _ = (h.name.len(), h.test_card);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Cert::from_pem_chain(text);
    }
}

/// FHIR resources an EHR sends (Patient, DocumentReference): whatever the bytes, no panic; a
/// Patient taken is one mamori answers with the same facts again, and a document taken names
/// its patient, kind and title.
pub fn fhir_resource(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let ctx = mamori_fhir::Context::new("1311234567");
    if let Ok(p) = mamori_fhir::patient::from_fhir(&v, &ctx) {
        let again = mamori_fhir::patient::from_fhir(&mamori_fhir::patient::to_fhir(&p, &ctx), &ctx)
            .expect("mamori's own Patient is taken back");
        let twice =
            mamori_fhir::patient::from_fhir(&mamori_fhir::patient::to_fhir(&again, &ctx), &ctx)
                .expect("and again");
        assert_eq!(again, twice);
        assert_eq!(again.id, p.id);
    }
    if let Ok(d) = mamori_fhir::document::from_fhir(&v) {
        assert!(!d.patient_id.is_empty() && !d.kind.is_empty() && !d.title.trim().is_empty());
        assert!(d.files.iter().all(|(name, _)| !name.trim().is_empty()));
    }
    // A transaction: what it yields is a document with no Binary reference left dangling.
    if let Ok(t) = mamori_fhir::transaction::read(&v) {
        assert_eq!(t.entries.iter().filter(|e| e.is_none()).count(), 1);
        let still = t.document["content"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["attachment"]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("urn:uuid:"))
            });
        assert!(!still, "every urn:uuid reference was resolved");
    }
    if let Ok(a) = mamori_fhir::clins::parameters(&v) {
        assert!(!a.to.organization.trim().is_empty());
    }
    // A client's key: only public keys are taken.
    if mamori_fhir::smart::PublicKey::from_jwk(&v).is_ok() {
        assert!(["d", "p", "q"].iter().all(|k| v.get(k).is_none()));
    }
}

/// Client assertions (JWTs) at the token endpoint: whatever the string, no panic, and nothing
/// verifies without the fuzz key's signature.
pub fn client_assertion(data: &[u8]) {
    let Ok(jwt) = std::str::from_utf8(data) else {
        return;
    };
    let _ = mamori_fhir::smart::claimed_client(jwt);
    let key = mamori_fhir::smart::PublicKey::from_jwk(&serde_json::json!({
        "kty": "EC", "crv": "P-384",
        "x": "iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygsfE7ygsfE7ygsfE7",
        "y": "mDbwLgPPNnTTwYV7mIsJTr3QrTF6nb6Y4Pm2eCkDYZQE7ygsfE7ygsfE7ygsfE7y",
    }))
    .expect("a well-formed public key");
    assert!(
        mamori_fhir::smart::verify_assertion(jwt, &key, "c", "https://x/token", 1_800_000_000)
            .is_err(),
        "no signature verifies with a key nobody holds"
    );
}

/// HPKI qualifications (hcRole) in a certificate's subjectDirectoryAttributes: whatever the
/// bytes, no panic, and every role read has a scheme and a name.
pub fn hc_role(data: &[u8]) {
    for r in mamori_evidence::hcrole::roles_in_extension(data) {
        assert!(!r.scheme.is_empty() && !r.name.is_empty());
        let _ = (r.is_hpki(), r.label_ja());
    }
}

/// CRLs of signer CAs as the facility downloads them (PEM or DER): no panic; one the fuzz CA
/// signed is recognised as its, and says whether the fuzz signer is listed.
pub fn signer_crl(data: &[u8]) {
    let p = pki();
    if let Ok(crls) = mamori_evidence::crl::Crl::from_file_bytes(data) {
        for c in &crls {
            let _ = (c.is_signed_by(&p.ca), c.revoked_at(&p.signer.cert));
        }
        let _ = mamori_evidence::crl::status(&p.signer.cert, &crls, std::slice::from_ref(&p.ca));
    }
}

pub const P12_PASSWORD: &str = "fuzz passphrase";

/// PKCS#12 import of a signing identity (HPKI card exports).
pub fn pkcs12(data: &[u8]) {
    let Ok(store) = p12_keystore::KeyStore::from_pkcs12(data, P12_PASSWORD) else {
        return;
    };
    if let Some((_, chain)) = store.private_key_chain() {
        for c in chain.chain() {
            let _ = Cert::from_der(c.as_der());
        }
        let _ = Pkcs8Signer::from_pkcs8(chain.key());
    }
}

pub const RP_ID: &str = "clinic.example";
pub const ORIGIN: &str = "https://clinic.example";
pub const CHALLENGE: [u8; 32] = [0xc4; 32];

/// Splits `data` into parts, each preceded by its 2-byte length; the last takes the rest.
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 1..n {
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let len = len.min(tail.len());
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    out.push(rest);
    out
}

pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 < parts.len() {
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(p);
    }
    out
}

/// WebAuthn (CBOR attestation objects, COSE keys, authenticator data, client data JSON):
/// the first byte says registration (even) or assertion (odd).
pub fn webauthn(data: &[u8]) {
    let rp = RelyingParty {
        id: RP_ID.into(),
        origins: vec![ORIGIN.into()],
    };
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let p = split(rest, 2);
        if let Ok(c) = mamori_passkey::verify_registration(&rp, &CHALLENGE, p[0], p[1]) {
            assert!(!c.id.is_empty() && c.id.len() <= 1023);
            assert_eq!(c.public_key.len(), 65);
        }
    } else {
        let p = split(rest, 4);
        let _ = mamori_passkey::verify_assertion(&rp, &CHALLENGE, p[0], 0, p[1], p[2], p[3]);
    }
}

pub const SIGNED_CONTENT: &[u8] = "{\"title\":\"診療情報提供書\",\"body\":\"経過良好\"}".as_bytes();

/// CAdES signatures: an external signer's `.p7s` and every stored signature on verification.
pub fn cades_signature(data: &[u8]) {
    let p = pki();
    let _ = cades::signature_value(data);
    let _ = cades::signature_timestamp(data);
    if let Ok(info) = cades::verify_detached(
        data,
        SIGNED_CONTENT,
        std::slice::from_ref(&p.ca),
        std::slice::from_ref(&p.ca),
    ) {
        assert!(!info.signer_serial.is_empty());
    }
}

pub fn er_objects() -> [&'static [u8]; 2] {
    [b"record 1 version 1", b"signature of record 1"]
}

/// RFC 4998 evidence records, as read back on verification and from exported bundles.
pub fn evidence_record(data: &[u8]) {
    let _ = ers::decode(data);
    let _ = ers::verify(data, &er_objects(), std::slice::from_ref(&pki().ca));
}

/// A valid evidence record over [`er_objects`] and one other object.
pub fn evidence_record_seed() -> Vec<u8> {
    let alg = HashAlg::Sha256;
    let objects: [Vec<Vec<u8>>; 2] = [
        er_objects().iter().map(|o| alg.digest(o)).collect(),
        vec![alg.digest(b"another record")],
    ];
    let leaves: Vec<u8> = objects
        .iter()
        .flat_map(|m| ers::group_leaf(alg, m))
        .collect();
    let tree = HashTree::build(alg, leaves).expect("a tree");
    let token = stamp(tree.root());
    let ats = ers::archive_time_stamp(alg, tree.reduced(0, &objects[0]), &token).expect("ATS");
    ers::encode(vec![vec![ats]]).expect("encodes")
}

pub fn stamp(digest: &[u8]) -> Vec<u8> {
    let resp = pki().tsa.respond(
        &tsp::request(digest, &TSP_NONCE).expect("a request"),
        NOW,
        &[1],
    );
    tsp::token_from_response(&resp, digest, &TSP_NONCE).expect("a token")
}

/// A CAdES-B-T signature over [`SIGNED_CONTENT`].
pub fn cades_seed() -> Vec<u8> {
    let p = pki();
    let key = EcdsaP256::from_pkcs8(&p.signer.pkcs8).expect("the signer's key");
    let p7s = cades::sign_detached(
        SIGNED_CONTENT,
        &p.signer.cert,
        std::slice::from_ref(&p.ca),
        &key,
        NOW,
    )
    .expect("signs");
    let digest = mamori_evidence::sha256(&cades::signature_value(&p7s).expect("a value"));
    let resp = p.tsa.respond(
        &tsp::request(&digest, &TSP_NONCE).expect("a request"),
        NOW,
        &[2],
    );
    let token = tsp::token_from_response(&resp, &digest, &TSP_NONCE).expect("a token");
    cades::with_signature_timestamp(&p7s, &token).expect("B-T")
}

/// A backup snapshot's signed manifest, as read from a target on restore and verify.
pub fn backup_manifest(data: &[u8]) {
    if let Some(m) = mamori_backup::SignedManifest::from_object(data)
        && let Ok(manifest) = m.verified(None)
    {
        // What a verified manifest says is what was signed: its own text parses back.
        assert_eq!(
            serde_json::from_str::<mamori_backup::Manifest>(&m.manifest)
                .expect("the signed text")
                .files
                .len(),
            manifest.files.len()
        );
    }
}

/// An SNTP server's reply to the clock check.
pub fn sntp_reply(data: &[u8]) {
    let sent = mamori_domain::timesync::request(NOW);
    let _ = mamori_domain::timesync::parse_reply(data, &sent);
}

/// `X-Forwarded-For` behind `server.trusted_proxies`: the first line is the trusted list (as
/// configured), the second the header; the peer is 10.0.0.2. An untrusted peer is never
/// replaced, and a client named is one the header holds.
pub fn forwarded_for(data: &[u8]) {
    use mamori_domain::net::{client_address, parse_list};
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(2, '\n');
    let list = lines.next().unwrap_or("");
    let header = lines.next().unwrap_or("");
    let Ok(trusted) = parse_list(list) else {
        return;
    };
    let peer: std::net::IpAddr = [10, 0, 0, 2].into();
    let (client, via) = client_address(peer, &[header], &trusted);
    if !trusted.iter().any(|c| c.contains(peer)) {
        assert_eq!((client, via), (peer, None));
    }
    assert_eq!(via.is_some(), client != peer);
    if client != peer {
        assert!(
            header
                .split(',')
                .filter_map(|h| h.trim().parse::<std::net::IpAddr>().ok())
                .any(|ip| ip.to_canonical() == client),
            "{client} is not in {header:?}"
        );
    }
}

/// PDFs given to mamori's PAdES reader (a stored file changed on disk, an imported one): no
/// panic; every signature found has a byte range inside the file whose gap is exactly its
/// `/Contents`, and verification never accepts a file whose last revision nothing covers.
pub fn pades_pdf(data: &[u8]) {
    let p = pki();
    if let Ok(sigs) = mamori_pdf::signatures(data) {
        for s in &sigs {
            let [a, b, c, d] = s.byte_range;
            assert!(a == 0 && b < c && c + d <= data.len());
            assert!(data[b] == b'<' && data[c - 1] == b'>');
            assert!(s.contents.len() <= s.room);
        }
    }
    if let Ok(reports) = mamori_evidence::pades::verify(
        data,
        std::slice::from_ref(&p.ca),
        std::slice::from_ref(&p.ca),
    ) {
        assert!(reports.last().is_some_and(|r| r.covers_whole_file));
    }
}

/// A one-page PDF written by hand, and the same signed by the fuzz signer (PAdES-B-B).
pub fn pades_seeds() -> Vec<Vec<u8>> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for body in [
        "<</Type/Catalog/Pages 2 0 R>>",
        "<</Type/Pages/Kids[3 0 R]/Count 1>>",
        "<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>",
    ] {
        offsets.push(pdf.len());
        let n = offsets.len();
        pdf.extend_from_slice(format!("{n} 0 obj\n{body}\nendobj\n").as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 4\n0000000000 65535 f\r\n");
    for o in &offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<</Size 4/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    let p = pki();
    let placeholder = mamori_pdf::prepare_signature(
        &pdf,
        &mamori_pdf::SigningRequest {
            field: mamori_pdf::Field::Signature,
            signing_unix: Some(crate::pki::NOW / 1000),
            name: Some("fuzz".into()),
            reason: None,
            location: None,
            room: 4096,
        },
    )
    .expect("a placeholder");
    let key = mamori_evidence::cades::EcdsaP256::from_pkcs8(&p.signer.pkcs8).expect("the key");
    let cms = mamori_evidence::pades::sign(
        &placeholder.signed_bytes(),
        &p.signer.cert,
        std::slice::from_ref(&p.ca),
        &key,
    )
    .expect("a signature");
    let signed = mamori_pdf::with_contents(placeholder, &cms).expect("signed");
    assert!(
        mamori_evidence::pades::verify(&signed, std::slice::from_ref(&p.ca), &[]).is_ok(),
        "the seed verifies"
    );
    vec![pdf, signed]
}

//! Keys in SoftHSM2 tokens as mamori uses them: generated inside and never extractable, usable
//! only under the holder's PIN, one window at a time, signatures that verify with the public
//! key alone; imported ECDSA and RSA keys sign the same way.

use mamori_evidence::cms::RawSigner;
use mamori_token::{ErrorKind, Module};

fn module() -> std::sync::Arc<Module> {
    Module::load(&mamori_testkit::softhsm()).expect("SoftHSM2 loads")
}

fn label(tag: &str) -> String {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("t-{tag}-{hex}")
}

fn verify(
    spki: &[u8],
    alg: &'static dyn ring::signature::VerificationAlgorithm,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    // The SubjectPublicKeyInfo's BIT STRING is the key ring wants.
    let spki = x509_spki(spki);
    ring::signature::UnparsedPublicKey::new(alg, spki)
        .verify(msg, sig)
        .is_ok()
}

fn x509_spki(spki: &[u8]) -> Vec<u8> {
    // P-256: the point is the last 65 bytes.
    spki[spki.len() - 65..].to_vec()
}

#[test]
fn a_generated_key_signs_only_under_its_pin_and_never_leaves_the_token() {
    let m = module();
    let l = label("gen");
    let spki = m.create_key(&l, "pin-123456").unwrap();
    assert_eq!(spki.len(), 91, "a P-256 SubjectPublicKeyInfo");

    let e = m.open(&l, "wrong-pin").unwrap_err();
    assert_eq!(e.kind, ErrorKind::WrongPin, "{e}");
    assert!(e.message.contains("PIN"), "{e}");

    let w = m.open(&l, "pin-123456").unwrap();
    let sig = w.sign(b"statement").unwrap();
    assert!(verify(
        &spki,
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        b"statement",
        &sig
    ));
    assert!(!verify(
        &spki,
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        b"another",
        &sig
    ));

    // A second window while one is open would pass without its PIN being checked: refused.
    let e = m.open(&l, "wrong-pin").unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyOpen, "{e}");
    drop(w);

    assert!(!m.key_is_extractable(&l, "pin-123456").unwrap());
    m.change_pin(&l, "pin-123456", "pin-654321").unwrap();
    assert_eq!(
        m.open(&l, "pin-123456").unwrap_err().kind,
        ErrorKind::WrongPin
    );
    let w = m.open(&l, "pin-654321").unwrap();
    assert!(verify(
        &spki,
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        b"x",
        &w.sign(b"x").unwrap()
    ));
    drop(w);

    // No token of that name: said so.
    assert_eq!(
        m.open(&label("none"), "pin").unwrap_err().kind,
        ErrorKind::NoToken
    );
    // Labels are unique.
    assert!(m.create_key(&l, "pin-123456").is_err());
}

#[test]
fn imported_ecdsa_and_rsa_keys_sign_inside_the_token() {
    let m = module();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let l = label("ec");
    m.import_key(&l, "pin-ec-1234", &ec.serialize_der())
        .unwrap();
    let w = m.open(&l, "pin-ec-1234").unwrap();
    let sig = w.sign(b"imported").unwrap();
    let point = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        ec.public_key_raw(),
    );
    assert!(point.verify(b"imported", &sig).is_ok());
    drop(w);
    assert!(!m.key_is_extractable(&l, "pin-ec-1234").unwrap());

    // RSA (as HPKI keys are): made by OpenSSL, since ring makes no RSA keys.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.der");
    let openssl = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    };
    let k = key.to_str().unwrap();
    let pem = dir.path().join("rsa.pem");
    let p = pem.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        p,
    ]);
    openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", p, "-outform", "DER", "-out", k,
    ]);
    let public = dir.path().join("rsa.pub");
    openssl(&[
        "rsa",
        "-in",
        p,
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        public.to_str().unwrap(),
    ]);
    let l = label("rsa");
    m.import_key(&l, "pin-rsa-1234", &std::fs::read(&key).unwrap())
        .unwrap();
    let w = m.open(&l, "pin-rsa-1234").unwrap();
    assert_eq!(w.algorithm().to_string(), "1.2.840.113549.1.1.11");
    let sig = w.sign(b"rsa").unwrap();
    let pk = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        std::fs::read(&public).unwrap(),
    );
    assert!(pk.verify(b"rsa", &sig).is_ok());
    drop(w);
    assert!(!m.key_is_extractable(&l, "pin-rsa-1234").unwrap());

    let e = m
        .import_key(&label("bad"), "pin-1234", b"garbage")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Import, "{e}");
    assert!(e.message.contains("PKCS#8"), "{e}");
}

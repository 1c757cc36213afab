//! HPKI qualifications (hcRole, ISO 17090) read from certificates OpenSSL makes with the HPKI
//! certificate policy's profile (保健医療福祉分野PKI認証局 証明書ポリシ 7.1.2):
//! subjectDirectoryAttributes (2.5.29.9) holding the hcRole attribute 1.0.17090.0.1, its coded
//! data under the CP's scheme of national qualifications 1.2.392.100495.1.6.1.1 with the
//! qualification's English name — for a 医師, a 薬剤師, and a non-medical role under another
//! scheme.

use std::path::Path;
use std::process::Command;

use mamori_evidence::cert::Cert;
use mamori_evidence::hcrole::{self, HcRole};

fn sh(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {o:?}");
}

/// A certificate from a test CA whose hcRole is `name` under `scheme`.
fn hpki_cert(dir: &Path, tag: &str, scheme: &str, name: &str) -> Cert {
    std::fs::write(
        dir.join(format!("{tag}.cnf")),
        format!(
            "[ext]\nkeyUsage = critical,digitalSignature,nonRepudiation\n\
             2.5.29.9 = ASN1:SEQUENCE:sda\n\
             [sda]\nhcrole = SEQUENCE:hcrole_attr\n\
             [hcrole_attr]\ntype = OID:1.0.17090.0.1\nvalues = SETWRAP,SETWRAP,SEQUENCE:hcactor\n\
             [hcactor]\ncoded = EXPLICIT:0,SET:coded\n\
             [coded]\nscheme = EXPLICIT:0,OID:{scheme}\nfree = EXPLICIT:2,UTF8:{name}\n"
        ),
    )
    .unwrap();
    if !dir.join("ca.pem").exists() {
        sh(
            dir,
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
             -out ca.pem -subj '/CN=Test HPKI CA' -days 30 \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        );
    }
    sh(
        dir,
        &format!(
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {tag}.key \
             -out {tag}.csr -subj '/CN={tag}' && \
             openssl x509 -req -in {tag}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -out {tag}.pem -days 30 -extfile {tag}.cnf -extensions ext"
        ),
    );
    Cert::from_pem_chain(&std::fs::read_to_string(dir.join(format!("{tag}.pem"))).unwrap())
        .unwrap()
        .remove(0)
}

#[test]
fn hcrole_of_a_doctor_a_pharmacist_and_a_non_medical_role_as_openssl_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let hpki = "1.2.392.100495.1.6.1.1";
    let doctor = hpki_cert(dir.path(), "doctor", hpki, "Medical Doctor");
    let pharmacist = hpki_cert(dir.path(), "pharmacist", hpki, "Pharmacist");
    // A role outside the national qualifications (an example facility's own scheme).
    let clerk = hpki_cert(dir.path(), "clerk", "1.2.392.200999.9.1", "Medical Clerk");

    let r = hcrole::roles(&doctor);
    assert_eq!(
        r,
        vec![HcRole {
            scheme: hpki.into(),
            name: "Medical Doctor".into()
        }]
    );
    assert_eq!(r[0].label_ja(), "医師（HPKI）");
    let r = hcrole::roles(&pharmacist);
    assert_eq!(r[0].name_ja(), "薬剤師");
    assert!(r[0].is_hpki());
    let r = hcrole::roles(&clerk);
    assert_eq!(r[0].name, "Medical Clerk");
    assert!(!r[0].is_hpki() && !r[0].is_facility());
    assert_eq!(r[0].label_ja(), "Medical Clerk（HPKI 以外の体系）");

    // The facility CA's own form is the same structure, byte for byte, under its own scheme.
    let ours = hcrole::extension_value(
        der::asn1::ObjectIdentifier::new_unwrap(hpki),
        "Medical Doctor",
    );
    let ext = doctor
        .parsed
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.9")
        .unwrap();
    assert_eq!(ext.extn_value.as_bytes(), ours.as_slice());
    // A certificate without the attribute has no role.
    let plain = Cert::from_pem_chain(&std::fs::read_to_string(dir.path().join("ca.pem")).unwrap())
        .unwrap()
        .remove(0);
    assert!(hcrole::roles(&plain).is_empty());
}

//! The document and its signature structure, read back by lopdf here and by qpdf and poppler
//! as independent readers (the CMS inside is the evidence crate's, tested there).

use mamori_pdf::{Field, FontFile, Letter, SignatureKind, SigningRequest};

fn font() -> FontFile {
    FontFile {
        data: std::fs::read("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
            .expect("the tests need Noto Sans CJK: apt-get install fonts-noto-cjk"),
        index: 0,
    }
}

fn letter(body: &str) -> Letter {
    Letter {
        title: "紹介状 — 診療情報提供書".into(),
        heading: vec![
            "守りクリニック".into(),
            "患者: 山田 太郎（P01001） 生年月日 1980-04-01".into(),
            "作成者: 田中 花子（医師） 確定 2026-12-05 10:00".into(),
        ],
        body: body.into(),
        footer: "記録 12 版 1".into(),
        created_unix: 1_796_000_000,
        author: "田中 花子".into(),
        language: "ja".into(),
    }
}

fn tool(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed (poppler-utils, qpdf): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn request(field: Field) -> SigningRequest {
    SigningRequest {
        field,
        signing_unix: Some(1_796_000_100),
        name: Some("田中 花子".into()),
        reason: Some("紹介状の作成者として".into()),
        location: None,
        room: 64,
    }
}

#[test]
fn the_letter_is_pdf_a_with_its_japanese_text_and_pages() {
    let body = "紹介いたします。\n".repeat(3) + &"長い本文の行です。".repeat(400);
    let pdf = mamori_pdf::render(&letter(&body), &font()).expect("render");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("letter.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let p = path.to_str().unwrap();
    let (ok, out) = tool("qpdf", &["--check", p]);
    assert!(ok, "qpdf: {out}");
    let (ok, text) = tool("pdftotext", &["-enc", "UTF-8", p, "-"]);
    assert!(ok, "{text}");
    for want in ["紹介状", "山田 太郎", "紹介いたします。", "記録 12 版 1"] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    let (_, info) = tool("pdfinfo", &[p]);
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(pages >= 2, "{info}");
    let (_, fonts) = tool("pdffonts", &[p]);
    assert!(
        fonts.contains("yes yes"),
        "font embedded and subset: {fonts}"
    );
    assert!(
        String::from_utf8_lossy(&pdf).contains("pdfaid:part"),
        "PDF/A identification in the XMP"
    );
    assert!(
        pdf.len() < 200_000,
        "a subset, not the whole font: {}",
        pdf.len()
    );
    // The same record gives the same bytes.
    assert_eq!(pdf, mamori_pdf::render(&letter(&body), &font()).unwrap());
}

#[test]
fn a_signature_and_a_document_time_stamp_are_incremental_and_cover_what_they_say() {
    let pdf = mamori_pdf::render(&letter("本文"), &font()).unwrap();
    let p = mamori_pdf::prepare_signature(&pdf, &request(Field::Signature)).unwrap();
    assert!(
        p.pdf.starts_with(&pdf),
        "the original bytes stay as they were"
    );
    let signed = p.signed_bytes();
    // A stand-in DER value (SEQUENCE of 3 bytes): the CMS is the evidence crate's.
    let once = mamori_pdf::with_contents(p, &[0x30, 0x03, 0x02, 0x01, 0x05]).unwrap();
    let sigs = mamori_pdf::signatures(&once).unwrap();
    assert_eq!(sigs.len(), 1);
    let s = &sigs[0];
    assert_eq!(s.kind, SignatureKind::Signature);
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
    assert_eq!(s.contents, [0x30, 0x03, 0x02, 0x01, 0x05]);
    assert!(s.covers_whole_file);
    assert_eq!(s.signed_bytes(&once).collect::<Vec<_>>().concat(), signed);

    let q = mamori_pdf::prepare_signature(&once, &request(Field::DocTimeStamp)).unwrap();
    let twice = mamori_pdf::with_contents(q, &[0x30, 0x00]).unwrap();
    let sigs = mamori_pdf::signatures(&twice).unwrap();
    assert_eq!(sigs.len(), 2);
    assert!(!sigs[0].covers_whole_file && sigs[0].revision_len() == once.len());
    assert_eq!(sigs[1].kind, SignatureKind::DocTimeStamp);
    assert_eq!(sigs[1].sub_filter, "ETSI.RFC3161");
    assert!(sigs[1].covers_whole_file);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.pdf");
    std::fs::write(&path, &twice).unwrap();
    let (ok, out) = tool("qpdf", &["--check", path.to_str().unwrap()]);
    assert!(ok, "qpdf: {out}");
    let (_, out) = tool("pdfsig", &[path.to_str().unwrap()]);
    assert!(
        out.contains("Signature #1") && out.contains("Signature #2"),
        "{out}"
    );
}

#[test]
fn contents_too_large_for_the_room_or_a_moved_gap_are_refused() {
    let pdf = mamori_pdf::render(&letter("本文"), &font()).unwrap();
    let p = mamori_pdf::prepare_signature(&pdf, &request(Field::Signature)).unwrap();
    let e = mamori_pdf::with_contents(p.clone(), &[0u8; 65]).unwrap_err();
    assert_eq!(e.code(), "pdf_signature_too_large");
    let mut signed = mamori_pdf::with_contents(p.clone(), &[0x30, 0x00]).unwrap();
    // Text slipped into the gap, outside what the signature covers, is found.
    let at = p.contents_at + 10;
    signed[at] = b'x';
    assert_eq!(
        mamori_pdf::signatures(&signed).unwrap_err().code(),
        "pdf_malformed"
    );
    assert_eq!(
        mamori_pdf::signatures(b"%PDF-1.7\nnot really")
            .unwrap_err()
            .code(),
        "pdf_malformed"
    );
}

/// The letter rewritten by qpdf the way other producers write: cross-reference and object
/// streams, and (when asked) encrypted.
fn rewritten(pdf: &[u8], extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&src, pdf).unwrap();
    let mut args = vec!["--object-streams=generate"];
    args.extend_from_slice(extra);
    args.extend([src.to_str().unwrap(), dst.to_str().unwrap()]);
    let (ok, out) = tool("qpdf", &args);
    assert!(ok, "qpdf: {out}");
    std::fs::read(dst).unwrap()
}

#[test]
fn a_pdf_from_another_producer_with_object_streams_gets_its_signature_as_an_update() {
    let pdf = rewritten(&mamori_pdf::render(&letter("本文"), &font()).unwrap(), &[]);
    assert!(
        pdf.windows(8).any(|w| w == b"/ObjStm "),
        "the input uses object streams"
    );
    let p = mamori_pdf::prepare_signature(&pdf, &request(Field::Signature)).unwrap();
    let once = mamori_pdf::with_contents(p, &[0x30, 0x00]).unwrap();
    assert!(once.starts_with(&pdf));
    assert_eq!(mamori_pdf::signatures(&once).unwrap().len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.pdf");
    std::fs::write(&path, &once).unwrap();
    let (ok, out) = tool("qpdf", &["--check", path.to_str().unwrap()]);
    assert!(ok, "qpdf: {out}");
    let (_, out) = tool("pdfsig", &[path.to_str().unwrap()]);
    assert!(out.contains("Signature #1"), "{out}");
    assert_eq!(mamori_pdf::docmdp_permission(&once).unwrap(), None);
}

#[test]
fn an_encrypted_pdf_is_refused_by_name() {
    let pdf = mamori_pdf::render(&letter("本文"), &font()).unwrap();
    // Owner password only: every reader opens it, yet it is encrypted.
    let locked = rewritten(&pdf, &["--encrypt", "", "owner", "256", "--"]);
    let e = mamori_pdf::prepare_signature(&locked, &request(Field::Signature)).unwrap_err();
    assert_eq!(e.code(), "pdf_encrypted", "{e}");
    let secret = rewritten(&pdf, &["--encrypt", "user", "owner", "256", "--"]);
    let e = mamori_pdf::prepare_signature(&secret, &request(Field::Signature)).unwrap_err();
    assert!(
        ["pdf_encrypted", "pdf_malformed"].contains(&e.code()),
        "{e}"
    );
}

#[test]
fn a_certification_signature_that_allows_no_change_is_read() {
    use lopdf::{Dictionary, Object};
    let pdf = mamori_pdf::render(&letter("本文"), &font()).unwrap();
    let mut doc = lopdf::Document::load_mem(&pdf).unwrap();
    let mut params = Dictionary::new();
    params.set("Type", Object::Name(b"TransformParams".to_vec()));
    params.set("P", Object::Integer(1));
    let mut sigref = Dictionary::new();
    sigref.set("Type", Object::Name(b"SigRef".to_vec()));
    sigref.set("TransformMethod", Object::Name(b"DocMDP".to_vec()));
    sigref.set("TransformParams", Object::Dictionary(params));
    let mut sig = Dictionary::new();
    sig.set("Type", Object::Name(b"Sig".to_vec()));
    sig.set("Reference", Object::Array(vec![Object::Dictionary(sigref)]));
    let sig_id = doc.add_object(Object::Dictionary(sig));
    let mut perms = Dictionary::new();
    perms.set("DocMDP", Object::Reference(sig_id));
    doc.catalog_mut()
        .unwrap()
        .set("Perms", Object::Dictionary(perms));
    let mut certified = Vec::new();
    doc.save_to(&mut certified).unwrap();
    assert_eq!(mamori_pdf::docmdp_permission(&certified).unwrap(), Some(1));
    assert_eq!(mamori_pdf::docmdp_permission(&pdf).unwrap(), None);
}

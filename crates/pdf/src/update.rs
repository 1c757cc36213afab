//! Incremental updates (ISO 32000-1 §7.5.6): each signature, document time-stamp or set of
//! validation data is appended after the bytes already there, so every earlier signature still
//! covers exactly what it covered. lopdf reads the file; every appended byte is written here,
//! so the placeholder's offset, and with it the signed byte range, is known exactly.

use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};

use crate::{PdfError, Result, malformed};

/// What kind of signature field to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// An approval signature (`/Type /Sig`, `/SubFilter /ETSI.CAdES.detached`).
    Signature,
    /// A document time-stamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`), PAdES B-LTA.
    DocTimeStamp,
}

/// The signature dictionary's descriptive entries.
#[derive(Clone, Debug)]
pub struct SigningRequest {
    pub field: Field,
    /// `/M`: the signing time the signer claims (UTC seconds); PAdES puts it here, not in CMS.
    pub signing_unix: Option<i64>,
    pub name: Option<String>,
    pub reason: Option<String>,
    pub location: Option<String>,
    /// Bytes reserved for the CMS (or time-stamp token) in `/Contents`.
    pub room: usize,
}

impl SigningRequest {
    /// A document time-stamp (B-LTA) with `room` bytes for its token.
    pub fn doc_timestamp(room: usize) -> Self {
        Self {
            field: Field::DocTimeStamp,
            signing_unix: None,
            name: None,
            reason: None,
            location: None,
            room,
        }
    }
}

/// A file with its signature's `/Contents` still zeros.
#[derive(Clone, Debug)]
pub struct Placeholder {
    pub pdf: Vec<u8>,
    /// Offset of the `<` that opens `/Contents`.
    pub contents_at: usize,
    pub room: usize,
}

impl Placeholder {
    /// The bytes the signature covers: all of the file but the `/Contents` hex string.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let gap_end = self.contents_at + 2 * self.room + 2;
        let mut v = Vec::with_capacity(self.pdf.len());
        v.extend_from_slice(&self.pdf[..self.contents_at]);
        v.extend_from_slice(&self.pdf[gap_end..]);
        v
    }
}

/// Writes `der` into the reserved `/Contents` of `pdf` (hex, zero padded). Used both to finish
/// a fresh signature and to replace a signature's CMS with the same one plus a signature
/// time-stamp: `/Contents` is outside every byte range, so nothing signed changes.
pub fn fill_contents(pdf: &mut [u8], contents_at: usize, room: usize, der: &[u8]) -> Result<()> {
    if der.len() > room {
        return Err(PdfError::TooLarge {
            needed: der.len(),
            room,
        });
    }
    let end = contents_at + 2 * room + 1;
    if pdf.get(contents_at) != Some(&b'<') || pdf.get(end) != Some(&b'>') {
        return Err(malformed("署名の /Contents の位置が一致しません"));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in der.iter().enumerate() {
        pdf[contents_at + 1 + 2 * i] = HEX[(b >> 4) as usize];
        pdf[contents_at + 2 + 2 * i] = HEX[(b & 15) as usize];
    }
    for p in &mut pdf[contents_at + 1 + 2 * der.len()..end] {
        *p = b'0';
    }
    Ok(())
}

/// The finished file of `p` with `der` as its signature.
pub fn with_contents(mut p: Placeholder, der: &[u8]) -> Result<Vec<u8>> {
    fill_contents(&mut p.pdf, p.contents_at, p.room, der)?;
    Ok(p.pdf)
}

pub(crate) fn load(pdf: &[u8]) -> Result<Document> {
    let doc = Document::load_mem(pdf).map_err(malformed)?;
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err(PdfError::Encrypted);
    }
    Ok(doc)
}

/// The offset the last `startxref` names.
fn last_startxref(pdf: &[u8]) -> Result<usize> {
    let tail_from = pdf.len().saturating_sub(1024);
    let tail = &pdf[tail_from..];
    let at = tail
        .windows(9)
        .rposition(|w| w == b"startxref")
        .ok_or_else(|| malformed("startxref がありません"))?;
    let digits: String = tail[at + 9..]
        .iter()
        .map(|&b| b as char)
        .skip_while(|c| c.is_ascii_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .map_err(|_| malformed("startxref の値が読めません"))
}

/// The document catalog's id and a copy of it to change.
fn catalog(doc: &Document) -> Result<(ObjectId, Dictionary)> {
    let root_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| malformed("文書カタログがありません"))?;
    let catalog = doc
        .get_dictionary(root_id)
        .map_err(|_| malformed("文書カタログが読めません"))?
        .clone();
    Ok((root_id, catalog))
}

/// The first object number no revision uses.
fn next_free_id(doc: &Document) -> u32 {
    doc.trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .unwrap_or(0)
        .max(i64::from(doc.max_id) + 1) as u32
}

fn resolve<'a>(doc: &'a Document, o: &'a Object) -> Result<&'a Object> {
    doc.dereference(o).map(|(_, o)| o).map_err(malformed)
}

/// Appends a signature field whose `/Contents` is `room` zero bytes; the caller signs
/// [`Placeholder::signed_bytes`] and finishes with [`with_contents`].
pub fn prepare_signature(pdf: &[u8], req: &SigningRequest) -> Result<Placeholder> {
    let doc = load(pdf)?;
    let (root_id, mut catalog) = catalog(&doc)?;
    let (&_, &page_id) = doc
        .get_pages()
        .iter()
        .next()
        .ok_or_else(|| malformed("ページがありません"))?;
    let mut page = doc.get_dictionary(page_id).map_err(malformed)?.clone();

    let size = next_free_id(&doc);
    let field_id: ObjectId = (size, 0);
    let sig_id: ObjectId = (size + 1, 0);
    let mut next = size + 2;
    let mut objects: Vec<(ObjectId, Vec<u8>)> = Vec::new();

    // The form: an existing one gains the field; otherwise a new one is made.
    let existing = catalog.get(b"AcroForm").ok().cloned();
    let (mut form, form_id) = match &existing {
        Some(Object::Reference(id)) => (doc.get_dictionary(*id).map_err(malformed)?.clone(), *id),
        Some(Object::Dictionary(d)) => {
            let id = (next, 0);
            next += 1;
            (d.clone(), id)
        }
        _ => {
            let id = (next, 0);
            next += 1;
            (Dictionary::new(), id)
        }
    };
    let mut fields = match form.get(b"Fields") {
        Ok(o) => resolve(&doc, o)?
            .as_array()
            .map_err(|_| malformed("/Fields が配列ではありません"))?
            .clone(),
        Err(_) => Vec::new(),
    };
    let ordinal = fields.len() + 1;
    fields.push(Object::Reference(field_id));
    form.set("Fields", Object::Array(fields));
    form.set("SigFlags", Object::Integer(3));
    catalog.set("AcroForm", Object::Reference(form_id));

    let mut annots = match page.get(b"Annots") {
        Ok(o) => resolve(&doc, o)?
            .as_array()
            .map_err(|_| malformed("/Annots が配列ではありません"))?
            .clone(),
        Err(_) => Vec::new(),
    };
    annots.push(Object::Reference(field_id));
    page.set("Annots", Object::Array(annots));

    let field_name = match req.field {
        Field::Signature => format!("Signature{ordinal}"),
        Field::DocTimeStamp => format!("DocTimeStamp{ordinal}"),
    };
    let mut field = Dictionary::new();
    field.set("Type", Object::Name(b"Annot".to_vec()));
    field.set("Subtype", Object::Name(b"Widget".to_vec()));
    field.set("FT", Object::Name(b"Sig".to_vec()));
    field.set(
        "T",
        Object::String(field_name.into_bytes(), StringFormat::Literal),
    );
    field.set("V", Object::Reference(sig_id));
    // Invisible (zero area), printed and locked: PDF/A asks no appearance of such a widget.
    field.set("F", Object::Integer(132));
    field.set(
        "Rect",
        Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
    );
    field.set("P", Object::Reference(page_id));

    let (sig_dict, at) = signature_dict(req);
    objects.push((root_id, serialize_dict(&catalog)));
    objects.push((page_id, serialize_dict(&page)));
    objects.push((form_id, serialize_dict(&form)));
    objects.push((field_id, serialize_dict(&field)));
    objects.push((sig_id, sig_dict));
    let new_size = next.max(sig_id.0 + 1);
    let (mut out, bodies) = write_update(pdf, &doc, root_id, &objects, new_size)?;
    let contents_at = bodies[4] + at;

    // The byte range is known now; it is written into the space kept for it, padded.
    let gap_end = contents_at + 2 * req.room + 2;
    let range = format!("[0 {} {} {}]", contents_at, gap_end, out.len() - gap_end);
    let slot = pdf.len()
        + out[pdf.len()..]
            .windows(BYTE_RANGE_SLOT.len())
            .position(|w| w == BYTE_RANGE_SLOT)
            .ok_or_else(|| malformed("ByteRange の場所がありません"))?;
    if range.len() > BYTE_RANGE_SLOT.len() {
        return Err(malformed("ByteRange が長すぎます"));
    }
    let mut filled = range.into_bytes();
    filled.resize(BYTE_RANGE_SLOT.len(), b' ');
    out[slot..slot + filled.len()].copy_from_slice(&filled);
    Ok(Placeholder {
        pdf: out,
        contents_at,
        room: req.room,
    })
}

/// Appends `objects` (id, serialised body) as one incremental update with its cross-reference
/// section and trailer; returns the file and where each object's body starts.
fn write_update(
    pdf: &[u8],
    doc: &Document,
    root_id: ObjectId,
    objects: &[(ObjectId, Vec<u8>)],
    size: u32,
) -> Result<(Vec<u8>, Vec<usize>)> {
    let prev = last_startxref(pdf)?;
    let mut out = pdf.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets = Vec::new();
    let mut bodies = Vec::new();
    for (id, body) in objects {
        offsets.push((id.0, out.len()));
        out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
        bodies.push(out.len());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    offsets.sort();
    out.extend_from_slice(b"xref\n");
    for (id, at) in &offsets {
        out.extend_from_slice(format!("{id} 1\n{at:010} 00000 n\r\n").as_bytes());
    }
    let mut trailer = Dictionary::new();
    trailer.set("Size", Object::Integer(i64::from(size)));
    trailer.set("Root", Object::Reference(root_id));
    trailer.set("Prev", Object::Integer(prev as i64));
    for key in [b"Info".as_slice(), b"ID"] {
        if let Ok(v) = doc.trailer.get(key) {
            trailer.set(key, v.clone());
        }
    }
    out.extend_from_slice(b"trailer\n");
    out.extend_from_slice(&serialize_dict(&trailer));
    out.extend_from_slice(format!("\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    Ok((out, bodies))
}

/// Validation data for the Document Security Store (PAdES B-LT): DER certificates, CRLs and
/// OCSP responses.
#[derive(Clone, Debug, Default)]
pub struct Dss {
    pub certs: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub ocsps: Vec<Vec<u8>>,
}

/// Adds `dss` to the file's Document Security Store in an incremental update: values already
/// there are kept and not repeated.
pub fn append_dss(pdf: &[u8], dss: &Dss) -> Result<Vec<u8>> {
    let doc = load(pdf)?;
    let (root_id, mut catalog) = catalog(&doc)?;
    let mut next = next_free_id(&doc);
    let mut store = match catalog.get(b"DSS") {
        Ok(o) => match resolve(&doc, o)? {
            Object::Dictionary(d) => d.clone(),
            _ => return Err(malformed("/DSS が辞書ではありません")),
        },
        Err(_) => Dictionary::new(),
    };
    let mut objects = Vec::new();
    for (key, values) in [
        (b"Certs".as_slice(), &dss.certs),
        (b"CRLs", &dss.crls),
        (b"OCSPs", &dss.ocsps),
    ] {
        let mut refs = match store.get(key) {
            Ok(o) => resolve(&doc, o)?
                .as_array()
                .map_err(|_| malformed("/DSS の値が配列ではありません"))?
                .clone(),
            Err(_) => Vec::new(),
        };
        let have: Vec<Vec<u8>> = refs
            .iter()
            .filter_map(|r| match resolve(&doc, r) {
                Ok(Object::Stream(s)) => {
                    Some(s.decompressed_content().unwrap_or(s.content.clone()))
                }
                _ => None,
            })
            .collect();
        for v in values {
            if have.contains(v) {
                continue;
            }
            let id = (next, 0);
            next += 1;
            let mut body = format!("<</Length {}>>\nstream\n", v.len()).into_bytes();
            body.extend_from_slice(v);
            body.extend_from_slice(b"\nendstream");
            objects.push((id, body));
            refs.push(Object::Reference(id));
        }
        if !refs.is_empty() {
            store.set(key, Object::Array(refs));
        }
    }
    if objects.is_empty() {
        return Ok(pdf.to_vec());
    }
    let dss_id = (next, 0);
    next += 1;
    objects.push((dss_id, serialize_dict(&store)));
    catalog.set("DSS", Object::Reference(dss_id));
    objects.push((root_id, serialize_dict(&catalog)));
    Ok(write_update(pdf, &doc, root_id, &objects, next)?.0)
}

/// Space for `[0 a b c]` with three ten-digit numbers.
const BYTE_RANGE_SLOT: &[u8] = b"[0 ********** ********** **********]";

/// The signature dictionary, and the offset in it of `/Contents`' `<`.
fn signature_dict(req: &SigningRequest) -> (Vec<u8>, usize) {
    let mut d = Vec::new();
    d.extend_from_slice(b"<<");
    match req.field {
        Field::Signature => d.extend_from_slice(
            b"/Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached",
        ),
        Field::DocTimeStamp => d.extend_from_slice(
            b"/Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161",
        ),
    }
    if let Some(t) = req.signing_unix {
        d.extend_from_slice(b" /M ");
        write_string(&pdf_date(t).into_bytes(), &mut d);
    }
    for (key, v) in [
        (b"/Name ".as_slice(), &req.name),
        (b"/Reason ", &req.reason),
        (b"/Location ", &req.location),
    ] {
        if let Some(v) = v {
            d.extend_from_slice(key);
            write_string(&text_string(v), &mut d);
        }
    }
    d.extend_from_slice(b" /ByteRange ");
    d.extend_from_slice(BYTE_RANGE_SLOT);
    d.extend_from_slice(b" /Contents ");
    let at = d.len();
    d.push(b'<');
    d.resize(d.len() + 2 * req.room, b'0');
    d.push(b'>');
    d.extend_from_slice(b">>");
    (d, at)
}

/// `D:YYYYMMDDHHmmSSZ` (PDF date, UTC).
pub(crate) fn pdf_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A PDF text string: PDFDocEncoding is ASCII here; anything else is UTF-16BE with its BOM.
fn text_string(s: &str) -> Vec<u8> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.as_bytes().to_vec();
    }
    let mut v = vec![0xfe, 0xff];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_be_bytes());
    }
    v
}

fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'(');
    for &b in bytes {
        match b {
            b'(' | b')' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out.push(b')');
}

fn write_name(name: &[u8], out: &mut Vec<u8>) {
    out.push(b'/');
    for &b in name {
        if b.is_ascii_graphic() && !b"()<>[]{}/%#".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
}

fn serialize_dict(d: &Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&Object::Dictionary(d.clone()), &mut out);
    out
}

/// PDF syntax for the objects an update rewrites (catalog, page, form, field, trailer):
/// streams are never rewritten, so they are refused rather than written half.
pub(crate) fn write_object(o: &Object, out: &mut Vec<u8>) {
    match o {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Object::Real(r) => {
            let s = format!("{r:.5}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            out.extend_from_slice(if s.is_empty() || s == "-" { "0" } else { s }.as_bytes());
        }
        Object::Name(n) => write_name(n, out),
        Object::String(s, StringFormat::Literal) => write_string(s, out),
        Object::String(s, StringFormat::Hexadecimal) => {
            out.push(b'<');
            for b in s {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            out.push(b'>');
        }
        Object::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_object(x, out);
            }
            out.push(b']');
        }
        Object::Dictionary(d) => {
            out.extend_from_slice(b"<<");
            for (k, v) in d.iter() {
                write_name(k, out);
                out.push(b' ');
                write_object(v, out);
            }
            out.extend_from_slice(b">>");
        }
        // A stream never sits inside a dictionary; only a reference to it does.
        Object::Stream(_) => out.extend_from_slice(b"null"),
        Object::Reference((n, g)) => out.extend_from_slice(format!("{n} {g} R").as_bytes()),
    }
}

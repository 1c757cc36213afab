//! What a PDF's signatures cover. Every signature field's byte range is checked against the
//! file itself: it starts at 0, its one gap is exactly the `/Contents` hex string and nothing
//! else, and the CMS is read from that gap (not from a parser's idea of the string), so a file
//! that shows one thing and signs another is refused here.

use lopdf::{Document, Object};

use crate::update::load;
use crate::{Result, malformed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    /// `/Type /Sig` (or none), a signer's signature.
    Signature,
    /// `/Type /DocTimeStamp`: an RFC 3161 token over the range (PAdES B-LTA).
    DocTimeStamp,
}

#[derive(Clone, Debug)]
pub struct PdfSignature {
    pub kind: SignatureKind,
    pub field_name: String,
    pub sub_filter: String,
    /// `[a, b, c, d]` as in the file.
    pub byte_range: [usize; 4],
    /// The DER in `/Contents`, without its zero padding.
    pub contents: Vec<u8>,
    /// Offset of `<` and the reserved size, for replacing the CMS in place.
    pub contents_at: usize,
    pub room: usize,
    /// Whether the range ends at the end of the file (nothing was appended after signing).
    pub covers_whole_file: bool,
    /// `/M`, as written.
    pub claimed_time: Option<String>,
}

impl PdfSignature {
    /// The bytes the signature covers.
    pub fn signed_bytes<'a>(&self, pdf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        let [a, b, c, d] = self.byte_range;
        [&pdf[a..a + b], &pdf[c..c + d]].into_iter()
    }

    /// The length of the revision it signs (the file as it was when signed).
    pub fn revision_len(&self) -> usize {
        self.byte_range[2] + self.byte_range[3]
    }
}

fn text(o: &Object) -> Option<String> {
    match o {
        Object::String(s, _) => Some(if s.starts_with(&[0xfe, 0xff]) {
            let u: Vec<u16> = s[2..]
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&u)
        } else {
            String::from_utf8_lossy(s).into_owned()
        }),
        Object::Name(n) => Some(String::from_utf8_lossy(n).into_owned()),
        _ => None,
    }
}

/// The length of one DER value at the start of `der` (tag, length, contents).
fn der_len(der: &[u8]) -> Option<usize> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Some(2 + n + len)
}

fn collect_fields(doc: &Document, o: &Object, out: &mut Vec<lopdf::Dictionary>, depth: u8) {
    if depth > 8 {
        return;
    }
    let Ok((_, o)) = doc.dereference(o) else {
        return;
    };
    match o {
        Object::Array(items) => {
            for i in items {
                collect_fields(doc, i, out, depth + 1);
            }
        }
        Object::Dictionary(d) => {
            if let Ok(kids) = d.get(b"Kids") {
                collect_fields(doc, kids, out, depth + 1);
            }
            if matches!(d.get(b"FT"), Ok(Object::Name(n)) if n == b"Sig") {
                out.push(d.clone());
            }
        }
        _ => {}
    }
}

/// The signatures and document time-stamps of `pdf`, oldest (shortest range) first.
pub fn signatures(pdf: &[u8]) -> Result<Vec<PdfSignature>> {
    let doc = load(pdf)?;
    let Ok(root) = doc.catalog() else {
        return Err(malformed("文書カタログがありません"));
    };
    let mut fields = Vec::new();
    if let Ok(form) = root.get(b"AcroForm")
        && let Ok((_, Object::Dictionary(form))) = doc.dereference(form)
        && let Ok(f) = form.get(b"Fields")
    {
        collect_fields(&doc, f, &mut fields, 0);
    }
    let mut out = Vec::new();
    for f in fields {
        // An empty field is a place for a signature still to come; a value that cannot be
        // read is a damaged signature, never "no signature".
        let Ok(v) = f.get(b"V") else { continue };
        let Ok((_, Object::Dictionary(v))) = doc.dereference(v) else {
            return Err(malformed("署名辞書が読めません"));
        };
        let kind = match v.get(b"Type").ok().and_then(text).as_deref() {
            Some("DocTimeStamp") => SignatureKind::DocTimeStamp,
            _ => SignatureKind::Signature,
        };
        let range: Vec<i64> = v
            .get(b"ByteRange")
            .and_then(Object::as_array)
            .map_err(|_| malformed("ByteRange がありません"))?
            .iter()
            .map(|o| o.as_i64().unwrap_or(-1))
            .collect();
        let [a, b, c, d] = range[..] else {
            return Err(malformed("ByteRange は 4 つの数です"));
        };
        if a != 0 || b <= 0 || c <= b || d < 0 {
            return Err(malformed("ByteRange が文書の先頭から始まっていません"));
        }
        let (b, c, d) = (b as usize, c as usize, d as usize);
        if c + d > pdf.len() || pdf[b] != b'<' || pdf[c - 1] != b'>' {
            return Err(malformed(
                "ByteRange の隙間が署名値 (/Contents) と一致しません",
            ));
        }
        let hex = &pdf[b + 1..c - 1];
        if !hex.len().is_multiple_of(2) || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(malformed("ByteRange の隙間に署名値以外のものがあります"));
        }
        let raw: Vec<u8> = hex
            .chunks_exact(2)
            .map(|p| {
                let s = std::str::from_utf8(p).unwrap_or("00");
                u8::from_str_radix(s, 16).unwrap_or(0)
            })
            .collect();
        let parsed = match v.get(b"Contents") {
            Ok(Object::String(s, _)) => s.clone(),
            _ => return Err(malformed("/Contents がありません")),
        };
        if parsed != raw {
            return Err(malformed(
                "署名辞書の /Contents が ByteRange の隙間にありません",
            ));
        }
        let len = der_len(&raw)
            .filter(|&n| n <= raw.len())
            .ok_or_else(|| malformed("/Contents が DER ではありません"))?;
        out.push(PdfSignature {
            kind,
            field_name: f.get(b"T").ok().and_then(text).unwrap_or_default(),
            sub_filter: v.get(b"SubFilter").ok().and_then(text).unwrap_or_default(),
            byte_range: [0, b, c, d],
            contents: raw[..len].to_vec(),
            contents_at: b,
            room: raw.len(),
            covers_whole_file: c + d == pdf.len(),
            claimed_time: v.get(b"M").ok().and_then(text),
        });
    }
    out.sort_by_key(PdfSignature::revision_len);
    Ok(out)
}

/// The change permission a certification signature (DocMDP, ISO 32000-1 12.8.2.2) puts on the
/// document, if it has one: 1 allows no change at all (not even another signature), 2 form
/// filling and signatures, 3 also annotations.
pub fn docmdp_permission(pdf: &[u8]) -> Result<Option<i64>> {
    let doc = load(pdf)?;
    let Ok(root) = doc.catalog() else {
        return Err(malformed("文書カタログがありません"));
    };
    let Ok(perms) = root.get(b"Perms") else {
        return Ok(None);
    };
    let Ok((_, Object::Dictionary(perms))) = doc.dereference(perms) else {
        return Err(malformed("/Perms が読めません"));
    };
    let Ok(sig) = perms.get(b"DocMDP") else {
        return Ok(None);
    };
    let Ok((_, Object::Dictionary(sig))) = doc.dereference(sig) else {
        return Err(malformed("DocMDP の署名辞書が読めません"));
    };
    let refs = match sig.get(b"Reference").map(|r| doc.dereference(r)) {
        Ok(Ok((_, Object::Array(a)))) => a.clone(),
        // A certification signature without its transform parameters means the default, 2.
        _ => return Ok(Some(2)),
    };
    for r in &refs {
        let Ok((_, Object::Dictionary(r))) = doc.dereference(r) else {
            continue;
        };
        if r.get(b"TransformMethod").ok().and_then(text).as_deref() != Some("DocMDP") {
            continue;
        }
        let p = match r.get(b"TransformParams").map(|t| doc.dereference(t)) {
            Ok(Ok((_, Object::Dictionary(t)))) => t.get(b"P").and_then(Object::as_i64).ok(),
            _ => None,
        };
        return Ok(Some(p.unwrap_or(2)));
    }
    Ok(Some(2))
}

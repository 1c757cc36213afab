//! Japanese first, English selectable (cookie `mamori_lang=en`). Every label the UI shows
//! comes from `messages/ja.toml` and `messages/en.toml` (one file per language, for
//! translators), loaded once; the tests check both files have the same keys and every key
//! the templates and handlers name.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// The messages as translators edit them: one TOML file per language, same keys in both.
const JA: &str = include_str!("../messages/ja.toml");
const EN: &str = include_str!("../messages/en.toml");

struct Messages {
    ja: HashMap<String, String>,
    en: HashMap<String, String>,
}

fn parse(file: &str, text: &str) -> HashMap<String, String> {
    // Shipped inside the binary and checked by the tests below: a broken file is a build
    // mistake, not something a running server could recover from.
    toml::from_str(text).unwrap_or_else(|e| panic!("messages/{file}: {e}"))
}

fn messages() -> &'static Messages {
    static M: OnceLock<Messages> = OnceLock::new();
    M.get_or_init(|| Messages {
        ja: parse("ja.toml", JA),
        en: parse("en.toml", EN),
    })
}

/// The label `key` in `lang`; "?" for a key no file has (the tests keep that from happening).
pub fn t(lang: Lang, key: &str) -> &'static str {
    lookup(lang, key).unwrap_or("?")
}

/// The label `key` in `lang`, if the files have it.
pub fn lookup(lang: Lang, key: &str) -> Option<&'static str> {
    let m = messages();
    let table = if lang == Lang::En { &m.en } else { &m.ja };
    table.get(key).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_translated() {
        // Each file parses, and a key is never given twice in one file (TOML refuses that).
        let m = messages();
        let mut ja: Vec<_> = m.ja.keys().collect();
        let mut en: Vec<_> = m.en.keys().collect();
        ja.sort_unstable();
        en.sort_unstable();
        assert_eq!(ja, en, "ja.toml and en.toml must have the same keys");
        for (k, v) in m.ja.iter().chain(m.en.iter()) {
            assert!(!v.trim().is_empty(), "{k}");
        }
        assert!(ja.len() > 500, "{} messages", ja.len());
        assert_eq!(t(Lang::Ja, "login.title"), "ログイン");
        assert_eq!(t(Lang::En, "no.such.key"), "?");
        assert_eq!(t(Lang::En, "login.title"), "Sign in");
    }

    fn has(key: &str) -> bool {
        messages().ja.contains_key(key)
    }

    /// Every key the templates and handlers name is in the table (a missing one shows "?").
    #[test]
    fn every_key_in_use_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        let mut dirs = vec![root.join("templates"), root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    sources.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut checked = 0;
        for (path, text) in &sources {
            for pattern in ["t.get(\"", "t(lang, \"", "msg(\"", "t(lang_of(headers), \""] {
                for part in text.split(pattern).skip(1) {
                    let key = &part[..part.find('"').unwrap()];
                    assert!(has(key), "{}: no message '{key}'", path.display());
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 150,
            "only {checked} keys found: is the scan still right?"
        );
        for s in [
            "draft",
            "pending_approval",
            "finalised",
            "amended",
            "entered_in_error",
        ] {
            assert!(has(&format!("status.{s}")), "status.{s}");
        }
        for a in ["finalise", "submit", "approve"] {
            assert!(has(&format!("act.{a}")), "act.{a}");
        }
    }
}

/// An error as the person reading the page needs it: the service's Japanese message as is,
/// or in English a sentence for the error's code followed by the original in brackets (the
/// detail — which field, which limit — is in the service's words).
/// An error for people: the specific (Japanese) message; in English the code's meaning
/// first, with that message beside it.
pub fn error_text(lang: Lang, code: mamori_service::ErrorCode, message: &str) -> String {
    if lang == Lang::Ja {
        return message.to_owned();
    }
    format!("{} ({message})", code.en())
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use mamori_service::ErrorCode;

    #[test]
    fn errors_keep_the_detail_in_english() {
        assert_eq!(
            error_text(Lang::Ja, ErrorCode::Forbidden, "権限がありません"),
            "権限がありません"
        );
        assert_eq!(
            error_text(Lang::En, ErrorCode::Forbidden, "権限がありません"),
            "Your role does not allow this. (権限がありません)"
        );
    }
}

//! Japanese first, English selectable (cookie `mamori_lang=en`). Every label the UI shows
//! comes from this table, so a missing translation is a compile-time-visible gap here.

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

const MESSAGES: &[(&str, &str, &str)] = &[
    ("app", "mamori（守り）", "mamori"),
    ("login.title", "ログイン", "Sign in"),
    ("login.id", "ログインID", "Login ID"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Sign in"),
    (
        "login.help",
        "パスワードを忘れた場合やロックされた場合は、システム管理者に連絡してください。",
        "If you forgot your password or your account is locked, ask your system administrator.",
    ),
    ("password.title", "パスワードの変更", "Change password"),
    (
        "password.lead",
        "初回ログイン時、またはパスワードの再設定後は、新しいパスワードを設定してください。",
        "Set a new password after your first sign-in or after a reset.",
    ),
    ("password.old", "現在のパスワード", "Current password"),
    ("password.new", "新しいパスワード", "New password"),
    (
        "password.confirm",
        "新しいパスワード（確認）",
        "New password (again)",
    ),
    ("password.submit", "変更してログイン", "Change and sign in"),
    (
        "password.mismatch",
        "確認用のパスワードが一致しません",
        "The two new passwords differ",
    ),
    ("nav.home", "ホーム", "Home"),
    ("nav.logout", "ログアウト", "Sign out"),
    ("nav.lang", "English", "日本語"),
    ("home.search", "患者検索", "Find a patient"),
    ("home.q", "患者ID またはフリガナ", "Patient ID or kana"),
    ("home.search_button", "検索", "Search"),
    (
        "home.pending",
        "承認待ちの代行入力",
        "Proxy entries awaiting your approval",
    ),
    (
        "home.no_pending",
        "承認待ちの代行入力はありません。",
        "Nothing awaits your approval.",
    ),
    ("patients.results", "検索結果", "Results"),
    (
        "patients.none",
        "該当する患者はいません。",
        "No patient matches.",
    ),
    ("patient.id", "患者ID", "Patient ID"),
    ("patient.name", "氏名", "Name"),
    ("patient.kana", "フリガナ", "Kana"),
    ("patient.birth", "生年月日", "Date of birth"),
    ("patient.sex", "性別", "Sex"),
    ("patient.records", "記録一覧", "Records"),
    (
        "patient.no_records",
        "閲覧できる記録はありません。",
        "No records you may read.",
    ),
    ("record.kind", "種別", "Kind"),
    ("record.title", "表題", "Title"),
    ("record.status", "状態", "Status"),
    ("record.author", "責任者", "Author"),
    ("record.enterer", "入力者", "Entered by"),
    ("record.updated", "更新日時", "Updated"),
    ("record.version", "版", "Version"),
    ("record.finalised_at", "確定日時", "Finalised"),
    ("record.created_at", "作成日時", "Created"),
    ("record.reason", "理由", "Reason"),
    ("record.proxy", "代行入力", "Proxy entry"),
    ("record.ledger", "台帳の位置", "Ledger position"),
    ("record.attachments", "添付ファイル", "Attachments"),
    ("record.history", "更新履歴", "History"),
    ("record.rejected", "差し戻し理由", "Returned because"),
    ("error.title", "エラー", "Error"),
    ("error.back", "戻る", "Back"),
];

pub fn t(lang: Lang, key: &str) -> &'static str {
    MESSAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, ja, en)| if lang == Lang::En { *en } else { *ja })
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_translated() {
        let mut keys: Vec<_> = MESSAGES.iter().map(|m| m.0).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate message key");
        for (k, ja, en) in MESSAGES {
            assert!(!ja.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(t(Lang::Ja, "login.title"), "ログイン");
        assert_eq!(t(Lang::En, "login.title"), "Sign in");
    }
}

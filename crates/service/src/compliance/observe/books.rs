//! The 電子帳簿保存法 / インボイス observations: what the transaction documents themselves show
//! about 真実性 (versions proven by the ledger, time-stamps in time), 可視性 (the three search
//! fields), retention settings and the インボイス checks. No documents: nothing to observe (a
//! person answers), never a はい about nothing.

use mamori_domain::bookkeeping::calendar::{self, jst_day};
use mamori_domain::bookkeeping::{self, DocumentFields};

use super::{Facts, verification_problem};
use mamori_compliance::Observation;

fn active<'f>(f: &'f Facts<'_>) -> impl Iterator<Item = &'f mamori_store::TxFact> {
    f.transactions.iter().filter(|d| d.status == "active")
}

fn ids(list: &[i64]) -> String {
    let shown: Vec<String> = list.iter().take(10).map(|i| format!("#{i}")).collect();
    if list.len() > 10 {
        format!("{} ほか", shown.join("、"))
    } else {
        shown.join("、")
    }
}

pub(super) fn history(f: &Facts<'_>) -> Option<Observation> {
    if f.transactions.is_empty() {
        return None;
    }
    let corrected = f
        .transactions
        .iter()
        .filter(|d| d.current_version > 1 && d.status == "active")
        .count();
    let cancelled = f
        .transactions
        .iter()
        .filter(|d| d.status == "cancelled")
        .count();
    Some(match verification_problem(f) {
        Some(problem) => Observation::new(
            false,
            format!("取引書類の履歴を台帳で確かめられません: {problem}"),
            "The ledger does not currently vouch for the documents' history",
            f.now,
        ),
        None => Observation::new(
            true,
            format!(
                "取引書類 {} 件。訂正 {corrected} 件・取消 {cancelled} 件を含め、すべての版が理由とともに残り、削除の機能はない。版と台帳の一致を検証済み",
                f.transactions.len()
            ),
            "Every version kept with its reason, none deletable; the ledger verified",
            f.now,
        ),
    })
}

pub(super) fn timestamps(f: &Facts<'_>) -> Option<Observation> {
    let docs: Vec<&mamori_store::TxFact> = active(f).collect();
    if docs.is_empty() {
        return None;
    }
    let today = jst_day(f.now);
    let (mut waiting, mut development, mut late) = (Vec::new(), Vec::new(), Vec::new());
    let mut not_accredited = Vec::new();
    for d in &docs {
        let due = d.stamp_due.as_deref().and_then(calendar::parse);
        match (d.stamp_gen_time, due) {
            (None, _) => waiting.push(d.id),
            (Some(t), Some(due)) if jst_day(t) > due => late.push(d.id),
            _ => {}
        }
        if d.stamp_development == Some(true) {
            development.push(d.id);
        } else if let Some(token) = &d.stamp_token
            && !f.accredited.is_empty()
            && !f.accredited.accepts(token)
        {
            not_accredited.push(d.id);
        }
        if d.stamp_gen_time.is_none() && due.is_some_and(|due| today > due) {
            late.push(d.id);
        }
    }
    late.sort_unstable();
    late.dedup();
    if waiting.is_empty() && development.is_empty() && late.is_empty() && not_accredited.is_empty()
    {
        if f.accredited.is_empty() {
            return Some(
                Observation::new(
                    true,
                    format!(
                        "取引書類 {} 件すべてに、設定されたタイムスタンプ局（開発用ではない）のタイムスタンプが期限内に付いている",
                        docs.len()
                    ),
                    "Every document time-stamped in time by the configured (non-development) TSA",
                    f.now,
                )
                .partly("そのタイムスタンプ局が総務大臣認定か（evidence.accredited_tsa_certs に認定TSAの証明書が設定されていない）"),
            );
        }
        return Some(Observation::new(
            true,
            format!(
                "取引書類 {} 件すべてに、総務大臣認定として設定されたタイムスタンプ局（evidence.accredited_tsa_certs）のタイムスタンプが期限内に付いている",
                docs.len()
            ),
            "Every document time-stamped in time by a TSA named accredited",
            f.now,
        ));
    }
    let mut why = Vec::new();
    if !waiting.is_empty() {
        why.push(format!(
            "付与待ち {} 件（{}）",
            waiting.len(),
            ids(&waiting)
        ));
    }
    if !late.is_empty() {
        why.push(format!("期限超過 {} 件（{}）", late.len(), ids(&late)));
    }
    if !development.is_empty() {
        why.push(format!(
            "開発用TSA（法的効力なし）{} 件。総務大臣認定のタイムスタンプ局を設定してください",
            development.len()
        ));
    }
    if !not_accredited.is_empty() {
        why.push(format!(
            "総務大臣認定として設定されたもの以外のタイムスタンプ局 {} 件（{}）",
            not_accredited.len(),
            ids(&not_accredited)
        ));
    }
    Some(Observation::new(
        false,
        format!("取引書類 {} 件のうち: {}", docs.len(), why.join("。")),
        "Some documents lack an accredited time-stamp in time",
        f.now,
    ))
}

pub(super) fn search(f: &Facts<'_>) -> Option<Observation> {
    let docs: Vec<&mamori_store::TxFact> = active(f).collect();
    if docs.is_empty() {
        return None;
    }
    let missing: Vec<i64> = docs
        .iter()
        .filter(|d| d.transaction_date.is_none() || d.amount.is_none() || d.counterparty.is_none())
        .map(|d| d.id)
        .collect();
    Some(if missing.is_empty() {
        Observation::new(
            true,
            format!(
                "取引書類 {} 件すべてに取引年月日・取引金額・取引先が記録され、範囲指定と組み合わせで検索できる（取引書類 › 検索）",
                docs.len()
            ),
            "Every document has date, amount and counterparty; ranges and combinations searchable",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!(
                "検索の三項目（取引年月日・取引金額・取引先）のいずれかが未入力の書類 {} 件: {}",
                missing.len(),
                ids(&missing)
            ),
            "Some documents lack a search field",
            f.now,
        )
    })
}

pub(super) fn retention(f: &Facts<'_>) -> Observation {
    match f
        .bookkeeping
        .as_deref()
        .and_then(|s| serde_json::from_str::<bookkeeping::BookkeepingSettings>(s).ok())
    {
        Some(s) => Observation::new(
            true,
            format!(
                "{}・{} 月決算として書類ごとに保存期限を計算（期限前に消す機能はない）",
                s.legal_form.label_ja(),
                match s.legal_form {
                    bookkeeping::LegalForm::Individual => 12,
                    _ => s.fiscal_year_end_month,
                }
            ),
            "Retention computed per document from the facility's legal form and year end",
            f.now,
        ),
        None => Observation::new(
            false,
            "電子帳簿保存の設定（法人の種類・決算月）が未保存です。初期値（医療法人・3月決算）で計算しているため、取引書類 › 設定 で確認してください",
            "The bookkeeping settings were never saved",
            f.now,
        ),
    }
}

pub(super) fn invoice_checks(f: &Facts<'_>) -> Option<Observation> {
    let mut invoices = 0;
    let mut failing: Vec<i64> = Vec::new();
    for d in active(f).filter(|d| d.direction == "received") {
        let Ok(fields) = serde_json::from_str::<DocumentFields>(&d.fields) else {
            failing.push(d.id);
            continue;
        };
        if fields.invoice_kind.is_none() {
            continue;
        }
        invoices += 1;
        if bookkeeping::checks(&fields).iter().any(|c| !c.ok) {
            failing.push(d.id);
        }
    }
    if invoices == 0 {
        return None;
    }
    Some(if failing.is_empty() {
        Observation::new(
            true,
            format!(
                "受領した適格請求書 {invoices} 件すべて、登録番号・記載事項・税率ごとの税額が一致"
            ),
            "Every received qualified invoice passes the checks",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!(
                "受領した適格請求書 {invoices} 件のうち {} 件に不一致: {}（取引書類の詳細に理由）",
                failing.len(),
                ids(&failing)
            ),
            "Some received invoices fail a check",
            f.now,
        )
    })
}

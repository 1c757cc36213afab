//! Reading a record on paper and side by side: the print view (every version, with who
//! wrote, who was responsible and the signature) and the line-by-line difference of two versions.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mamori_service::Service;
use mamori_service::ledger::audit::jst;
use serde::Deserialize;

use crate::extract::ClientAddr;
use crate::ui::{
    Layout, VersionCard, error_page, lang_of, layout, render, signed_in, version_cards,
};

type Svc = State<Arc<Service>>;

#[derive(Template)]
#[template(path = "print.html")]
pub(super) struct PrintPage {
    facility: String,
    patient_id: String,
    patient_name: String,
    birth_date: String,
    printed_at: String,
    printed_by: String,
    ledger_size: u64,
    title: String,
    status: &'static str,
    versions: Vec<VersionCard>,
    lang: &'static str,
    t: crate::ui::Tr,
}

pub async fn print_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    let p = signed_in_or_return!(svc, headers, client);
    let v = match svc.print_record(&p, id).await {
        Ok(v) => v,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let title = v
        .record
        .versions
        .last()
        .map(|x| x.content.title.clone())
        .unwrap_or_default();
    let lang = lang_of(&headers);
    render(
        StatusCode::OK,
        PrintPage {
            lang: lang.code(),
            t: crate::ui::Tr::of(lang),
            facility: v.facility,
            patient_id: v.patient.id,
            patient_name: v.patient.name_kanji,
            birth_date: v.patient.birth_date,
            printed_at: jst(v.printed_at),
            printed_by: v.printed_by.display_name,
            ledger_size: v.ledger_size,
            title,
            status: crate::ui::status_text(lang, v.record.status),
            versions: version_cards(v.record.versions, lang, p.account.id),
        },
    )
}

pub struct DiffRow {
    left: String,
    left_class: &'static str,
    right: String,
    right_class: &'static str,
}

#[derive(Template)]
#[template(path = "diff.html")]
pub(super) struct DiffPage {
    layout: Layout,
    record_id: i64,
    title: String,
    from: i64,
    to: i64,
    numbers: Vec<i64>,
    rows: Vec<DiffRow>,
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// Lines of a unified diff laid out side by side: unchanged lines on both sides, removals on
/// the left, additions on the right, paired up where a block was replaced.
pub(super) fn side_by_side(lines: Vec<mamori_service::records::DiffLine>) -> Vec<DiffRow> {
    let mut rows = Vec::new();
    let (mut dels, mut ins): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let flush = |rows: &mut Vec<DiffRow>, dels: &mut Vec<String>, ins: &mut Vec<String>| {
        for i in 0..dels.len().max(ins.len()) {
            let l = dels.get(i).cloned();
            let r = ins.get(i).cloned();
            rows.push(DiffRow {
                left_class: if l.is_some() { "del" } else { "" },
                left: l.unwrap_or_default(),
                right_class: if r.is_some() { "ins" } else { "" },
                right: r.unwrap_or_default(),
            });
        }
        dels.clear();
        ins.clear();
    };
    for l in lines {
        match l.tag {
            "delete" => dels.push(l.text),
            "insert" => ins.push(l.text),
            _ => {
                flush(&mut rows, &mut dels, &mut ins);
                rows.push(DiffRow {
                    left: l.text.clone(),
                    left_class: "",
                    right: l.text,
                    right_class: "",
                });
            }
        }
    }
    flush(&mut rows, &mut dels, &mut ins);
    rows
}

pub async fn diff_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<DiffQuery>,
) -> Response {
    let p = signed_in_or_return!(svc, headers, client);
    let view = match svc.record(&p, id).await {
        Ok(v) => v,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let numbers: Vec<i64> = view.versions.iter().map(|v| v.version_no).collect();
    let last = numbers.last().copied().unwrap_or(1);
    let to = q.to.unwrap_or(last);
    let from = q.from.unwrap_or_else(|| {
        numbers
            .iter()
            .rev()
            .copied()
            .find(|n| *n < to)
            .unwrap_or(to)
    });
    let rows = match svc.diff_versions(&p, id, from, to).await {
        Ok(lines) => side_by_side(lines),
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let title = view.title();
    render(
        StatusCode::OK,
        DiffPage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            record_id: id,
            title,
            from,
            to,
            numbers,
            rows,
        },
    )
}

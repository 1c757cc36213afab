//! 自己点検 in the browser: assessments answered item by item (observed answers shown as
//! such), the asset ledger with CSV import/export and MDS/SDS files, the risk register, the
//! contact chart, the facility's security organisation, and the printable documents.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mamori_compliance::assets::{Asset, KINDS};
use mamori_compliance::risks::Risk;
use mamori_compliance::{Answer, Source};
use mamori_service::compliance::docs::DocKind;
use mamori_service::compliance::facility::{CONTACT_CATEGORIES, ContactInput};
use mamori_service::compliance::observe::Profile;
use mamori_service::compliance::{AnswerInput, AssessmentView, EvidenceInput};
use mamori_service::ledger::audit::jst;
use mamori_service::{Principal, Service, ServiceError};
use mamori_store::{AssetRow, ContactRow, RiskRow};
use serde::Deserialize;

use crate::api::compliance::download;
use crate::error::status_of;
use crate::i18n::Lang;
use crate::ui::admin::FormError;
use crate::ui::form::{Fields, SignedForm, SignedIn};
use crate::ui::{Layout, error_page, lang_of, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/compliance", get(home).post(create))
        .route("/compliance/assessments/{id}", get(assessment_page))
        .route(
            "/compliance/assessments/{id}/items/{item}/answer",
            post(answer),
        )
        .route(
            "/compliance/assessments/{id}/items/{item}/evidence",
            post(add_evidence),
        )
        .route(
            "/compliance/assessments/{id}/evidence/{eid}",
            get(evidence_file),
        )
        .route("/compliance/assessments/{id}/close", post(close))
        .route("/compliance/assessments/{id}/report", get(report_html))
        .route("/compliance/assessments/{id}/report.pdf", get(report_pdf))
        .route("/compliance/assets", get(assets_page).post(save_asset))
        .route("/compliance/assets/import", post(import_assets))
        .route("/compliance/assets/export.csv", get(export_assets))
        .route("/compliance/assets/{id}/delete", post(delete_asset))
        .route(
            "/compliance/assets/{id}/mds",
            get(mds_file).post(attach_mds),
        )
        .route("/compliance/risks", get(risks_page).post(save_risk))
        .route("/compliance/risks/{id}/delete", post(delete_risk))
        .route(
            "/compliance/contacts",
            get(contacts_page).post(save_contacts),
        )
        .route("/compliance/profile", get(profile_page).post(save_profile))
        .route("/compliance/documents/{kind}", get(document))
}

fn answer_label(lang: Lang, a: Answer) -> &'static str {
    if lang == Lang::En { a.en() } else { a.ja() }
}

/// A multipart form with its CSRF checked: text fields and (at most one) file.
pub(crate) struct Upload {
    pub fields: Vec<(String, String)>,
    pub file: Option<(String, Vec<u8>)>,
}

impl Upload {
    pub(crate) fn get(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

pub(crate) async fn read_upload(
    svc: &Service,
    p: &Principal,
    mut mp: Multipart,
) -> Result<Upload, ServiceError> {
    let too_large = || {
        ServiceError::new(
            ErrorCode::TooLarge,
            "送信されたファイルが大きすぎます（20MB まで）",
        )
    };
    let mut u = Upload {
        fields: Vec::new(),
        file: None,
    };
    while let Some(field) = mp.next_field().await.map_err(|_| too_large())? {
        let name = field.name().unwrap_or("").to_owned();
        if let Some(file) = field.file_name().map(str::to_owned) {
            let bytes = field.bytes().await.map_err(|_| too_large())?;
            if !bytes.is_empty() {
                u.file = Some((file, bytes.to_vec()));
            }
            continue;
        }
        let text = field.text().await.map_err(|_| too_large())?;
        u.fields.push((name, text));
    }
    svc.check_csrf(p, Some(&u.get("csrf")))?;
    Ok(u)
}

// ---------------------------------------------------------------- home: assessments

pub struct AssessmentRowView {
    pub id: i64,
    pub title: String,
    pub sheet: &'static str,
    pub assessed_on: String,
    pub percent: u32,
    pub closed: bool,
}

#[derive(Template)]
#[template(path = "compliance_home.html")]
struct HomePage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<AssessmentRowView>,
    catalogues: Vec<(String, String)>,
    default_catalogue: String,
    problems: Vec<String>,
    today: String,
    error: Option<FormError>,
}

async fn show_home(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    error: Option<&ServiceError>,
) -> Response {
    let list = match svc.assessments(p).await {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let (cats, problems) = svc.catalogue_summaries();
    let default_catalogue = cats
        .iter()
        .find(|c| c.header.sheet == "medical")
        .map(|c| c.header.id.clone())
        .unwrap_or_default();
    render(
        status,
        HomePage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "assessments",
            rows: list
                .into_iter()
                .map(|a| AssessmentRowView {
                    id: a.row.id,
                    title: format!("{} {}", a.catalogue_title, a.edition),
                    sheet: a.sheet_ja,
                    assessed_on: a.row.assessed_on,
                    percent: a.percent,
                    closed: a.closed,
                })
                .collect(),
            catalogues: cats
                .iter()
                .map(|c| {
                    (
                        c.header.id.clone(),
                        format!(
                            "{} {}（{} 項目、うち観測 {}）",
                            c.header.title, c.header.edition, c.items, c.observable
                        ),
                    )
                })
                .collect(),
            default_catalogue,
            problems,
            today: mamori_service::ledger::audit::jst_date(svc.now()),
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn home(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    show_home(&svc, &headers, &p, StatusCode::OK, None).await
}

async fn create(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc
        .new_assessment(&p, &fields.get("catalogue"), &fields.get("assessed_on"))
        .await
    {
        Ok(id) => Redirect::to(&format!("/compliance/assessments/{id}")).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => show_home(&svc, &headers, &p, status_of(e.code), Some(&e)).await,
    }
}

// ---------------------------------------------------------------- one assessment

pub struct EvidenceView {
    pub id: i64,
    pub name: String,
    pub url: Option<String>,
}

pub struct ItemRow {
    pub id: String,
    pub number: String,
    pub text: String,
    pub scope: String,
    pub refs: String,
    /// The section heading, on the first item of a section.
    pub section: Option<String>,
    pub answer: &'static str,
    pub answer_code: &'static str,
    /// observed | declared | none
    pub source: &'static str,
    pub observation: Option<(String, String, &'static str)>,
    /// What the item asks that mamori cannot see (empty when it sees all).
    pub unseen: String,
    pub declared: Option<(String, String)>,
    pub owner: String,
    pub due: String,
    pub note: String,
    pub overrides: bool,
    pub previous: Option<&'static str>,
    pub uncertain: String,
    pub evidence: Vec<EvidenceView>,
}

pub struct StepRow {
    pub item_id: String,
    pub number: String,
    pub text: String,
    pub answer: &'static str,
    pub required_now: bool,
    pub when: String,
}

#[derive(Template)]
#[template(path = "compliance_assessment.html")]
struct AssessmentPage {
    layout: Layout,
    tab: &'static str,
    id: i64,
    title: String,
    edition: String,
    assessed_on: String,
    fiscal_year: String,
    closed: bool,
    observed_at: String,
    percent: u32,
    tally: (usize, usize, usize, usize),
    sections: Vec<(String, u32, usize, usize)>,
    previous: Option<(i64, String, u32)>,
    steps: Vec<StepRow>,
    items: Vec<ItemRow>,
    /// The item an error belongs to, and the message.
    error: Option<(String, FormError)>,
}

fn page_of(
    v: AssessmentView,
    lang: Lang,
    layout: Layout,
    error: Option<(String, FormError)>,
) -> AssessmentPage {
    let mut last_section = String::new();
    let items = v
        .items
        .iter()
        .map(|i| {
            let r = &i.resolved;
            let section = (i.item.section != last_section).then(|| {
                last_section = i.item.section.clone();
                format!("{} {}", i.item.section, i.section_title)
            });
            ItemRow {
                id: i.item.id.clone(),
                number: i.item.number.clone(),
                text: i.item.text.clone(),
                scope: i.item.scope.clone().unwrap_or_default(),
                refs: i.item.refs.join("、"),
                section,
                answer: answer_label(lang, r.answer),
                answer_code: r.answer.code(),
                source: match r.source {
                    Source::Observed => "observed",
                    Source::Declared => "declared",
                    Source::PartlyObserved => "partly_observed",
                    Source::None => "none",
                },
                unseen: r
                    .observation
                    .as_ref()
                    .and_then(|o| o.unseen_ja.clone())
                    .unwrap_or_default(),
                observation: r.observation.as_ref().map(|o| {
                    (
                        if lang == Lang::En {
                            o.evidence_en.clone()
                        } else {
                            o.evidence_ja.clone()
                        },
                        jst(o.observed_at),
                        answer_label(lang, o.answer),
                    )
                }),
                declared: r.declared.as_ref().map(|d| (d.by.clone(), jst(d.at))),
                owner: r
                    .declared
                    .as_ref()
                    .map(|d| d.owner.clone())
                    .unwrap_or_default(),
                due: r
                    .declared
                    .as_ref()
                    .and_then(|d| d.due.clone())
                    .unwrap_or_default(),
                note: r
                    .declared
                    .as_ref()
                    .map(|d| d.note.clone())
                    .unwrap_or_default(),
                overrides: r.overrides_observation,
                previous: i.previous.map(|a| answer_label(lang, a)),
                uncertain: i.item.uncertain.clone().unwrap_or_default(),
                evidence: i
                    .evidence
                    .iter()
                    .map(|e| EvidenceView {
                        id: e.id,
                        name: e.name.clone(),
                        url: e.url.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let o = &v.score.overall;
    AssessmentPage {
        layout,
        tab: "assessments",
        id: v.assessment.id,
        title: v.catalogue.title.clone(),
        edition: v.catalogue.edition.clone(),
        assessed_on: v.assessment.assessed_on.clone(),
        fiscal_year: mamori_compliance::answer::reiwa(v.fiscal_year),
        closed: v.closed,
        observed_at: jst(v.observed_at),
        percent: v.score.percent,
        tally: (o.yes, o.no, o.not_applicable, o.unanswered),
        sections: v
            .score
            .sections
            .iter()
            .map(|s| {
                (
                    format!("{} {}", s.section, s.title),
                    s.percent,
                    s.tally.yes,
                    s.tally.applicable(),
                )
            })
            .collect(),
        previous: v
            .previous
            .as_ref()
            .map(|(a, pct)| (a.id, a.assessed_on.clone(), *pct)),
        steps: v
            .next_steps
            .iter()
            .map(|s| StepRow {
                item_id: s.item_id.clone(),
                number: s.number.clone(),
                text: s.text.clone(),
                answer: answer_label(lang, s.answer),
                required_now: s.required_now,
                when: match &s.due {
                    Some(d) => format!("{} {d}", crate::i18n::t(lang, "cmp.due")),
                    None => format!(
                        "{}{}",
                        mamori_compliance::answer::reiwa(s.required_by),
                        crate::i18n::t(lang, "cmp.by")
                    ),
                },
            })
            .collect(),
        items,
        error,
    }
}

async fn show_assessment(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: i64,
    status: StatusCode,
    error: Option<(String, &ServiceError)>,
) -> Response {
    let v = match svc.assessment(p, id).await {
        Ok(v) => v,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let error = error.and_then(|(item, e)| FormError::of(headers, e).map(|f| (item, f)));
    render(
        status,
        page_of(
            v,
            lang_of(headers),
            layout(svc, headers, Some(p), p.csrf.clone()),
            error,
        ),
    )
}

async fn assessment_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    show_assessment(&svc, &headers, &p, id, StatusCode::OK, None).await
}

fn back_to(id: i64, item: &str) -> Response {
    Redirect::to(&format!("/compliance/assessments/{id}#item-{item}")).into_response()
}

async fn answer(
    State(svc): Svc,
    headers: HeaderMap,
    Path((id, item)): Path<(i64, String)>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let input = AnswerInput {
        answer: fields.get("answer"),
        owner: fields.get("owner"),
        due: fields.get("due"),
        note: fields.get("note"),
    };
    match svc.answer_item(&p, id, &item, input).await {
        Ok(()) => back_to(id, &item),
        Err(e) if e.code == ErrorCode::Forbidden || e.code == ErrorCode::NotFound => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => {
            show_assessment(&svc, &headers, &p, id, status_of(e.code), Some((item, &e))).await
        }
    }
}

async fn add_evidence(
    State(svc): Svc,
    headers: HeaderMap,
    Path((id, item)): Path<(i64, String)>,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let result = match read_upload(&svc, &p, mp).await {
        Ok(u) => {
            let url = u.get("url");
            let link_name = u.get("name");
            let input = match (u.file, url.trim().is_empty()) {
                (Some((name, bytes)), _) => Ok(EvidenceInput::File { name, bytes }),
                (None, false) => Ok(EvidenceInput::Link {
                    name: link_name,
                    url,
                }),
                (None, true) => Err(ServiceError::invalid(
                    "file",
                    "ファイルを選ぶか、リンクを入力してください",
                )),
            };
            match input {
                Ok(i) => svc.add_item_evidence(&p, id, &item, i).await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => back_to(id, &item),
        Err(e)
            if e.code == ErrorCode::Forbidden
                || e.code == ErrorCode::NotFound
                || e.code == ErrorCode::Csrf =>
        {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => {
            show_assessment(&svc, &headers, &p, id, status_of(e.code), Some((item, &e))).await
        }
    }
}

async fn evidence_file(
    State(svc): Svc,
    headers: HeaderMap,
    Path((id, eid)): Path<(i64, i64)>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.evidence_file(&p, id, eid).await {
        Ok((name, media, bytes)) => download(bytes, &media, &name),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn close(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    match svc.close_assessment(&p, id).await {
        Ok(()) => Redirect::to(&format!("/compliance/assessments/{id}")).into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

fn print_page(html: String) -> Response {
    let mut res = Html(html).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

async fn report_html(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.assessment_doc(Some(&p), id).await {
        Ok(d) => {
            let nav = format!(
                "<a href=\"/compliance/assessments/{id}\">{}</a> <a href=\"/compliance/assessments/{id}/report.pdf\">PDF</a>",
                crate::i18n::t(lang_of(&headers), "cmp.back")
            );
            print_page(d.to_html(Some("/static/doc.css"), &nav))
        }
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn report_pdf(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.assessment_doc(Some(&p), id).await {
        Ok(d) => download(
            mamori_compliance::pdf::render(&d),
            "application/pdf",
            &format!("assessment-{id}.pdf"),
        ),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

// ---------------------------------------------------------------- asset ledger

pub struct AssetView {
    pub row: AssetRow,
    pub kind: &'static str,
    pub remote: &'static str,
    pub mds: &'static str,
}

#[derive(Template)]
#[template(path = "compliance_assets.html")]
struct AssetsPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<AssetView>,
    kinds: Vec<(&'static str, &'static str)>,
    form: Asset,
    editing: bool,
    error: Option<FormError>,
    imported: Option<String>,
}

fn blank_asset() -> Asset {
    Asset {
        kind: "pc".into(),
        name: String::new(),
        location: String::new(),
        owner: String::new(),
        os: String::new(),
        patched_on: None,
        remote_maintenance: "unknown".into(),
        maintainer: String::new(),
        vendor: String::new(),
        mds_sds: "not_received".into(),
        connection_restriction: String::new(),
        note: String::new(),
    }
}

#[derive(Deserialize, Default)]
struct EditQuery {
    #[serde(default)]
    edit: Option<i64>,
    #[serde(default)]
    imported: Option<usize>,
}

async fn show_assets(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    form: Option<Asset>,
    q: EditQuery,
    error: Option<&ServiceError>,
) -> Response {
    let rows = match svc.assets(p).await {
        Ok(r) => r,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let lang = lang_of(headers);
    let editing = form.is_some() || q.edit.is_some();
    let form = form
        .or_else(|| {
            q.edit
                .and_then(|id| rows.iter().find(|r| r.id == id).map(|r| r.asset.clone()))
        })
        .unwrap_or_else(blank_asset);
    let t = |k| crate::i18n::t(lang, k);
    render(
        status,
        AssetsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "assets",
            rows: rows
                .into_iter()
                .map(|row| AssetView {
                    kind: KINDS
                        .iter()
                        .find(|k| k.0 == row.asset.kind)
                        .map_or("", |k| if lang == Lang::En { k.2 } else { k.1 }),
                    remote: match row.asset.remote_maintenance.as_str() {
                        "yes" => t("cmp.yes"),
                        "no" => t("cmp.no"),
                        _ => t("cmp.unknown"),
                    },
                    mds: match row.asset.mds_sds.as_str() {
                        "received" => t("cmp.received"),
                        "na" => t("cmp.na"),
                        _ => t("cmp.not_received"),
                    },
                    row,
                })
                .collect(),
            kinds: KINDS
                .iter()
                .map(|k| (k.0, if lang == Lang::En { k.2 } else { k.1 }))
                .collect(),
            form,
            editing,
            error: error.and_then(|e| FormError::of(headers, e)),
            imported: q.imported.map(|n| n.to_string()),
        },
    )
}

async fn assets_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<EditQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    show_assets(&svc, &headers, &p, StatusCode::OK, None, q, None).await
}

fn asset_of(f: &Fields) -> Asset {
    Asset {
        kind: f.get("kind"),
        name: f.get("name"),
        location: f.get("location"),
        owner: f.get("owner"),
        os: f.get("os"),
        patched_on: Some(f.get("patched_on")),
        remote_maintenance: f.get("remote_maintenance"),
        maintainer: f.get("maintainer"),
        vendor: f.get("vendor"),
        mds_sds: f.get("mds_sds"),
        connection_restriction: f.get("connection_restriction"),
        note: f.get("note"),
    }
}

async fn save_asset(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let a = asset_of(&fields);
    match svc.save_asset(&p, a.clone()).await {
        Ok(_) => Redirect::to("/compliance/assets").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            show_assets(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                Some(a),
                EditQuery::default(),
                Some(&e),
            )
            .await
        }
    }
}

async fn import_assets(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let result = match read_upload(&svc, &p, mp).await {
        Ok(Upload {
            file: Some((_, bytes)),
            ..
        }) => svc.import_assets(&p, &bytes).await,
        Ok(_) => Err(ServiceError::invalid(
            "file",
            "CSV ファイルを選んでください",
        )),
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => Redirect::to(&format!("/compliance/assets?imported={n}")).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden || e.code == ErrorCode::Csrf => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => {
            show_assets(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                None,
                EditQuery::default(),
                Some(&e),
            )
            .await
        }
    }
}

async fn export_assets(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    match svc.assets_csv(&p).await {
        Ok(b) => download(b, "text/csv; charset=utf-8", "assets.csv"),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn delete_asset(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    match svc.delete_asset(&p, id).await {
        Ok(()) => Redirect::to("/compliance/assets").into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn attach_mds(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let result = match read_upload(&svc, &p, mp).await {
        Ok(Upload {
            file: Some((name, bytes)),
            ..
        }) => svc.attach_mds(&p, id, &name, bytes).await,
        Ok(_) => Err(ServiceError::invalid("file", "ファイルを選んでください")),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/compliance/assets").into_response(),
        Err(e)
            if e.code == ErrorCode::Forbidden
                || e.code == ErrorCode::Csrf
                || e.code == ErrorCode::NotFound =>
        {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => {
            show_assets(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                None,
                EditQuery::default(),
                Some(&e),
            )
            .await
        }
    }
}

async fn mds_file(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.mds_document(&p, id).await {
        Ok((name, media, bytes)) => download(bytes, &media, &name),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

// ---------------------------------------------------------------- risk register

#[derive(Template)]
#[template(path = "compliance_risks.html")]
struct RisksPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<(RiskRow, u8, &'static str)>,
    form: Risk,
    edit_id: Option<i64>,
    error: Option<FormError>,
}

fn blank_risk() -> Risk {
    Risk {
        asset: String::new(),
        threat: String::new(),
        likelihood: 3,
        impact: 3,
        control: String::new(),
        feature: String::new(),
        residual: 2,
        owner: String::new(),
    }
}

async fn show_risks(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    form: Option<(Option<i64>, Risk)>,
    edit: Option<i64>,
    error: Option<&ServiceError>,
) -> Response {
    let rows = match svc.risks(p).await {
        Ok(r) => r,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let (edit_id, form) = form
        .or_else(|| {
            edit.and_then(|id| {
                rows.iter()
                    .find(|r| r.id == id)
                    .map(|r| (Some(id), r.risk.clone()))
            })
        })
        .unwrap_or((None, blank_risk()));
    render(
        status,
        RisksPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "risks",
            rows: rows
                .into_iter()
                .map(|r| {
                    let s = r.risk.inherent();
                    (r, s, Risk::level_ja(s))
                })
                .collect(),
            form,
            edit_id,
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn risks_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<EditQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    show_risks(&svc, &headers, &p, StatusCode::OK, None, q.edit, None).await
}

async fn save_risk(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let num = |k: &str| f.get(k).trim().parse::<u8>().unwrap_or(0);
    let risk = Risk {
        asset: f.get("asset"),
        threat: f.get("threat"),
        likelihood: num("likelihood"),
        impact: num("impact"),
        control: f.get("control"),
        feature: f.get("feature"),
        residual: num("residual"),
        owner: f.get("owner"),
    };
    let id = f.get("id").parse::<i64>().ok();
    match svc.save_risk(&p, id, risk.clone()).await {
        Ok(_) => Redirect::to("/compliance/risks").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden || e.code == ErrorCode::NotFound => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => {
            show_risks(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                Some((id, risk)),
                None,
                Some(&e),
            )
            .await
        }
    }
}

async fn delete_risk(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    match svc.delete_risk(&p, id).await {
        Ok(()) => Redirect::to("/compliance/risks").into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

// ---------------------------------------------------------------- contact chart

#[derive(Template)]
#[template(path = "compliance_contacts.html")]
struct ContactsPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<ContactRow>,
    categories: Vec<(&'static str, &'static str)>,
    error: Option<FormError>,
}

async fn show_contacts(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    rows: Option<Vec<ContactRow>>,
    error: Option<&ServiceError>,
) -> Response {
    let mut rows = match rows {
        Some(r) => r,
        None => match svc.contacts(p).await {
            Ok(r) => r,
            Err(e) => return error_page(svc, headers, Some(p), &e),
        },
    };
    // Room for new entries without JavaScript.
    for _ in 0..4 {
        rows.push(ContactRow {
            id: 0,
            category: "internal".into(),
            name: String::new(),
            organisation: String::new(),
            phone: String::new(),
            email: String::new(),
            note: String::new(),
            position: 0,
        });
    }
    let lang = lang_of(headers);
    render(
        status,
        ContactsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "contacts",
            rows,
            categories: CONTACT_CATEGORIES
                .iter()
                .map(|c| (c.0, if lang == Lang::En { c.2 } else { c.1 }))
                .collect(),
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn contacts_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    show_contacts(&svc, &headers, &p, StatusCode::OK, None, None).await
}

async fn save_contacts(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let col = |k: &str| f.all(k);
    let (cat, name, org, phone, email, note) = (
        col("category"),
        col("name"),
        col("organisation"),
        col("phone"),
        col("email"),
        col("note"),
    );
    let at = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
    let input: Vec<ContactInput> = (0..name.len())
        .map(|i| ContactInput {
            category: at(&cat, i),
            name: at(&name, i),
            organisation: at(&org, i),
            phone: at(&phone, i),
            email: at(&email, i),
            note: at(&note, i),
        })
        .collect();
    match svc.save_contacts(&p, input.clone()).await {
        Ok(_) => Redirect::to("/compliance/contacts").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let rows = input
                .into_iter()
                .filter(|c| !c.name.trim().is_empty())
                .map(|c| ContactRow {
                    id: 0,
                    category: c.category,
                    name: c.name,
                    organisation: c.organisation,
                    phone: c.phone,
                    email: c.email,
                    note: c.note,
                    position: 0,
                })
                .collect();
            show_contacts(&svc, &headers, &p, status_of(e.code), Some(rows), Some(&e)).await
        }
    }
}

// ---------------------------------------------------------------- organisation and documents

#[derive(Template)]
#[template(path = "compliance_profile.html")]
struct ProfilePage {
    layout: Layout,
    tab: &'static str,
    form: Profile,
    error: Option<FormError>,
    saved: bool,
}

#[derive(Deserialize, Default)]
struct SavedQuery {
    #[serde(default)]
    saved: Option<u8>,
}

async fn profile_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<SavedQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.compliance_profile(&p).await {
        Ok(form) => render(
            StatusCode::OK,
            ProfilePage {
                layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
                tab: "profile",
                form,
                error: None,
                saved: q.saved.is_some(),
            },
        ),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn save_profile(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let form = Profile {
        security_officer: f.get("security_officer"),
        director: f.get("director"),
        rules_adopted_on: f.get("rules_adopted_on"),
        bcp_adopted_on: f.get("bcp_adopted_on"),
    };
    match svc.save_compliance_profile(&p, form.clone()).await {
        Ok(()) => Redirect::to("/compliance/profile?saved=1").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => render(
            status_of(e.code),
            ProfilePage {
                layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
                tab: "profile",
                form,
                error: FormError::of(&headers, &e),
                saved: false,
            },
        ),
    }
}

#[derive(Deserialize, Default)]
struct FormatQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn document(
    State(svc): Svc,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<FormatQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    let Some(k) = DocKind::parse(&kind) else {
        return error_page(
            &svc,
            &headers,
            Some(&p),
            &mamori_service::compliance::docs::unknown_doc(),
        );
    };
    match svc.facility_doc(&p, k).await {
        Ok(d) if q.format.as_deref() == Some("pdf") => download(
            mamori_compliance::pdf::render(&d),
            "application/pdf",
            &format!("{kind}.pdf"),
        ),
        Ok(d) => {
            let nav = format!(
                "<a href=\"/compliance/profile\">{}</a> <a href=\"/compliance/documents/{kind}?format=pdf\">PDF</a>",
                crate::i18n::t(lang_of(&headers), "cmp.back")
            );
            print_page(d.to_html(Some("/static/doc.css"), &nav))
        }
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

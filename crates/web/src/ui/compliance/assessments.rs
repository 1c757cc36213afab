//! 自己点検 › 点検: the list of assessments, starting one, and one assessment answered item by
//! item (observed answers shown as such), with its evidence, closing and the report.

use super::*;

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
pub(super) struct HomePage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<AssessmentRowView>,
    catalogues: Vec<(String, String)>,
    default_catalogue: String,
    problems: Vec<String>,
    today: String,
    error: Option<FormError>,
}

pub(super) async fn show_home(
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

pub(super) async fn home(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    show_home(&svc, &headers, &p, StatusCode::OK, None).await
}

pub(super) async fn create(
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
pub(super) struct AssessmentPage {
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

pub(super) fn page_of(
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

pub(super) async fn show_assessment(
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

pub(super) async fn assessment_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    show_assessment(&svc, &headers, &p, id, StatusCode::OK, None).await
}

pub(super) fn back_to(id: i64, item: &str) -> Response {
    Redirect::to(&format!("/compliance/assessments/{id}#item-{item}")).into_response()
}

pub(super) async fn answer(
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

pub(super) async fn add_evidence(
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

pub(super) async fn evidence_file(
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

pub(super) async fn close(
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

pub(crate) fn print_page(html: String) -> Response {
    let mut res = Html(html).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

pub(super) async fn report_html(
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

pub(super) async fn report_pdf(
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

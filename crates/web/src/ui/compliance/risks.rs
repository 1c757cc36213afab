//! 自己点検 › リスク台帳: the risk register.

use super::*;

#[derive(Template)]
#[template(path = "compliance_risks.html")]
pub(super) struct RisksPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<(RiskRow, u8, &'static str)>,
    form: Risk,
    edit_id: Option<i64>,
    error: Option<FormError>,
}

pub(super) fn blank_risk() -> Risk {
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

pub(super) async fn show_risks(
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

pub(super) async fn risks_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<EditQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    show_risks(&svc, &headers, &p, StatusCode::OK, None, q.edit, None).await
}

pub(super) async fn save_risk(
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

pub(super) async fn delete_risk(
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

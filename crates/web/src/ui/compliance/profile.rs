//! 自己点検 › 体制と文書: the security organisation and the printable documents.

use super::*;

#[derive(Template)]
#[template(path = "compliance_profile.html")]
pub(super) struct ProfilePage {
    layout: Layout,
    tab: &'static str,
    form: Profile,
    error: Option<FormError>,
    saved: bool,
}

#[derive(Deserialize, Default)]
pub(super) struct SavedQuery {
    #[serde(default)]
    saved: Option<u8>,
}

pub(super) async fn profile_page(
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

pub(super) async fn save_profile(
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
pub(super) struct FormatQuery {
    #[serde(default)]
    format: Option<String>,
}

pub(super) async fn document(
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

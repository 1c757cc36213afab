//! 自己点検 › 連絡体制図: the incident contact chart.

use super::*;

#[derive(Template)]
#[template(path = "compliance_contacts.html")]
pub(super) struct ContactsPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<ContactRow>,
    categories: Vec<(&'static str, &'static str)>,
    error: Option<FormError>,
}

pub(super) async fn show_contacts(
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

pub(super) async fn contacts_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
) -> Response {
    show_contacts(&svc, &headers, &p, StatusCode::OK, None, None).await
}

pub(super) async fn save_contacts(
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

//! Roles (職種) in the browser: their grants per record kind against the built-in templates,
//! proposals to widen a role (approved by a second administrator, never the proposer), and the
//! editor.

use super::*;

pub struct RoleRow {
    pub code: String,
    pub name: String,
    pub builtin: bool,
    pub grants: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_roles.html")]
pub(super) struct RolesPage {
    layout: Layout,
    tab: &'static str,
    roles: Vec<RoleRow>,
    saved: Option<String>,
    proposed: Option<i64>,
    proposals: Vec<ProposalRow>,
}

/// A role change for a second administrator, as the roles page lists it.
pub(super) struct ProposalRow {
    id: i64,
    role: String,
    grants: Vec<String>,
    reason: String,
    proposed_by: String,
    proposed_at: String,
    /// Someone else proposed it: this administrator may approve.
    may_approve: bool,
    decided: Option<String>,
}

/// `write:medical_record` → 「記載：診療録」, for people.
pub(super) fn grant_label(g: &Grant, kinds: &[RecordKind], lang: Lang) -> String {
    let action = if lang == Lang::En {
        g.action.as_str().replace('_', " ")
    } else {
        g.action.label_ja().to_owned()
    };
    if !g.action.per_kind() {
        return action;
    }
    let kind = match &g.kind {
        None => crate::i18n::t(lang, "admin.all_kinds").to_owned(),
        Some(k) => kinds
            .iter()
            .find(|x| &x.code == k)
            .map(|x| {
                if lang == Lang::En {
                    x.name_en.clone()
                } else {
                    x.name_ja.clone()
                }
            })
            .unwrap_or_else(|| k.clone()),
    };
    format!("{action}：{kind}")
}

pub(super) async fn roles_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<SavedQuery>,
) -> Response {
    let lang = lang_of(&headers);
    let roles = match svc.roles(&p).await {
        Ok(r) => r,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let kinds = svc.kinds(&p).await.unwrap_or_default();
    let role_name = |code: &str| {
        roles
            .iter()
            .find(|r| r.role.code == code)
            .map(|r| {
                let name = if lang == Lang::En {
                    &r.role.name_en
                } else {
                    &r.role.name_ja
                };
                format!("{name}（{code}）")
            })
            .unwrap_or_else(|| code.to_owned())
    };
    let proposals_raw = svc.role_proposals(&p).await.unwrap_or_default();
    let named: Vec<String> = proposals_raw
        .iter()
        .map(|x| role_name(&x.row.role_code))
        .collect();
    let rows = roles
        .into_iter()
        .map(|r| RoleRow {
            grants: r
                .role
                .grants
                .iter()
                .map(|g| grant_label(g, &kinds, lang))
                .collect(),
            name: if lang == Lang::En {
                r.role.name_en
            } else {
                r.role.name_ja
            },
            code: r.role.code,
            builtin: r.role.builtin,
        })
        .collect();
    let proposals = proposals_raw
        .into_iter()
        .zip(named)
        .map(|(x, role)| ProposalRow {
            id: x.row.id,
            role,
            grants: x
                .input
                .as_ref()
                .map(|i| {
                    i.grants
                        .iter()
                        .filter_map(|g| g.parse().ok())
                        .map(|g| grant_label(&g, &kinds, lang))
                        .collect()
                })
                .unwrap_or_default(),
            reason: t(
                lang,
                match x.row.reason.as_str() {
                    "own_role" => "admin.proposal_own_role",
                    _ => "admin.proposal_clinical",
                },
            )
            .to_owned(),
            proposed_by: x.proposed_by_name,
            proposed_at: jst(x.row.proposed_at),
            may_approve: x.row.proposed_by != p.account.id,
            decided: x.row.outcome.map(|o| {
                format!(
                    "{}（{}、{}）",
                    t(
                        lang,
                        if o == "approved" {
                            "admin.proposal_approved"
                        } else {
                            "admin.proposal_rejected"
                        }
                    ),
                    x.decided_by_name.unwrap_or_default(),
                    x.row.decided_at.map(jst).unwrap_or_default()
                )
            }),
        })
        .collect();
    render(
        StatusCode::OK,
        RolesPage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            tab: "roles",
            roles: rows,
            saved: q.saved,
            proposed: q.proposed,
            proposals,
        },
    )
}

/// Approves (another administrator) or rejects / withdraws a proposed role change.
pub(super) async fn decide_role_proposal(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let result = match f.get("op").as_str() {
        "approve" => svc.approve_role_proposal(&p, id).await.map(|_| ()),
        "reject" => svc.reject_role_proposal(&p, id).await,
        _ => Err(ServiceError::invalid("op", "操作の指定が正しくありません")),
    };
    match result {
        Ok(()) => Redirect::to("/admin/roles").into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

/// One checkbox of the role editor.
pub struct GrantBox {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// A row of the matrix: one per-kind action, with "every kind" first and then each kind.
pub struct GrantRow {
    pub action: String,
    pub boxes: Vec<GrantBox>,
}

#[derive(Template)]
#[template(path = "admin_role.html")]
pub(super) struct RolePage {
    layout: Layout,
    tab: &'static str,
    is_new: bool,
    code: String,
    name_ja: String,
    name_en: String,
    columns: Vec<String>,
    matrix: Vec<GrantRow>,
    facility_wide: Vec<GrantBox>,
    two_factor: bool,
    client_cert: bool,
    error: Option<FormError>,
}

pub(super) fn role_editor(
    kinds: &[RecordKind],
    lang: Lang,
    granted: &[String],
) -> (Vec<String>, Vec<GrantRow>, Vec<GrantBox>) {
    let kind_name = |k: &RecordKind| {
        if lang == Lang::En {
            k.name_en.clone()
        } else {
            k.name_ja.clone()
        }
    };
    let action_name = |a: Action| {
        if lang == Lang::En {
            a.as_str().replace('_', " ")
        } else {
            a.label_ja().to_owned()
        }
    };
    let mut columns = vec![crate::i18n::t(lang, "admin.all_kinds").to_owned()];
    columns.extend(kinds.iter().map(kind_name));
    let has = |v: &str| granted.iter().any(|g| g == v);
    let matrix = Action::ALL
        .into_iter()
        .filter(|a| a.per_kind())
        .map(|a| {
            let mut boxes = vec![GrantBox {
                value: format!("{}:*", a.as_str()),
                label: format!("{}（{}）", action_name(a), columns[0]),
                checked: has(&format!("{}:*", a.as_str())),
            }];
            boxes.extend(kinds.iter().map(|k| {
                let v = format!("{}:{}", a.as_str(), k.code);
                GrantBox {
                    label: format!("{}（{}）", action_name(a), kind_name(k)),
                    checked: has(&v),
                    value: v,
                }
            }));
            GrantRow {
                action: action_name(a),
                boxes,
            }
        })
        .collect();
    let facility_wide = Action::ALL
        .into_iter()
        .filter(|a| !a.per_kind())
        .map(|a| GrantBox {
            value: a.as_str().to_owned(),
            label: action_name(a),
            checked: has(a.as_str()),
        })
        .collect();
    (columns, matrix, facility_wide)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn show_role(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    is_new: bool,
    input: RoleInput,
    (two_factor, client_cert): (bool, bool),
    error: Option<FormError>,
) -> Response {
    let lang = lang_of(headers);
    let kinds = svc.kinds(p).await.unwrap_or_default();
    let (columns, matrix, facility_wide) = role_editor(&kinds, lang, &input.grants);
    render(
        status,
        RolePage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "roles",
            is_new,
            code: input.code,
            name_ja: input.name_ja,
            name_en: input.name_en,
            columns,
            matrix,
            facility_wide,
            two_factor,
            client_cert,
            error,
        },
    )
}

pub(super) async fn role_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Path(code): Path<String>,
) -> Response {
    if let Err(e) = p.require(Action::AdminSettings, None) {
        return error_page(&svc, &headers, Some(&p), &e);
    }
    let roles = match svc.roles(&p).await {
        Ok(r) => r,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let (is_new, input) = if code == "new" {
        (
            true,
            RoleInput {
                code: String::new(),
                name_ja: String::new(),
                name_en: String::new(),
                grants: Vec::new(),
                ..Default::default()
            },
        )
    } else {
        let Some(r) = roles.into_iter().find(|r| r.role.code == code) else {
            return error_page(&svc, &headers, Some(&p), &ServiceError::not_found("職種"));
        };
        (
            false,
            RoleInput {
                code: r.role.code,
                name_ja: r.role.name_ja,
                name_en: r.role.name_en,
                grants: r.role.grants.iter().map(ToString::to_string).collect(),
                ..Default::default()
            },
        )
    };
    let two_factor = svc
        .two_factor_roles()
        .await
        .unwrap_or_default()
        .contains(&input.code);
    let client_cert = svc
        .client_cert_roles()
        .await
        .unwrap_or_default()
        .contains(&input.code);
    show_role(
        &svc,
        &headers,
        &p,
        StatusCode::OK,
        is_new,
        input,
        (two_factor, client_cert),
        None,
    )
    .await
}

pub(super) async fn save_role(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let is_new = f.get("is_new") == "1";
    let two_factor = f.get("two_factor") == "on";
    let client_cert = f.get("client_cert") == "on";
    // One use case, one transaction: the role, the rule that a new code is not taken, and the
    // sign-in policies beside it.
    let input = RoleInput {
        code: f.get("code").trim().to_owned(),
        name_ja: f.get("name_ja"),
        name_en: f.get("name_en"),
        grants: f.all("grant"),
        create: is_new,
        two_factor: Some(two_factor),
        client_cert: Some(client_cert),
    };
    let saved = match svc.save_role(&p, input.clone()).await {
        Ok(RoleSaved::Proposed { id, .. }) => {
            return Redirect::to(&format!("/admin/roles?proposed={id}")).into_response();
        }
        Ok(RoleSaved::Saved(r)) => Ok(r),
        Err(e) => Err(e),
    };
    match saved {
        Ok(r) => Redirect::to(&format!("/admin/roles?saved={}", r.code)).into_response(),
        Err(e) => {
            show_role(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                is_new,
                input,
                (two_factor, client_cert),
                FormError::of(&headers, &e),
            )
            .await
        }
    }
}

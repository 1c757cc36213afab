//! 自己点検 › 機器台帳: the asset ledger with CSV import and export and MDS/SDS files.

use super::*;

pub struct AssetView {
    pub row: AssetRow,
    pub kind: &'static str,
    pub remote: &'static str,
    pub mds: &'static str,
}

#[derive(Template)]
#[template(path = "compliance_assets.html")]
pub(super) struct AssetsPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<AssetView>,
    kinds: Vec<(&'static str, &'static str)>,
    form: Asset,
    editing: bool,
    error: Option<FormError>,
    imported: Option<String>,
}

pub(super) fn blank_asset() -> Asset {
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
pub(super) struct EditQuery {
    #[serde(default)]
    pub(super) edit: Option<i64>,
    #[serde(default)]
    imported: Option<usize>,
}

pub(super) async fn show_assets(
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

pub(super) async fn assets_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<EditQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    show_assets(&svc, &headers, &p, StatusCode::OK, None, q, None).await
}

pub(super) fn asset_of(f: &Fields) -> Asset {
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

pub(super) async fn save_asset(
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

pub(super) async fn import_assets(
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

pub(super) async fn export_assets(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.assets_csv(&p).await {
        Ok(b) => download(b, "text/csv; charset=utf-8", "assets.csv"),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

pub(super) async fn delete_asset(
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

pub(super) async fn attach_mds(
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

pub(super) async fn mds_file(
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

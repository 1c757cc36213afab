//! 自己点検 in the browser: assessments answered item by item (observed answers shown as
//! such), the asset ledger with CSV import/export and MDS/SDS files, the risk register, the
//! contact chart, the facility's security organisation, and the printable documents.

pub(crate) mod assessments;
mod assets;
mod contacts;
mod profile;
mod risks;

use assessments::*;
use assets::*;
use contacts::*;
use profile::*;
use risks::*;

use mamori_service::ErrorCode;
use std::sync::Arc;

use crate::ui::multipart::{self, Parts};
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
    pub form: Parts,
    pub file: Option<(String, Vec<u8>)>,
}

impl Upload {
    pub(crate) fn get(&self, name: &str) -> String {
        self.form.get(name)
    }
}

pub(crate) async fn read_upload(
    svc: &Service,
    p: &Principal,
    mp: Multipart,
) -> Result<Upload, ServiceError> {
    let mut form = multipart::read(mp).await?;
    svc.check_csrf(p, Some(&form.get("csrf")))?;
    let file = form.files.pop();
    Ok(Upload { form, file })
}

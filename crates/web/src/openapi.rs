//! The OpenAPI 3.1 document at `/api/v1/openapi.json`, built from the same route table the
//! router uses, so a route cannot exist undocumented.

use serde_json::{Value, json};

use crate::ROUTES;

fn obj(props: &[(&str, &str)], required: &[&str]) -> Value {
    let p: serde_json::Map<String, Value> = props
        .iter()
        .map(|(k, t)| {
            let schema = match *t {
                "integer" => json!({ "type": "integer" }),
                "boolean" => json!({ "type": "boolean" }),
                "array" => json!({ "type": "array", "items": { "type": "string" } }),
                "attachments" => json!({ "type": "array", "items": { "type": "object",
                    "properties": { "name": { "type": "string" }, "content_base64": { "type": "string" } },
                    "required": ["name", "content_base64"] } }),
                _ => json!({ "type": "string" }),
            };
            ((*k).to_owned(), schema)
        })
        .collect();
    json!({ "type": "object", "properties": p, "required": required })
}

fn request_schema(op: &str) -> Option<Value> {
    let record = || {
        obj(
            &[
                ("patient_id", "string"),
                ("kind", "string"),
                ("title", "string"),
                ("body", "string"),
                ("author_id", "integer"),
                ("keep_attachments", "array"),
                ("reason", "string"),
                ("base_sha256", "string"),
                ("attachments", "attachments"),
                ("submit", "boolean"),
                ("finalise", "boolean"),
            ],
            &["title"],
        )
    };
    Some(match op {
        "login" => obj(
            &[("login", "string"), ("password", "string")],
            &["login", "password"],
        ),
        "changePassword" => obj(
            &[
                ("login", "string"),
                ("old_password", "string"),
                ("new_password", "string"),
            ],
            &["login", "old_password", "new_password"],
        ),
        "createUser" => obj(
            &[
                ("login", "string"),
                ("display_name", "string"),
                ("role", "string"),
                ("password", "string"),
                ("service", "boolean"),
            ],
            &["login", "display_name", "role"],
        ),
        "resetPassword" => obj(
            &[
                ("temporary_password", "string"),
                ("identity_check", "string"),
            ],
            &["temporary_password", "identity_check"],
        ),
        "setRole" => obj(&[("role", "string")], &["role"]),
        "issueToken" => obj(&[("name", "string"), ("days", "integer")], &["name"]),
        "revokeToken" => obj(&[("token_id", "string")], &["token_id"]),
        "saveRole" => obj(
            &[
                ("code", "string"),
                ("name_ja", "string"),
                ("name_en", "string"),
                ("grants", "array"),
                ("create", "boolean"),
                ("two_factor", "boolean"),
                ("client_cert", "boolean"),
            ],
            &["code", "name_ja", "grants"],
        ),
        "saveRecordKind" => obj(
            &[
                ("code", "string"),
                ("name_ja", "string"),
                ("name_en", "string"),
                ("retention_years", "integer"),
            ],
            &["code", "name_ja", "name_en", "retention_years"],
        ),
        "createPatient" => obj(
            &[
                ("id", "string"),
                ("name_kanji", "string"),
                ("name_kana", "string"),
                ("birth_date", "string"),
                ("sex", "string"),
            ],
            &["id", "name_kanji", "name_kana", "birth_date", "sex"],
        ),
        "createRecord" | "updateDraft" | "amendRecord" => record(),
        "rejectRecord" | "markEnteredInError" => obj(&[("reason", "string")], &["reason"]),
        "completeSecondFactor" | "confirmTotp" => obj(&[("code", "string")], &["code"]),
        "removeTotp" => obj(&[("password", "string")], &["password"]),
        "resetSecondFactor" => obj(&[("identity_check", "string")], &["identity_check"]),
        "setRoleTwoFactor" => obj(&[("required", "boolean")], &["required"]),
        "startEmergency" => obj(&[("reason", "string")], &["reason"]),
        "issueCertificate" => obj(
            &[
                ("kind", "string"),
                ("name", "string"),
                ("device_id", "string"),
                ("days", "integer"),
                ("password", "string"),
            ],
            &["kind", "name", "password"],
        ),
        "revokeCertificate" => obj(&[("reason", "string")], &["reason"]),
        "requestMaintenance" => obj(
            &[
                ("account_id", "integer"),
                ("starts_at", "string"),
                ("ends_at", "string"),
                ("purpose", "string"),
                ("personal_info", "boolean"),
            ],
            &["account_id", "starts_at", "ends_at", "purpose"],
        ),
        "acknowledgeMaintenance" => obj(&[("comment", "string")], &["comment"]),
        "reviewEmergency" => obj(&[("comment", "string")], &["comment"]),
        _ => return None,
    })
}

fn query_params(op: &str) -> Vec<Value> {
    let q = |name: &str, desc: &str| json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": { "type": "string" } });
    match op {
        "searchPatients" => vec![q("q", "患者IDまたはフリガナの前方一致")],
        "emergencyQueue" => vec![q("all", "1 で確認済みも含める")],
        "unusedUsers" | "accountHygiene" => vec![q(
            "days",
            "この日数以上ログインのない有効なアカウント (既定 90)",
        )],
        "diffVersions" => vec![q("from", "比較元の版番号"), q("to", "比較先の版番号")],
        "auditEvents" => vec![
            q("patient", "患者ID"),
            q("actor", "アカウントID"),
            q("action", "操作の前方一致 (例: record.)"),
            q("from", "開始 (YYYY-MM-DD は日本時間の0時、または RFC 3339)"),
            q("to", "終了 (この時刻を含まない)"),
            q("limit", "最大件数 (既定 200、最大 10000)"),
            q("before", "この台帳番号より前 (ページ送り)"),
        ],
        "patientAccessCounts" => vec![
            q("from", "開始"),
            q("to", "終了"),
            q("patient", "患者ID (省略時は全患者)"),
        ],
        _ => vec![],
    }
}

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        params.extend(query_params(r.op));
        let mut op = json!({
            "operationId": r.op,
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": { "description": "成功" },
                "default": { "description": "エラー", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if !r.public {
            op["security"] = json!([{ "bearer": [] }, { "cookie": [] }]);
        }
        if let Some(s) = request_schema(r.op) {
            op["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": s } } });
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mamori API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "診療録等の電子保存 (真正性・見読性・保存性) と改ざん検知台帳の API。\
    すべての閲覧・検索・出力・書き込み・ログインは台帳に記録されます。\
    Cookie で認証した変更系リクエストには X-CSRF-Token ヘッダが必要です。"
        },
        "servers": [{ "url": "/api/v1" }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": "mamori_session" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object",
                        "properties": { "code": { "type": "string" }, "message": { "type": "string" }, "field": { "type": "string" } },
                        "required": ["code", "message"] } }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    /// The served document is the one in `docs/openapi.json`, so every change to the API is
    /// a deliberate, reviewed change to that file (`MAMORI_BLESS=1 cargo test -p mamori-web
    /// openapi` rewrites it).
    #[test]
    fn openapi_document_is_the_published_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let now = serde_json::to_string_pretty(&super::document()).unwrap() + "\n";
        if std::env::var_os("MAMORI_BLESS").is_some() {
            std::fs::write(path, &now).unwrap();
        }
        let published = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            published == now,
            "the API changed; review it and run with MAMORI_BLESS=1 to publish docs/openapi.json"
        );
    }
}

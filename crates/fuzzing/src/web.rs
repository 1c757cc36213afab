//! Targets through the HTTP adapter: the pages' multipart forms, and every JSON body of the
//! API sent with an administrator's token to a real instance in a temporary directory. No
//! input may make a handler fail with 500 (a panic or an unexpected internal error).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use mamori_service::instance::{InitParams, init, open_with};
use mamori_service::{Config, ErrorCode};
use mamori_store::StoreOptions;
use mamori_web::routes::ROUTES;
use tower::ServiceExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

pub const BOUNDARY: &str = "mamori-fuzz-boundary";

/// The pages' multipart reader: fields and files, or a refusal as a malformed or too large
/// form — never anything else.
pub fn multipart_form(data: &[u8]) {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    match runtime().block_on(mamori_web::hostile::read_form(&ct, data.to_vec())) {
        Ok((_, files)) => assert!(files.iter().all(|(_, b)| !b.is_empty())),
        Err(e) => assert!(
            matches!(e.code, ErrorCode::Malformed | ErrorCode::TooLarge),
            "{e:?}"
        ),
    }
}

struct Api {
    _dir: tempfile::TempDir,
    router: Router,
    token: String,
}

/// Operations left out: those that end the fuzzer's own session or start long background
/// work (a backup per input would measure the disk, not the parser).
const SKIPPED: [&str; 8] = [
    "logout",
    "revokeToken",
    "changePassword",
    "runBackup",
    "runRestoreDrill",
    "eraseBackupTarget",
    "recordOfflineCopy",
    "disableUser",
];

pub fn json_routes() -> Vec<&'static mamori_web::routes::Route> {
    ROUTES
        .iter()
        .filter(|r| r.method == "POST" && !SKIPPED.contains(&r.op))
        .collect()
}

async fn send(
    router: &Router,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body)).expect("a request"))
        .await
        .expect("infallible");
    let status = res.status();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, bytes)
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        init(
            &data,
            &InitParams {
                facility: "ファズ診療所",
                admin_login: "admin",
                admin_password: "initial passphrase 1",
            },
        )
        .expect("init");
        let mut cfg = Config::load(&data).expect("config");
        cfg.lockout.failure_delay_ms = 0;
        cfg.server.secure_cookies = false;
        let svc = open_with(
            &data,
            Arc::new(mamori_domain::SystemClock),
            StoreOptions::default(),
            Some(cfg),
        )
        .expect("open");
        let router = mamori_web::router(svc);
        let body = serde_json::json!({
            "login": "admin",
            "old_password": "initial passphrase 1",
            "new_password": "correct horse battery 7",
        });
        let (status, answer) = runtime().block_on(send(
            &router,
            "/api/v1/auth/password",
            None,
            body.to_string().into_bytes(),
        ));
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        let token = v["token"].as_str().expect("a token").to_owned();
        Api {
            _dir: dir,
            router,
            token,
        }
    })
}

/// Sends `body` to the `which`th chosen operation; the status and the answer.
pub fn send_for_test(which: usize, body: &[u8]) -> (u16, String) {
    let (_, status, answer) = call(which, body);
    (
        status.as_u16(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

fn call(which: usize, body: &[u8]) -> (&'static mamori_web::routes::Route, StatusCode, Vec<u8>) {
    let routes = json_routes();
    let route = routes[which % routes.len()];
    let path = format!("/api/v1{}", fill_params(route.path));
    let a = api();
    let (status, answer) =
        runtime().block_on(send(&a.router, &path, Some(&a.token), body.to_vec()));
    (route, status, answer)
}

/// `data[0]` chooses a POST operation (path parameters are `1`), the rest is its body.
pub fn api_json(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let (route, status, answer) = call(usize::from(which), body);
    let path = route.path;
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{} {path}: {}",
        route.op,
        String::from_utf8_lossy(&answer)
    );
}

fn fill_params(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push('1');
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

pub fn api_seeds() -> Vec<Vec<u8>> {
    let bodies: [&[u8]; 5] = [
        b"{}",
        b"null",
        br#"{"name":"\u5c71\u7530 \u592a\u90ce","kana":"\u30e4\u30de\u30c0 \u30bf\u30ed\u30a6","birth_date":"1980-01-02","sex":"male"}"#,
        br#"{"patient_id":"P0001","kind":"progress_note","content":{"title":"t","body":"b"}}"#,
        br#"{"reason":"\u8aa4\u8a18","comment":"x","login":"dr.x","role":"doctor","password":"p"}"#,
    ];
    let n = json_routes().len();
    (0..n)
        .flat_map(|i| {
            bodies.iter().map(move |b| {
                let mut s = vec![i as u8];
                s.extend_from_slice(b);
                s
            })
        })
        .collect()
}

pub fn multipart_seeds() -> Vec<Vec<u8>> {
    let b = BOUNDARY;
    vec![
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n診療録\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--{b}--\r\n"
        )
        .into_bytes(),
        format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nx\r\n--{b}--\r\n").into_bytes(),
    ]
}

//! The sign-in state kept between requests never outlives a change to it: each change below
//! is seen by the very next request with the same token.

mod common;

use common::*;
use mamori_service::ErrorCode;

#[tokio::test]
async fn revocation_deactivation_and_role_changes_are_seen_by_the_next_request() {
    let f = fixture().await;
    let admin = f.admin().await;

    // Sign-out ends the session at once, though the session was just served from memory.
    let (_, token) = f.user_token(&admin, "dr.a", "doctor").await;
    let p = f.svc.authenticate(&token, None).await.unwrap();
    f.svc.authenticate(&token, None).await.unwrap();
    f.svc.logout(&p).await.unwrap();
    let e = f.svc.authenticate(&token, None).await.unwrap_err();
    assert!(
        matches!(
            e.code,
            ErrorCode::Unauthenticated | ErrorCode::SessionExpired
        ),
        "{e:?}"
    );

    // Deactivating the account refuses its open session on the next request.
    let (id, token) = f.user_token(&admin, "dr.b", "doctor").await;
    f.svc.authenticate(&token, None).await.unwrap();
    f.svc.set_account_active(&admin, id, false).await.unwrap();
    assert!(f.svc.authenticate(&token, None).await.is_err());

    // A role that now needs a client certificate refuses a session without one.
    let (_, token) = f.user_token(&admin, "dr.c", "doctor").await;
    f.svc.authenticate(&token, None).await.unwrap();
    f.svc
        .set_role_client_cert(&admin, "doctor".into(), true)
        .await
        .unwrap();
    let e = f.svc.authenticate(&token, None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientCertificateRequired, "{e:?}");
    f.svc
        .set_role_client_cert(&admin, "doctor".into(), false)
        .await
        .unwrap();
    f.svc.authenticate(&token, None).await.unwrap();

    // The idle timeout runs on each request's own clock, not the time the state was read.
    f.clock.advance(24 * 3_600_000);
    assert!(f.svc.authenticate(&token, None).await.is_err());
}

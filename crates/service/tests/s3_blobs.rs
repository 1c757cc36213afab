//! Content files in an S3-compatible bucket (moto on 127.0.0.1): the same content-addressed
//! interface as the data directory, with path-style and virtual-hosted addressing; a bucket
//! that cannot be reached refuses the write clearly (503, in Japanese) and keeps nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mamori_backup::s3::{Credentials, Retry, S3Target};
use mamori_service::error::ServiceError;
use mamori_service::outside::s3_blobs::S3Blobs;
use mamori_store::{BlobStore, StoreError};
use mamori_testkit::moto::{ACCESS_KEY, Moto, SECRET_KEY};

fn creds() -> Credentials {
    Credentials {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        session_token: None,
    }
}

fn bucket(moto: &Moto, name: &str) {
    let (ok, out) = moto.boto(&format!("s3.create_bucket(Bucket='{name}')"));
    assert!(ok, "{out}");
}

fn store(url: &str) -> BlobStore {
    BlobStore::with_backend(Arc::new(S3Blobs::open(url, creds()).unwrap()))
}

fn exercise(blobs: &BlobStore) {
    let pdf = b"%PDF-1.4\n% a scanned referral letter\n".to_vec();
    let (sha, held) = blobs.put_held(&pdf).unwrap();
    assert!(blobs.in_flight(&sha));
    drop(held);
    assert_eq!(blobs.get(&sha).unwrap(), pdf);
    assert!(blobs.check(&sha).unwrap());
    // Stored once however often it is put.
    assert_eq!(blobs.put(&pdf).unwrap(), sha);
    let files = blobs.files().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, sha);
    let age = SystemTime::now()
        .duration_since(files[0].1)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "written just now: {age:?}");
    assert!(blobs.get("../../etc/passwd").is_err());
    blobs.remove(&sha).unwrap();
    assert!(blobs.files().unwrap().is_empty());
    match blobs.remove(&sha) {
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => panic!("removing a missing file: {other:?}"),
    }
    match blobs.get(&sha) {
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => panic!("reading a missing file: {other:?}"),
    }
}

#[test]
fn path_style_and_virtual_hosted_buckets_keep_content_files() {
    let moto = Moto::start();
    bucket(&moto, "clinic-files");
    let path_style = store(&format!(
        "s3://clinic-files/mamori?endpoint={}&region=us-east-1",
        moto.endpoint()
    ));
    exercise(&path_style);
    assert!(
        path_style
            .location(&"ab".repeat(32))
            .starts_with("s3://clinic-files/mamori/ab/"),
        "{}",
        path_style.location(&"ab".repeat(32))
    );

    // Virtual-hosted (bucket.host/key): `.localhost` names are this machine.
    let virtual_hosted = store(&format!(
        "s3://clinic-files/vh?endpoint=http://localhost:{}&region=us-east-1&addressing=virtual",
        moto.port()
    ));
    exercise(&virtual_hosted);
    // Both forms reach the same bucket: what one writes, boto3 finds there.
    let sha = virtual_hosted.put(b"%PDF-1.4\n% virtual\n").unwrap();
    let (ok, out) = moto.boto(&format!(
        "print(s3.get_object(Bucket='clinic-files', Key='vh/{}/{}')['Body'].read())",
        &sha[..2],
        &sha[2..]
    ));
    assert!(ok && out.contains("virtual"), "{out}");

    // An endpoint given as an address cannot carry a bucket name in front.
    assert!(
        S3Blobs::open(
            &format!(
                "s3://clinic-files?endpoint={}&addressing=virtual",
                moto.endpoint()
            ),
            creds()
        )
        .is_err()
    );
}

#[test]
fn an_unreachable_bucket_refuses_the_write_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = S3Target::from_url_with(
        &format!("s3://clinic-files?endpoint=http://127.0.0.1:{port}&lock_days=0"),
        creds(),
    )
    .unwrap()
    .with_retry(Retry {
        attempts: 2,
        first: Duration::from_millis(10),
        longest: Duration::from_millis(20),
    });
    let blobs = BlobStore::with_backend(Arc::new(S3Blobs::from_target(target)));
    let e = blobs.put_held(b"%PDF-1.4\n").unwrap_err();
    assert!(matches!(e, StoreError::Unreachable(_)), "{e:?}");
    assert!(!blobs.in_flight(&"0".repeat(64)));
    let shown = ServiceError::from(e);
    assert_eq!(shown.code.as_str(), "storage_unreachable");
    assert_eq!(shown.code.status(), 503);
    assert!(
        shown.message.contains("何も保存されていません"),
        "{}",
        shown.message
    );
    assert!(
        !shown.message.contains("127.0.0.1"),
        "no addresses for the person"
    );
}

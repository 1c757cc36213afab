//! S3 misbehaving the way real servers do (issue #17.2), between mamori and moto on
//! 127.0.0.1: a storm of `503 SlowDown` answers is ridden out with retries, and a listing
//! answer cut short makes prune stop with an error instead of deleting what the missing part
//! of the listing still needs.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// Two requests in three answered `503 SlowDown`.
    Storm,
    /// Every version listing cut in the middle of its XML.
    CutListings,
}

/// An HTTP proxy in front of moto that injects `Fault`; one request per connection.
struct FaultyProxy {
    port: u16,
    fault: Arc<Mutex<Fault>>,
    injected: Arc<AtomicUsize>,
}

impl FaultyProxy {
    fn start(upstream: u16) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let fault = Arc::new(Mutex::new(Fault::None));
        let injected = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let (f2, i2) = (fault.clone(), injected.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (f, i, n) = (f2.clone(), i2.clone(), seen.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, upstream, &f, &i, &n);
                });
            }
        });
        FaultyProxy {
            port,
            fault,
            injected,
        }
    }

    fn set(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Reads a head (up to the empty line) and returns it with the Content-Length it names.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<(Vec<String>, usize)>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let len = lines
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    Ok(Some((lines, len)))
}

fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..n]);
        if n == 0 {
            return Ok(body);
        }
    }
}

fn handle(
    client: TcpStream,
    upstream: u16,
    fault: &Mutex<Fault>,
    injected: &AtomicUsize,
    seen: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some((head, len)) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let request_line = head[0].clone();
    let fault = *fault.lock().unwrap();
    let n = seen.fetch_add(1, Ordering::SeqCst);
    if fault == Fault::Storm && n % 3 != 2 {
        injected.fetch_add(1, Ordering::SeqCst);
        let xml = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        write!(
            client,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    for line in head
        .iter()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
    {
        write!(up, "{line}\r\n")?;
    }
    write!(up, "Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut ur = BufReader::new(up);
    let Some((rhead, rlen)) = read_head(&mut ur)? else {
        return Ok(());
    };
    let chunked = rhead
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let mut rbody = if chunked {
        read_chunked(&mut ur)?
    } else if rhead
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("content-length:"))
    {
        let mut b = vec![0u8; rlen];
        ur.read_exact(&mut b)?;
        b
    } else {
        let mut b = Vec::new();
        ur.read_to_end(&mut b)?;
        b
    };
    let listing = request_line.starts_with("GET ") && request_line.contains("versions");
    if fault == Fault::CutListings && listing && rhead[0].contains(" 200") {
        injected.fetch_add(1, Ordering::SeqCst);
        rbody.truncate(rbody.len() / 2);
    }
    write!(client, "{}\r\n", rhead[0])?;
    for line in rhead[1..].iter().filter(|l| {
        let l = l.to_ascii_lowercase();
        !l.starts_with("content-length:")
            && !l.starts_with("transfer-encoding:")
            && !l.starts_with("connection:")
    }) {
        write!(client, "{line}\r\n")?;
    }
    write!(
        client,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        rbody.len()
    )?;
    client.write_all(&rbody)?;
    Ok(())
}

fn mamori_s3_fast_retries(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(args)
        .envs(s3_env())
        .env("MAMORI_S3_RETRY", "10,5,40")
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}

fn snapshots(target: &str, key: &str) -> Vec<String> {
    let (ok, out) = mamori_s3(&[
        "backup",
        "list",
        "--target",
        target,
        "--key-file",
        key,
        "--json",
    ]);
    assert!(ok, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_503_storm_is_ridden_out_and_a_cut_listing_stops_prune() {
    let moto = Moto::start();
    let (ok, out) = moto.boto("s3.create_bucket(Bucket='worm', ObjectLockEnabledForBucket=True)");
    assert!(ok, "{out}");
    let proxy = FaultyProxy::start(moto.endpoint().rsplit(':').next().unwrap().parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    populate(&data);
    let key = dir.path().join("key.txt");
    let o = mamori(&["backup", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let (k, d) = (key.to_str().unwrap(), data.to_str().unwrap());
    // lock_days=0: pruning must be able to delete here; what is tested is what it deletes.
    let target = format!(
        "s3://worm/clinic?endpoint={}&region=us-east-1&lock_days=0",
        proxy.endpoint()
    );

    let run = [
        "backup",
        "run",
        "--data",
        d,
        "--target",
        &target,
        "--key-file",
        k,
    ];
    // Two requests in three refused with SlowDown, for the whole backup: it still completes.
    proxy.set(Fault::Storm);
    let (ok, out) = mamori_s3_fast_retries(&run);
    assert!(ok, "{out}");
    let storm = proxy.injected.swap(0, Ordering::SeqCst);
    assert!(storm >= 10, "only {storm} answers were 503");
    proxy.set(Fault::None);
    for _ in 0..2 {
        let (ok, out) = mamori_s3(&run);
        assert!(ok, "{out}");
    }
    let before = snapshots(&target, k);
    assert_eq!(before.len(), 3);

    // A listing cut in half: prune refuses to go on (and deletes nothing).
    proxy.set(Fault::CutListings);
    let (ok, out) = mamori_s3_fast_retries(&[
        "backup",
        "prune",
        "--target",
        &target,
        "--keep",
        "1",
        "--key-file",
        k,
        "--data",
        d,
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("読み取れません"), "{out}");
    assert!(proxy.injected.load(Ordering::SeqCst) > 0);
    proxy.set(Fault::None);
    assert_eq!(snapshots(&target, k), before, "nothing was deleted");
    let (ok, out) = mamori_s3(&["backup", "verify", "--target", &target, "--key-file", k]);
    assert!(ok && out.contains("検証結果: OK"), "{out}");

    // With honest answers it prunes, and what is left restores.
    let (ok, out) = mamori_s3(&[
        "backup",
        "prune",
        "--target",
        &target,
        "--keep",
        "1",
        "--key-file",
        k,
        "--data",
        d,
    ]);
    assert!(ok, "{out}");
    assert_eq!(snapshots(&target, k), before[2..].to_vec());
    let (ok, out) = mamori_s3(&["backup", "verify", "--target", &target, "--key-file", k]);
    assert!(ok && out.contains("検証結果: OK"), "{out}");
    let restored = dir.path().join("restored");
    let (ok, out) = mamori_s3(&[
        "restore",
        "--target",
        &target,
        "--snapshot",
        "latest",
        "--to",
        restored.to_str().unwrap(),
        "--key-file",
        k,
    ]);
    assert!(ok, "{out}");
}

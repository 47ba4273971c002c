//! The `pushman` binary with `[tls]`: wss:// browsers (tungstenite over rustls, trusting a
//! CA made here) get pushes from the text API; a plain listener beside it; a stalled
//! handshake is cut at `handshake_timeout`; garbage instead of a ClientHello is closed
//! while others are served; `reload` serves a renewed certificate to new connections
//! while old ones keep receiving, and keeps it when the new files are bad; `status`
//! shows the certificate; a bad certificate at start is named.

mod common;

use common::{daemon::*, tls::*, *};
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};
use tungstenite::Message;

/// Writes `cert`'s chain and key where `[tls]` points.
fn install(dir: &TempDir, cert: &ServerCert) {
    std::fs::write(dir.path("chain.pem"), &cert.chain_pem).unwrap();
    std::fs::write(dir.path("key.pem"), &cert.key_pem).unwrap();
}

fn tls_config(dir: &TempDir, extra: &str) -> std::path::PathBuf {
    dir.config(&format!(
        "{extra}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nws_plain = \"127.0.0.1:0\"\n",
        dir.path("chain.pem").display(),
        dir.path("key.pem").display()
    ))
}

/// A wss:// browser bound to `uid`, confirmed by a push round trip through the text port.
fn browser(p: &Pushman, ca: &TestCa, uid: &str) -> Ws {
    let mut ws = wss_connect(p.ws, "/", ca);
    bind(p, &mut ws, uid);
    ws
}

fn bind(p: &Pushman, ws: &mut Ws, uid: &str) {
    ws.send(Message::text(uid)).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    // Until the uid is bound, pushes to it fail.
    while push(p, uid, "hello") != "ok" {
        assert!(Instant::now() < deadline, "uid {uid} never came online");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ws_read_text(ws), line(uid, "hello"));
}

/// push.php's line for `uid`: the browser receives it whole.
fn line(uid: &str, text: &str) -> String {
    serde_json::json!({ "uid": uid, "percent": text }).to_string()
}

/// Sends [`line`] on the text port; its answer.
fn push(p: &Pushman, uid: &str, text: &str) -> String {
    let mut backend = tcp_connect(p.text);
    request_line(&mut backend, &line(uid, text))
}

fn wait_for_log(file: &Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} x{count} never in {}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the server closes; returns what came and how long it took.
fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, started.elapsed())
            }
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn wss_browsers_and_a_plain_listener_get_pushes_and_status_shows_the_certificate() {
    let dir = TempDir::new("tls-push");
    let ca = TestCa::new();
    install(&dir, &ca.server_cert("push"));
    let p = Pushman::start(&tls_config(&dir, ""));
    let mut secure = browser(&p, &ca, "alice");
    assert_eq!(push(&p, "alice", "88%"), "ok");
    assert_eq!(ws_read_text(&mut secure), line("alice", "88%"));
    // The plain listener serves the same clients: a broadcast reaches both.
    let plain_addr = recorded_addr(&dir.path("pushman.pid"), "websocket-plain")
        .expect("the plain listener in the pid file");
    let mut plain = ws_connect(plain_addr, "/");
    bind(&p, &mut plain, "bob");
    let mut backend = tcp_connect(p.text);
    let broadcast = r#"{"broadcast":true,"percent":"all"}"#;
    assert_eq!(request_line(&mut backend, broadcast), "ok");
    assert_eq!(ws_read_text(&mut secure), broadcast);
    assert_eq!(ws_read_text(&mut plain), broadcast);
    // A plain client on the TLS port gets no plaintext answer.
    let mut wrong = tcp_connect(p.ws);
    wrong
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let (answer, _) = until_closed(&mut wrong);
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    let (code, body) = http_get(p.http, "/status", "").unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["tls"]["not_after"], 2_222_121_600u64, "{body}");
    assert!(
        status["tls"]["expires_in_days"].as_u64().unwrap() > 4000,
        "{body}"
    );
    let names: Vec<_> = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"websocket-plain".to_string()), "{names:?}");
    assert_eq!(status["connections"], 2, "{body}");
    let out = cli(
        &[
            "status",
            "--config",
            dir.path("pushman.toml").to_str().unwrap(),
        ],
        &dir.0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tls on   cert "), "{text}");
    p.stop();
}

#[test]
fn a_stalled_handshake_is_cut_and_garbage_is_closed_while_others_are_served() {
    let dir = TempDir::new("tls-bad-clients");
    let ca = TestCa::new();
    install(&dir, &ca.server_cert("bad"));
    let p = Pushman::start(&tls_config(&dir, "[heartbeat]\nhandshake_timeout = 1.0\n"));
    let mut good = browser(&p, &ca, "carol");
    for garbage in [
        &[0xffu8; 600][..],
        &[0x16, 0x03, 0x01, 0x00, 0x04, 0x0e, 0, 0, 0],
    ] {
        let mut bad = tcp_connect(p.ws);
        bad.write_all(garbage).unwrap();
        let (answer, took) = until_closed(&mut bad);
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        assert!(took < Duration::from_millis(900), "closed after {took:?}");
        assert_eq!(push(&p, "carol", "still"), "ok");
        assert_eq!(ws_read_text(&mut good), line("carol", "still"));
    }
    // Silent after connecting: cut by the handshake timeout (1 s, checked every 250 ms).
    let mut stalled = tcp_connect(p.ws);
    let (answer, took) = until_closed(&mut stalled);
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    assert_eq!(push(&p, "carol", "after"), "ok");
    assert_eq!(ws_read_text(&mut good), line("carol", "after"));
    p.stop();
}

#[test]
fn reload_serves_a_renewed_certificate_to_new_connections_and_keeps_it_over_bad_files() {
    let dir = TempDir::new("tls-reload");
    let ca = TestCa::new();
    let (first, second) = (ca.server_cert("first"), ca.server_cert("second"));
    install(&dir, &first);
    let p = Pushman::start(&tls_config(&dir, ""));
    let log = dir.path("stderr.log");
    let mut old = browser(&p, &ca, "dave");
    assert_eq!(peer_leaf(&old), first.leaf);

    install(&dir, &second);
    signal(p.child.id(), "HUP");
    wait_for_log(&log, "certificate ", 1);
    wait_for_log(&log, "new connections get it", 1);
    let mut new = browser(&p, &ca, "erin");
    assert_eq!(peer_leaf(&new), second.leaf);
    assert_eq!(push(&p, "dave", "old one"), "ok");
    assert_eq!(ws_read_text(&mut old), line("dave", "old one"));

    // A bad pair (the key of another certificate), then a missing file: both logged, and
    // the renewed certificate stays in use.
    std::fs::write(dir.path("key.pem"), &first.key_pem).unwrap();
    signal(p.child.id(), "HUP");
    let text = wait_for_log(&log, "keeping the certificate in use", 1);
    assert!(text.contains("key.pem"), "{text}");
    std::fs::remove_file(dir.path("chain.pem")).unwrap();
    signal(p.child.id(), "HUP");
    let text = wait_for_log(&log, "keeping the certificate in use", 2);
    assert!(text.contains("chain.pem"), "{text}");
    let third = wss_connect(p.ws, "/", &ca);
    assert_eq!(peer_leaf(&third), second.leaf);
    for (ws, uid) in [(&mut old, "dave"), (&mut new, "erin")] {
        assert_eq!(push(&p, uid, "still"), "ok");
        assert_eq!(ws_read_text(ws), line(uid, "still"));
    }
    p.stop();
}

#[test]
fn a_bad_certificate_at_start_is_named_and_nothing_listens() {
    let dir = TempDir::new("tls-bad-start");
    std::fs::write(dir.path("chain.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path("key.pem"), "not a key").unwrap();
    let config = tls_config(&dir, "");
    let out = cli(&["start", "--config", config.to_str().unwrap()], &dir.0);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chain.pem") && err.contains("no PEM CERTIFICATE"),
        "{err}"
    );
    // Half a pair is a config error.
    let half = dir.config("[tls]\ncert = \"chain.pem\"\n");
    let out = cli(&["start", "--config", half.to_str().unwrap()], &dir.0);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.cert and tls.key"), "{err}");
}

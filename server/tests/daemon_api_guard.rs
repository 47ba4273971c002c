//! The `pushman` APIs against hostile and careless callers: web pages (CSRF, DNS
//! rebinding), secret guessing, HEAD, malformed and too-deep lines, pushes to connections
//! that are closing. Raw sockets, so every header is exactly what a browser or attacker
//! would send.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// One HTTP/1.1 request with `Connection: close`; returns status, head and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tcp_connect(addr);
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        request += &format!("Host: {addr}\r\n");
    }
    for h in headers {
        request += &format!("{h}\r\n");
    }
    request += "\r\n";
    request += body;
    stream.write_all(request.as_bytes()).unwrap();
    let response = String::from_utf8(read_to_end(&mut stream)).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head[9..12].parse().unwrap();
    (status, head.to_string(), body.to_string())
}

const JSON: &str = "Content-Type: application/json";

fn browser(p: &Pushman, uid: &str) -> Ws {
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let mut api = tcp_connect(p.text);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while command(&mut api, json!({"cmd":"online","uid":uid}))["connections"] == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{uid} never came online"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    ws
}

#[track_caller]
fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

/// Whether `ws` receives a text message within `wait`.
fn receives(ws: &mut Ws, wait: Duration) -> Option<String> {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(wait)).unwrap();
    }
    match ws.read() {
        Ok(tungstenite::Message::Text(t)) => Some(t.to_string()),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn web_pages_cannot_use_the_http_api_but_backends_can() {
    let dir = TempDir::new("csrf");
    let p = Pushman::start(&dir.config(
        "[auth]\napi_origins = [\"https://admin.example\"]\napi_hosts = [\"push.internal\"]\n",
    ));
    let mut tab = browser(&p, "victim");
    let push = r#"{"uid":"victim","data":"forged"}"#;

    // A form or fetch from another site: Origin set, text/plain or JSON.
    let (status, _, body) = http(
        p.http,
        "POST",
        "/push",
        &["Origin: https://evil.example", "Content-Type: text/plain"],
        push,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth.api_origins"), "{body}");
    let (status, _, _) = http(
        p.http,
        "POST",
        "/push",
        &["Origin: https://evil.example", JSON],
        push,
    );
    assert_eq!(status, 403);
    // An HTML form without Origin (old browsers) still cannot send JSON.
    let (status, _, body) = http(p.http, "POST", "/push", &["Content-Type: text/plain"], push);
    assert_eq!(status, 415, "{body}");
    let (status, _, _) = http(p.http, "POST", "/", &[], r#"{"uid":"victim"}"#);
    assert_eq!(status, 415);
    // DNS rebinding: a hostile name resolving to 127.0.0.1.
    let (status, _, body) = http(
        p.http,
        "GET",
        "/connections",
        &["Host: evil.example:2121"],
        "",
    );
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("victim"));
    assert_eq!(
        receives(&mut tab, Duration::from_millis(300)),
        None,
        "a refused push was delivered"
    );

    // The other side: backends, listed names and origins are served.
    for host in [
        format!("Host: {}", p.http),
        "Host: localhost:2121".into(),
        "Host: PUSH.internal".into(),
        "Host: [::1]:2121".into(),
    ] {
        let (status, _, body) = http(p.http, "GET", "/connections", &[&host], "");
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("victim"));
    }
    let (status, _, _) = http(p.http, "POST", "/push", &[JSON], push);
    assert_eq!(status, 200);
    assert_eq!(receives(&mut tab, TIMEOUT).as_deref(), Some("forged"));
    let (status, _, _) = http(
        p.http,
        "POST",
        "/push",
        &[
            "Origin: https://admin.example",
            "Content-Type: application/json; charset=utf-8",
        ],
        push,
    );
    assert_eq!(status, 200);
    assert_eq!(receives(&mut tab, TIMEOUT).as_deref(), Some("forged"));

    let (_, _, status) = http(p.http, "GET", "/status", &[], "");
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["lines_refused"], 5, "{status}");
}

#[test]
fn head_bearer_case_and_the_http_status_of_compat_lines() {
    let dir = TempDir::new("head");
    let p = Pushman::start(&dir.config("[auth]\napi_secret = \"s3cret\"\n"));
    let (status, head, body) = http(
        p.http,
        "HEAD",
        "/status",
        &["Authorization: bearer s3cret"],
        "",
    );
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD has no body: {body}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 10, "the GET body's length: {head}");
    let (status, head, _) = http(
        p.http,
        "HEAD",
        "/push",
        &["Authorization: BEARER s3cret"],
        "",
    );
    assert_eq!(status, 405);
    assert!(head.contains("Allow: POST"), "{head}");

    let auth = "Authorization: Bearer s3cret";
    // A push.php line: 404 when the uid is offline, 400 when it is not understood.
    let (status, _, body) = http(p.http, "POST", "/", &[auth, JSON], r#"{"uid":"nobody"}"#);
    assert_eq!((status, body.as_str()), (404, "fail\n"));
    let (status, _, body) = http(p.http, "POST", "/", &[auth, JSON], r#"{"uid":["x"]}"#);
    assert_eq!((status, body.as_str()), (400, "fail\n"));
}

#[test]
fn wrong_api_secrets_are_throttled_per_address() {
    let dir = TempDir::new("throttle");
    let p = Pushman::start(&dir.config("[auth]\napi_secret = \"s3cret\"\n"));
    for _ in 0..10 {
        let (status, _, _) = http(
            p.http,
            "GET",
            "/totals",
            &["Authorization: Bearer guess"],
            "",
        );
        assert_eq!(status, 401);
    }
    // Used up: even the right secret waits for the window, on both APIs.
    let (status, head, _) = http(
        p.http,
        "GET",
        "/totals",
        &["Authorization: Bearer s3cret"],
        "",
    );
    assert_eq!(status, 429);
    assert!(head.contains("Retry-After: 60"), "{head}");
    let mut api = tcp_connect(p.text);
    let reply = command(&mut api, json!({"cmd":"auth","secret":"s3cret"}));
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("too many"),
        "{reply}"
    );
}

#[test]
fn a_too_deep_extended_command_gets_a_json_error_and_a_closing_tab_is_reported() {
    let dir = TempDir::new("deep");
    let p = Pushman::start(&dir.config(""));
    let mut api = tcp_connect(p.text);
    let deep = format!(
        r#"{{"cmd":"push","uid":"u","data":{}{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    let reply: Value = serde_json::from_str(&request_line(&mut api, &deep)).expect("a JSON error");
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].is_string());
    let deep_compat = format!(
        r#"{{"uid":"u","data":{}{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    assert_eq!(request_line(&mut api, &deep_compat), "fail");

    // A kick and a push in one write: the push finds the tab closing, and says so.
    let _tab = browser(&p, "k");
    let kick = json!({"cmd":"kick","uid":"k"}).to_string();
    let push = json!({"cmd":"push","uid":"k","data":"late"}).to_string();
    api.write_all(format!("{kick}\n{push}\n").as_bytes())
        .unwrap();
    let mut reader = std::io::BufReader::new(api.try_clone().unwrap());
    let kicked: Value = serde_json::from_str(&read_line(&mut reader)).unwrap();
    assert_eq!(kicked["closed"], 1);
    let pushed: Value = serde_json::from_str(&read_line(&mut reader)).unwrap();
    assert_eq!(
        pushed["receipt"],
        json!({"sent": 0, "offline": ["k"], "dropped": 0, "closing": 1, "queued": []}),
        "{pushed}"
    );
    let (_, _, body) = http(p.http, "GET", "/status", &[], "");
    let status: Value = serde_json::from_str(&body).unwrap();
    // The deep extended line is refused; the deep push.php line is understood (its
    // payload is skipped unread) and fails as offline, like the push to the closing tab.
    assert_eq!(status["lines_refused"], 1, "{status}");
    assert_eq!(status["pushes"]["fail"], 2, "{status}");
}

#[test]
fn errors_the_http_codec_raises_are_json_too() {
    let dir = TempDir::new("json413");
    let p = Pushman::start(&dir.config("[limits]\nmax_api_line = 64\n"));
    let body = format!(r#"{{"uid":"u","data":"{}"}}"#, "x".repeat(100));
    let (status, head, body) = http(p.http, "POST", "/push", &[JSON], &body);
    assert_eq!(status, 413, "{head}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    let error: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(error["ok"], false);
    assert!(error["error"].as_str().unwrap().contains("64"), "{error}");
    // A request within the limit is still served on a new connection.
    let (status, _, _) = http(
        p.http,
        "POST",
        "/push",
        &[JSON],
        r#"{"uid":"u","data":"x"}"#,
    );
    assert_eq!(status, 200);
}

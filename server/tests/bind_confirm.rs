//! The bound frame (issue 9 item 2): a browser that opts in with `?pushman=1` gets
//! `{"pushman":"bound","uid":UID}` as its first frame once its uid or token is accepted; a
//! plain push.php client gets pushes only, byte for byte. Against the real binary.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    net::TcpStream,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tungstenite::Message;

fn connect_and_send(p: &Pushman, path: &str, first: &str) -> Ws {
    let mut ws = ws_connect(p.ws, path);
    ws.send(Message::text(first)).unwrap();
    ws.flush().unwrap();
    ws
}

/// The first message the server sends, whatever its kind (pings skipped).
#[track_caller]
fn first_frame(ws: &mut Ws) -> Message {
    loop {
        match ws.read().expect("read a WebSocket message") {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}

#[track_caller]
fn bound_uid(ws: &mut Ws) -> String {
    let frame = first_frame(ws);
    let Message::Text(text) = frame else {
        panic!("expected the bound frame, got {frame:?}");
    };
    let v: Value = serde_json::from_str(&text).expect("the bound frame is JSON");
    assert_eq!(v["pushman"], "bound", "{text}");
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "exactly pushman and uid: {text}"
    );
    v["uid"].as_str().expect("uid is a string").to_string()
}

/// Pushes the push.php line `line` until it reaches someone (the uid binds asynchronously).
#[track_caller]
fn push_until_ok(api: &mut TcpStream, line: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while request_line(api, line) != "ok" {
        assert!(Instant::now() < deadline, "{line} never reached anyone");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn opted_in_client_gets_the_bound_frame_first_then_pushes() {
    let dir = TempDir::new("bind-confirm-uid");
    let p = Pushman::start(&dir.config(""));
    // A uid that needs JSON escaping comes back intact.
    let uid = "u1 \"quoted\" é\\";
    let mut ws = connect_and_send(&p, "/?pushman=1", uid);
    assert_eq!(bound_uid(&mut ws), uid);
    // Bound means bound: the very next push reaches it.
    let mut api = tcp_connect(p.text);
    let line = json!({"uid": uid, "percent": "88%"}).to_string();
    assert_eq!(request_line(&mut api, &line), "ok");
    assert_eq!(ws_read_text(&mut ws), line);
    // Other query parameters beside it are fine.
    let mut other = connect_and_send(&p, "/path?x=y&pushman=1", "u2");
    assert_eq!(bound_uid(&mut other), "u2");
}

#[test]
fn plain_client_gets_only_pushes_byte_for_byte() {
    let dir = TempDir::new("bind-confirm-plain");
    let p = Pushman::start(&dir.config(""));
    let mut plain = connect_and_send(&p, "/", "uid1");
    // pushman=0 or any other value is not an opt-in either.
    let mut zero = connect_and_send(&p, "/?pushman=0", "uid1");
    let mut api = tcp_connect(p.text);
    let line = r#"{"uid":"uid1","percent":"88%"}"#;
    // Both bound (ok means at least one; check the count), then the push.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let reply = request_line(&mut api, r#"{"cmd":"online","uid":"uid1"}"#);
        if serde_json::from_str::<Value>(&reply).unwrap()["connections"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "uid1 never bound twice: {reply}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(request_line(&mut api, line), "ok");
    for ws in [&mut plain, &mut zero] {
        assert_eq!(first_frame(ws), Message::text(line));
    }
}

#[test]
fn token_mode_confirms_the_tokens_uid() {
    let dir = TempDir::new("bind-confirm-token");
    let p = Pushman::start(&dir.config("[auth]\nmode = \"token\"\nsecret = \"k3y\"\n"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mint = |uid: &str| pushman::push::token::mint(b"k3y", uid, now + 60);

    // Token in the URL: bound during the handshake; the frame follows the 101 at once.
    let mut in_url = ws_connect(p.ws, &format!("/?token={}&pushman=1", mint("alice")));
    assert_eq!(bound_uid(&mut in_url), "alice");
    // Token as the first message.
    let mut first = connect_and_send(&p, "/?pushman=1", &mint("bob"));
    assert_eq!(bound_uid(&mut first), "bob");
    let mut api = tcp_connect(p.text);
    push_until_ok(&mut api, r#"{"uid":"bob","n":1}"#);
    assert_eq!(ws_read_text(&mut first), r#"{"uid":"bob","n":1}"#);

    // A refused token gets its 1008 and no bound frame.
    let mut bad = connect_and_send(&p, "/?pushman=1", "garbage");
    match first_frame(&mut bad) {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason.as_str(), "invalid token");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    let expired = pushman::push::token::mint(b"k3y", "carol", now - 10);
    let mut late = ws_connect(p.ws, &format!("/?pushman=1&token={expired}"));
    match first_frame(&mut late) {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason.as_str(), "token expired");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }

    // Plain token clients (no opt-in) still get pushes only.
    let mut plain = ws_connect(p.ws, &format!("/?token={}", mint("dave")));
    push_until_ok(&mut api, r#"{"uid":"dave"}"#);
    assert_eq!(first_frame(&mut plain), Message::text(r#"{"uid":"dave"}"#));
}

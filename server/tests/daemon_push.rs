//! The `pushman` binary: push.php compatibility and the extended commands, over the text
//! port with a raw `TcpStream` and over the HTTP API with a real HTTP client.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{io::Write, net::TcpStream, time::Duration};

/// A browser bound to `uid` (waits until the daemon reports it online).
fn browser(p: &Pushman, uid: &str) -> Ws {
    let before = online(p, uid);
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while online(p, uid) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "uid {uid} never came online"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    ws
}

fn online(p: &Pushman, uid: &str) -> u64 {
    let mut backend = tcp_connect(p.text);
    let reply = command(&mut backend, json!({"cmd":"online","uid":uid}));
    reply["connections"].as_u64().unwrap()
}

/// Sends an extended command on the text port; returns the JSON reply.
#[track_caller]
fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

fn start(dir: &TempDir, extra: &str) -> Pushman {
    Pushman::start(&dir.config(extra))
}

#[test]
fn push_php_flow_is_byte_exact() {
    let dir = TempDir::new("compat");
    let p = start(&dir, "");
    let mut tab = browser(&p, "uid1");
    let mut backend = tcp_connect(p.text);
    let line = r#"{"uid":"uid1","percent":"88%"}"#;
    backend.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = [0u8; 3];
    std::io::Read::read_exact(&mut backend, &mut reply).unwrap();
    assert_eq!(&reply, b"ok\n");
    assert_eq!(ws_read_text(&mut tab), line);
    assert_eq!(request_line(&mut backend, r#"{"uid":"nobody"}"#), "fail");
}

#[test]
fn pipelined_push_php_lines_reach_every_tab_in_order_and_are_counted() {
    let dir = TempDir::new("compatcount");
    let p = start(&dir, "");
    let mut tabs = [browser(&p, "two"), browser(&p, "two")];
    let mut backend = tcp_connect(p.text);
    let (first, second) = (r#"{"uid":"two","n":1}"#, r#"{"uid":"two","n":2}"#);
    // One write, read after: the burst path answers each line in order.
    let burst = format!("{first}\n{{\"uid\":\"gone\",\"n\":0}}\n{second}\n");
    backend.write_all(burst.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(backend.try_clone().unwrap());
    let replies: Vec<String> = (0..3).map(|_| read_line(&mut reader)).collect();
    assert_eq!(replies, ["ok", "fail", "ok"]);
    for tab in &mut tabs {
        assert_eq!(ws_read_text(tab), first);
        assert_eq!(ws_read_text(tab), second);
    }
    let mut resp = ureq::get(&format!("http://{}/status", p.http))
        .call()
        .unwrap();
    let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        status["pushes"],
        json!({"ok": 2, "fail": 1, "frames_sent": 4, "dropped": 0}),
        "{status}"
    );
}

#[test]
fn bad_lines_fail_and_everyone_else_keeps_being_served() {
    let dir = TempDir::new("badlines");
    let p = start(&dir, "");
    let mut tab = browser(&p, "alice");
    let mut backend = tcp_connect(p.text);
    for bad in [
        "nope",
        "[1,2]",
        r#"{"uid":["x"]}"#,
        r#"{"uid":7}"#,
        r#"{"percent":1}"#,
        "{\"uid\":\"al",
    ] {
        assert_eq!(request_line(&mut backend, bad), "fail", "{bad}");
    }
    let bad_cmd = command(&mut backend, json!({"cmd":"frobnicate"}));
    assert_eq!(bad_cmd["ok"], false);
    assert!(
        bad_cmd["error"].as_str().unwrap().contains("frobnicate"),
        "{bad_cmd}"
    );
    assert_eq!(
        request_line(&mut backend, r#"{"uid":"alice","still":"served"}"#),
        "ok"
    );
    assert_eq!(
        ws_read_text(&mut tab),
        r#"{"uid":"alice","still":"served"}"#
    );
}

/// A text frame must be UTF-8 (RFC 6455 §5.6): a browser closes with 1007 on one that is
/// not. So a line with invalid UTF-8 anywhere, even in a value nobody reads, is not JSON
/// (RFC 8259 §8.1) and is refused, not forwarded to the uid's (or everyone's) tabs.
#[test]
fn a_line_that_is_not_utf8_fails_and_reaches_no_tab() {
    let dir = TempDir::new("notutf8");
    let p = start(&dir, "");
    let mut tab = browser(&p, "alice");
    let mut backend = tcp_connect(p.text);
    let mut reader = std::io::BufReader::new(backend.try_clone().unwrap());
    for bad in [
        &b"{\"uid\":\"alice\",\"pad\":\"\xff\"}\n"[..],
        b"{\"uid\":\"alice\",\"pad\":\"\xc3\"}\n",
        b"{\"broadcast\":true,\"note\":\"\xed\xa0\x80\"}\n",
        b"{\"uid\":\"al\xffice\"}\n",
    ] {
        backend.write_all(bad).unwrap();
        assert_eq!(
            read_line(&mut reader),
            "fail",
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // The tab saw none of them: the next frame it reads is the next good line, intact.
    let good = r#"{"uid":"alice","pad":"\u00ff é"}"#;
    assert_eq!(request_line(&mut backend, good), "ok");
    assert_eq!(ws_read_text(&mut tab), good);
}

#[test]
fn an_oversized_backend_line_answers_fail_and_closes_only_that_backend() {
    let dir = TempDir::new("bigline");
    let p = start(&dir, "[limits]\nmax_api_line = 1024\n");
    let mut tab = browser(&p, "v");
    let mut big = tcp_connect(p.text);
    big.write_all(&vec![b'x'; 4096]).unwrap();
    let answer = String::from_utf8(read_to_end(&mut big)).unwrap();
    assert_eq!(answer, "fail\n");
    let mut other = tcp_connect(p.text);
    assert_eq!(
        request_line(&mut other, r#"{"uid":"v","after":"big line"}"#),
        "ok"
    );
    assert_eq!(ws_read_text(&mut tab), r#"{"uid":"v","after":"big line"}"#);
}

#[test]
fn two_tabs_both_receive_and_the_older_closing_keeps_the_newer_bound() {
    let dir = TempDir::new("tabs");
    let p = start(&dir, "");
    let mut old = browser(&p, "u");
    let mut new = browser(&p, "u");
    let mut backend = tcp_connect(p.text);
    assert_eq!(request_line(&mut backend, r#"{"uid":"u","n":1}"#), "ok");
    assert_eq!(ws_read_text(&mut old), r#"{"uid":"u","n":1}"#);
    assert_eq!(ws_read_text(&mut new), r#"{"uid":"u","n":1}"#);
    old.close(None).unwrap();
    while old.read().is_ok() {}
    let deadline = std::time::Instant::now() + TIMEOUT;
    while online(&p, "u") != 1 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(request_line(&mut backend, r#"{"uid":"u","n":2}"#), "ok");
    assert_eq!(ws_read_text(&mut new), r#"{"uid":"u","n":2}"#);
}

#[test]
fn groups_lists_broadcast_and_receipts() {
    let dir = TempDir::new("groups");
    let p = start(&dir, "");
    let mut a = browser(&p, "a");
    let mut b = browser(&p, "b");
    let mut c = browser(&p, "c");
    let mut api = tcp_connect(p.text);
    for uid in ["a", "b", "ghost"] {
        assert_eq!(
            command(&mut api, json!({"cmd":"join","group":"room","uid":uid}))["added"],
            true
        );
    }
    let members = command(&mut api, json!({"cmd":"members","group":"room"}));
    assert_eq!(members["members"], json!(["a", "b", "ghost"]));

    let r = command(
        &mut api,
        json!({"cmd":"push","group":"room","data":"to room"}),
    );
    assert_eq!(
        r["receipt"],
        json!({"sent": 2, "offline": ["ghost"], "dropped": 0, "closing": 0, "queued": []}),
        "{r}"
    );
    assert_eq!(ws_read_text(&mut a), "to room");
    assert_eq!(ws_read_text(&mut b), "to room");

    let r = command(
        &mut api,
        json!({"cmd":"push","uids":["c","zed"],"data":{"k":1}}),
    );
    assert_eq!(
        r["receipt"],
        json!({"sent": 1, "offline": ["zed"], "dropped": 0, "closing": 0, "queued": []}),
        "{r}"
    );
    assert_eq!(ws_read_text(&mut c), r#"{"k":1}"#);

    let r = command(&mut api, json!({"cmd":"push","all":true,"data":"everyone"}));
    assert_eq!(r["receipt"]["sent"], 3);
    for tab in [&mut a, &mut b, &mut c] {
        assert_eq!(ws_read_text(tab), "everyone");
    }
    assert_eq!(request_line(&mut api, r#"{"broadcast":true,"v":1}"#), "ok");
    for tab in [&mut a, &mut b, &mut c] {
        assert_eq!(ws_read_text(tab), r#"{"broadcast":true,"v":1}"#);
    }

    let list = command(&mut api, json!({"cmd":"online_list","offset":1,"limit":1}));
    assert_eq!(
        (list["total"].clone(), list["uids"].clone()),
        (json!(3), json!(["b"]))
    );
    let totals = command(&mut api, json!({"cmd":"totals"}));
    assert_eq!(
        (totals["uids"].clone(), totals["connections"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(
        command(&mut api, json!({"cmd":"leave","group":"room","uid":"a"}))["removed"],
        true
    );

    let kicked = command(&mut api, json!({"cmd":"kick","uid":"c","reason":"bye"}));
    assert_eq!(kicked["closed"], 1);
    match c.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (4000, "bye")
            );
        }
        other => panic!("expected a kick, got {other:?}"),
    }
}

#[test]
fn http_api_pushes_and_reports() {
    let dir = TempDir::new("http");
    let p = start(&dir, "");
    let mut tab = browser(&p, "h");
    let base = format!("http://{}", p.http);
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut resp = agent
        .post(&format!("{base}/push"))
        .content_type("application/json")
        .send(r#"{"uid":"h","data":"via http"}"#)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["receipt"]["sent"], 1);
    assert_eq!(ws_read_text(&mut tab), "via http");

    let mut resp = agent
        .post(&format!("{base}/"))
        .content_type("application/json")
        .send(r#"{"uid":"h","compat":1}"#)
        .unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok\n");
    assert_eq!(ws_read_text(&mut tab), r#"{"uid":"h","compat":1}"#);

    let resp = agent
        .post(&format!("{base}/push"))
        .content_type("application/json")
        .send("{not json")
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        agent.get(&format!("{base}/nope")).call().unwrap().status(),
        404
    );
    assert_eq!(
        agent.get(&format!("{base}/push")).call().unwrap().status(),
        405
    );

    let mut resp = agent.get(&format!("{base}/online?uid=h")).call().unwrap();
    let online: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(online["connections"], 1);

    let mut resp = agent.get(&format!("{base}/status")).call().unwrap();
    let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status["uids_online"], 1);
    assert!(status["pushes"]["ok"].as_u64().unwrap() >= 2, "{status}");
    assert!(status["memory_rss_bytes"].as_u64().unwrap() > 0);

    let mut resp = agent.get(&format!("{base}/metrics")).call().unwrap();
    let metrics = resp.body_mut().read_to_string().unwrap();
    assert!(
        metrics.contains("# TYPE pushman_connections gauge\npushman_connections 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pushman_pushes_total{result=\"ok\"}"),
        "{metrics}"
    );
}

#[test]
fn api_secret_guards_the_text_port_and_http() {
    let dir = TempDir::new("apisecret");
    let p = start(&dir, "[auth]\napi_secret = \"s3cret\"\n");
    let mut tab = browser_with_secret(&p, "x");
    // Without the auth line, a push.php line gets push.php's `fail`, an extended one a JSON
    // error; both close the connection.
    let mut api = tcp_connect(p.text);
    assert_eq!(request_line(&mut api, r#"{"uid":"x"}"#), "fail");
    assert!(read_to_end(&mut api).is_empty());
    let mut api = tcp_connect(p.text);
    assert_eq!(
        request_line(&mut api, r#"{"cmd":"totals"}"#),
        r#"{"error":"unauthorized","ok":false}"#
    );
    let mut api = tcp_connect(p.text);
    assert_eq!(
        command(&mut api, json!({"cmd":"auth","secret":"s3cret"}))["ok"],
        true
    );
    assert_eq!(request_line(&mut api, r#"{"uid":"x"}"#), "ok");
    assert_eq!(ws_read_text(&mut tab), r#"{"uid":"x"}"#);

    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let url = format!("http://{}/status", p.http);
    assert_eq!(agent.get(&url).call().unwrap().status(), 401);
    assert_eq!(
        agent
            .get(&url)
            .header("Authorization", "Bearer wrong")
            .call()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        agent
            .get(&url)
            .header("Authorization", "Bearer s3cret")
            .call()
            .unwrap()
            .status(),
        200
    );
}

/// A browser bound to `uid` on a daemon whose text port wants the API secret.
fn browser_with_secret(p: &Pushman, uid: &str) -> Ws {
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let mut api = tcp_connect(p.text);
    assert_eq!(
        command(&mut api, json!({"cmd":"auth","secret":"s3cret"}))["ok"],
        true
    );
    let deadline = std::time::Instant::now() + TIMEOUT;
    while command(&mut api, json!({"cmd":"online","uid":uid}))["connections"] != 1 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    ws
}

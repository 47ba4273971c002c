//! The per-uid inbox against the real binary (issue 12, docs/PROTOCOL.md §7): the offline
//! queue for plain clients, resume with offsets for clients that ask, gaps, broadcasts,
//! and the compat reply's options.

mod common;

use common::{daemon::*, *};
use serde_json::Value;
use std::{net::TcpStream, time::Duration};
use tungstenite::Message;

const INBOX: &str = "[inbox]\nenabled = true\noffline = true\n";

/// A client that sent `first` (its uid) and, with `?pushman=1` or `?resume=1` in `path`,
/// got its bound frame, returned parsed.
fn bind(p: &Pushman, path: &str, first: &str) -> (Ws, Value) {
    let mut ws = ws_connect(p.ws, path);
    ws.send(Message::text(first)).unwrap();
    ws.flush().unwrap();
    let bound: Value = serde_json::from_str(&ws_read_text(&mut ws)).unwrap();
    assert_eq!(bound["pushman"], "bound", "{bound}");
    (ws, bound)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// The next `msg` frame's (offset key, offset, data).
#[track_caller]
fn read_msg(ws: &mut Ws) -> (String, u64, String) {
    let v = parse(&ws_read_text(ws));
    assert_eq!(v["pushman"], "msg", "{v}");
    let key = if v.get("o").is_some() { "o" } else { "a" };
    (
        key.to_string(),
        v[key].as_u64().unwrap(),
        v["d"].as_str().unwrap().to_string(),
    )
}

fn compat(uid: &str, n: usize) -> String {
    format!(r#"{{"uid":"{uid}","n":{n}}}"#)
}

#[test]
fn a_plain_client_gets_what_was_queued_while_offline_in_order_once() {
    let dir = TempDir::new("inbox-offline");
    let p = Pushman::start(&dir.config(INBOX));
    let mut api = tcp_connect(p.text);
    for n in 1..=3 {
        assert_eq!(
            request_line(&mut api, &compat("o1", n)),
            "fail",
            "push.php's truth"
        );
    }
    let receipt = parse(&request_line(
        &mut api,
        r#"{"cmd":"push","uid":"o1","data":"extended"}"#,
    ));
    assert_eq!(receipt["receipt"]["offline"], serde_json::json!(["o1"]));
    assert_eq!(receipt["receipt"]["queued"], serde_json::json!(["o1"]));

    // A plain push.php client: byte-exact frames, in order, then live ones.
    let mut tab = ws_connect(p.ws, "/");
    tab.send(Message::text("o1")).unwrap();
    for n in 1..=3 {
        assert_eq!(ws_read_text(&mut tab), compat("o1", n));
    }
    assert_eq!(ws_read_text(&mut tab), "extended");
    assert_eq!(request_line(&mut api, &compat("o1", 4)), "ok");
    assert_eq!(ws_read_text(&mut tab), compat("o1", 4));

    // A second tab does not get them again.
    let (mut second, _) = bind(&p, "/?pushman=1", "o1");
    assert_silent(&mut second, Duration::from_millis(300));
    // A push some tab took is not queued for the next connection either.
    drop(tab);
    drop(second);
    std::thread::sleep(Duration::from_millis(200));
    let (mut third, _) = bind(&p, "/?pushman=1", "o1");
    assert_silent(&mut third, Duration::from_millis(300));
}

#[test]
fn offline_reply_ok_answers_ok_for_a_queued_line_and_the_http_api_200() {
    let dir = TempDir::new("inbox-offline-ok");
    let p = Pushman::start(&dir.config(&format!("{INBOX}offline_reply = \"ok\"\n")));
    let mut api = tcp_connect(p.text);
    assert_eq!(request_line(&mut api, &compat("q1", 1)), "ok");
    // A line that is refused is still `fail`.
    assert_eq!(request_line(&mut api, "{not json"), "fail");
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut resp = agent
        .post(&format!("http://{}/", p.http))
        .content_type("application/json")
        .send(compat("q1", 2))
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok\n");
    let mut tab = ws_connect(p.ws, "/");
    tab.send(Message::text("q1")).unwrap();
    assert_eq!(ws_read_text(&mut tab), compat("q1", 1));
    assert_eq!(ws_read_text(&mut tab), compat("q1", 2));
}

#[test]
fn without_offline_a_plain_client_gets_only_live_pushes() {
    let dir = TempDir::new("inbox-no-offline");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\n"));
    let mut api = tcp_connect(p.text);
    assert_eq!(request_line(&mut api, &compat("l1", 1)), "fail");
    let (mut tab, _) = bind(&p, "/?pushman=1", "l1");
    assert_eq!(request_line(&mut api, &compat("l1", 2)), "ok");
    assert_eq!(ws_read_text(&mut tab), compat("l1", 2));
}

#[test]
fn a_resuming_client_gets_exactly_what_it_missed_then_live_pushes() {
    let dir = TempDir::new("inbox-resume");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\n"));
    let mut api = tcp_connect(p.text);
    let (mut tab, bound) = bind(&p, "/?resume=1", "r1");
    let epoch = bound["e"].as_str().unwrap().to_string();
    assert_eq!(epoch.len(), 16, "{bound}");
    let (o, a) = (bound["o"].as_u64().unwrap(), bound["a"].as_u64().unwrap());

    for n in 1..=3 {
        assert_eq!(request_line(&mut api, &compat("r1", n)), "ok");
        assert_eq!(
            read_msg(&mut tab),
            ("o".into(), o + n as u64, compat("r1", n))
        );
    }
    assert_eq!(request_line(&mut api, r#"{"broadcast":true,"x":1}"#), "ok");
    assert_eq!(
        read_msg(&mut tab),
        ("a".into(), a + 1, r#"{"broadcast":true,"x":1}"#.into())
    );
    drop(tab);
    std::thread::sleep(Duration::from_millis(200));

    // While it is away: two pushes (fail: nobody online) and a broadcast.
    for n in 4..=5 {
        assert_eq!(request_line(&mut api, &compat("r1", n)), "fail");
    }
    assert_eq!(request_line(&mut api, r#"{"broadcast":true,"x":2}"#), "ok");

    let since = format!("/?since={epoch}:{}:{}", o + 3, a + 1);
    let (mut back, bound) = bind(&p, &since, "r1");
    assert_eq!(bound["o"].as_u64(), Some(o + 3), "{bound}");
    assert_eq!(bound["a"].as_u64(), Some(a + 1), "{bound}");
    assert_eq!(read_msg(&mut back), ("o".into(), o + 4, compat("r1", 4)));
    assert_eq!(read_msg(&mut back), ("o".into(), o + 5, compat("r1", 5)));
    assert_eq!(
        read_msg(&mut back),
        ("a".into(), a + 2, r#"{"broadcast":true,"x":2}"#.into())
    );
    assert_eq!(request_line(&mut api, &compat("r1", 6)), "ok");
    assert_eq!(read_msg(&mut back), ("o".into(), o + 6, compat("r1", 6)));
    assert_silent(&mut back, Duration::from_millis(300));
}

#[test]
fn a_position_that_cannot_be_resumed_is_a_gap_with_its_reason() {
    let dir = TempDir::new("inbox-gap");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\nmax_per_uid = 2\n"));
    let mut api = tcp_connect(p.text);
    let (tab, bound) = bind(&p, "/?resume=1", "g1");
    let epoch = bound["e"].as_str().unwrap().to_string();
    let o = bound["o"].as_u64().unwrap();
    drop(tab);
    std::thread::sleep(Duration::from_millis(200));
    for n in 1..=5 {
        assert_eq!(request_line(&mut api, &compat("g1", n)), "fail");
    }
    let cases = [
        (format!("{epoch}:{o}"), "evicted"),
        (format!("{epoch}:{}", o + 99), "ahead"),
        ("0123456789abcdef:1".to_string(), "epoch"),
        ("garbage".to_string(), "epoch"),
    ];
    for (since, reason) in cases {
        let (mut ws, bound) = bind(&p, &format!("/?since={since}"), "g1");
        assert_eq!(bound["o"].as_u64(), Some(o + 5), "{since}: {bound}");
        let gap = parse(&ws_read_text(&mut ws));
        assert_eq!(gap["pushman"], "gap", "{since}: {gap}");
        assert_eq!(gap["s"], "uid");
        assert_eq!(gap["reason"], reason, "{since}");
        assert_silent(&mut ws, Duration::from_millis(200));
    }
    // The two most recent are still there for a position inside the window.
    let (mut ws, _) = bind(&p, &format!("/?since={epoch}:{}", o + 3), "g1");
    assert_eq!(read_msg(&mut ws), ("o".into(), o + 4, compat("g1", 4)));
    assert_eq!(read_msg(&mut ws), ("o".into(), o + 5, compat("g1", 5)));

    // Status and metrics count what happened.
    let (code, body) = http_get(p.http, "/status", "").unwrap();
    assert_eq!(code, 200);
    let inbox = &parse(&body)["inbox"];
    assert_eq!(inbox["epoch"], epoch.as_str(), "{inbox}");
    assert_eq!(inbox["gaps"], 4, "{inbox}");
    assert_eq!(inbox["evicted"]["uid_cap"], 3, "{inbox}");
    assert_eq!(inbox["messages"], 2, "{inbox}");
    assert_eq!(inbox["replayed"], 2, "{inbox}");
    let (_, metrics) = http_get(p.http, "/metrics", "").unwrap();
    for line in [
        "pushman_inbox_gaps_total 4",
        "pushman_inbox_evicted_total{reason=\"uid_cap\"} 3",
        "pushman_inbox_messages 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

#[test]
fn tabs_of_one_uid_share_the_stream_and_plain_tabs_stay_byte_exact() {
    let dir = TempDir::new("inbox-tabs");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\n"));
    let mut api = tcp_connect(p.text);
    let (mut resuming, bound) = bind(&p, "/?resume=1", "t1");
    let (mut plain, _) = bind(&p, "/?pushman=1", "t1");
    let o = bound["o"].as_u64().unwrap();
    assert_eq!(request_line(&mut api, &compat("t1", 1)), "ok");
    assert_eq!(
        read_msg(&mut resuming),
        ("o".into(), o + 1, compat("t1", 1))
    );
    assert_eq!(ws_read_text(&mut plain), compat("t1", 1));
    let mut other = TcpStream::connect(p.text).unwrap();
    other.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(request_line(&mut other, r#"{"broadcast":true}"#), "ok");
    assert_eq!(ws_read_text(&mut plain), r#"{"broadcast":true}"#);
    assert_eq!(read_msg(&mut resuming).2, r#"{"broadcast":true}"#);
}

#[test]
fn with_the_inbox_off_resume_clients_get_a_plain_bound_frame_and_plain_pushes() {
    let dir = TempDir::new("inbox-off");
    let p = Pushman::start(&dir.config(""));
    let mut api = tcp_connect(p.text);
    let (mut tab, bound) = bind(&p, "/?resume=1", "x1");
    assert!(
        bound.get("e").is_none(),
        "no epoch without an inbox: {bound}"
    );
    assert_eq!(request_line(&mut api, &compat("x1", 1)), "ok");
    assert_eq!(ws_read_text(&mut tab), compat("x1", 1));
}

//! The durable inbox (`inbox.durable`, docs/PROTOCOL.md §7) against the real binary: what
//! was acknowledged before a `kill -9` is there after the restart, in order, once, in the
//! same epoch; a burst of pushes costs few commits; a fresh store is a new epoch.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{net::TcpStream, time::Duration};
use tungstenite::Message;

const DURABLE: &str = "[inbox]\nenabled = true\ndurable = true\n";

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// A resume-capable client of `uid` at `query` (`resume=1` or `since=...`), with its bound
/// frame.
fn bind(p: &Pushman, query: &str, uid: &str) -> (Ws, Value) {
    let mut ws = ws_connect(p.ws, &format!("/?{query}"));
    ws.send(Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let bound = parse(&ws_read_text(&mut ws));
    assert_eq!(bound["pushman"], "bound", "{bound}");
    (ws, bound)
}

/// The next frame, which must be a `msg` of the uid's stream: (offset, data).
#[track_caller]
fn read_msg(ws: &mut Ws) -> (u64, String) {
    let v = parse(&ws_read_text(ws));
    assert_eq!(v["pushman"], "msg", "{v}");
    (
        v["o"].as_u64().expect("a uid offset"),
        v["d"].as_str().unwrap().into(),
    )
}

/// An extended push to `uid`; returns the reply.
fn push(api: &mut TcpStream, uid: &str, data: &str) -> Value {
    parse(&request_line(
        api,
        &json!({"cmd": "push", "uid": uid, "data": data}).to_string(),
    ))
}

fn status(p: &Pushman) -> Value {
    let (code, body) = http_get(p.http, "/status", "").expect("GET /status");
    assert_eq!(code, 200, "{body}");
    parse(&body)
}

#[test]
fn pushes_acknowledged_before_kill9_are_replayed_after_restart_once_in_order() {
    let dir = TempDir::new("durable-kill9");
    let config = dir.config(DURABLE);
    let p = Pushman::start(&config);
    let (mut tab, bound) = bind(&p, "resume=1", "d1");
    let epoch = bound["e"].as_str().unwrap().to_string();
    let mut api = tcp_connect(p.text);
    for n in 1..=3 {
        let reply = push(&mut api, "d1", &format!("live {n}"));
        assert_eq!(reply["ok"], true, "{reply}");
    }
    let mut last = 0;
    for n in 1..=3 {
        let (o, d) = read_msg(&mut tab);
        assert_eq!(d, format!("live {n}"));
        last = o;
    }
    drop(tab);
    // The tab is away: these are acknowledged (committed), then the server dies.
    for n in 1..=20 {
        let reply = push(&mut api, "d1", &format!("missed {n}"));
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["receipt"]["offline"], json!(["d1"]), "{reply}");
    }
    p.kill9();

    let p = Pushman::start(&config);
    let (mut tab, bound) = bind(&p, &format!("since={epoch}:{last}"), "d1");
    assert_eq!(bound["e"], epoch.as_str(), "same epoch after the restart");
    assert_eq!(bound["o"], last, "{bound}");
    for n in 1..=20 {
        let (o, d) = read_msg(&mut tab);
        assert_eq!((o, d), (last + n, format!("missed {n}")));
    }
    assert_silent(&mut tab, Duration::from_millis(300));
    // Live pushes go on from there.
    let mut api = tcp_connect(p.text);
    assert_eq!(push(&mut api, "d1", "after")["ok"], true);
    assert_eq!(read_msg(&mut tab), (last + 21, "after".into()));
    let s = status(&p);
    assert_eq!(s["inbox_journal"]["recovered"], 23, "{s}");
    assert_eq!(s["inbox_journal"]["failures"], 0, "{s}");
}

#[test]
fn a_plain_client_gets_its_offline_queue_from_before_a_kill9_byte_exact() {
    let dir = TempDir::new("durable-offline");
    let config = dir.config(&format!(
        "{DURABLE}offline = true\noffline_reply = \"ok\"\n"
    ));
    let p = Pushman::start(&config);
    let mut api = tcp_connect(p.text);
    let lines: Vec<String> = (1..=5)
        .map(|n| format!(r#"{{"uid":"p1","percent":"{n}0%"}}"#))
        .collect();
    for line in &lines {
        assert_eq!(request_line(&mut api, line), "ok", "queued and committed");
    }
    p.kill9();

    let p = Pushman::start(&config);
    let mut tab = ws_connect(p.ws, "/");
    tab.send(Message::text("p1")).unwrap();
    for line in &lines {
        assert_eq!(&ws_read_text(&mut tab), line);
    }
    assert_silent(&mut tab, Duration::from_millis(300));
    // Taken: not queued again for the next start.
    drop(tab);
    std::thread::sleep(Duration::from_millis(200));
    p.stop();
    let p = Pushman::start(&config);
    let mut tab = ws_connect(p.ws, "/?pushman=1");
    tab.send(Message::text("p1")).unwrap();
    assert_eq!(parse(&ws_read_text(&mut tab))["pushman"], "bound");
    assert_silent(&mut tab, Duration::from_millis(300));
}

#[test]
fn a_pipelined_burst_of_pushes_costs_few_commits() {
    let dir = TempDir::new("durable-burst");
    let p = Pushman::start(&dir.config(DURABLE));
    let (mut tab, _) = bind(&p, "resume=1", "b1");
    let before = status(&p)["inbox_journal"]["commits"].as_u64().unwrap();
    const N: usize = 2_000;
    let burst: String = (0..N)
        .map(|n| format!("{{\"uid\":\"b1\",\"n\":{n}}}\n"))
        .collect();
    let mut api = tcp_connect(p.text);
    std::io::Write::write_all(&mut api, burst.as_bytes()).unwrap();
    let mut replies = std::io::BufReader::new(api);
    for _ in 0..N {
        assert_eq!(read_line(&mut replies), "ok");
    }
    for n in 0..N {
        assert_eq!(
            read_msg(&mut tab).1,
            format!("{{\"uid\":\"b1\",\"n\":{n}}}")
        );
    }
    let s = status(&p);
    let commits = s["inbox_journal"]["commits"].as_u64().unwrap() - before;
    eprintln!("{N} pipelined pushes: {commits} commits");
    assert!(
        (1..=N as u64 / 10).contains(&commits),
        "{N} pushes took {commits} commits: {s}"
    );
    assert!(
        s["inbox_journal"]["records"].as_u64().unwrap() >= N as u64,
        "{s}"
    );
}

#[test]
fn a_lost_store_is_a_new_epoch_and_old_positions_are_a_gap() {
    let dir = TempDir::new("durable-lost");
    let config = dir.config(DURABLE);
    let p = Pushman::start(&config);
    let (mut tab, bound) = bind(&p, "resume=1", "l1");
    let epoch = bound["e"].as_str().unwrap().to_string();
    let mut api = tcp_connect(p.text);
    assert_eq!(push(&mut api, "l1", "one")["ok"], true);
    let (o, _) = read_msg(&mut tab);
    drop(tab);
    p.kill9();
    std::fs::remove_file(dir.path("data/schedule.redb")).unwrap();

    let p = Pushman::start(&config);
    let (mut tab, bound) = bind(&p, &format!("since={epoch}:{o}"), "l1");
    assert_ne!(bound["e"], epoch.as_str(), "{bound}");
    let gap = parse(&ws_read_text(&mut tab));
    assert_eq!(gap["pushman"], "gap", "{gap}");
    assert_eq!(gap["reason"], "epoch", "{gap}");
}

#[test]
fn durable_without_enabled_is_refused_at_start() {
    let dir = TempDir::new("durable-refused");
    let out = cli(
        &[
            "start",
            "--config",
            dir.config("[inbox]\ndurable = true\n").to_str().unwrap(),
        ],
        &dir.0,
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("inbox.durable"), "{text}");
}

#[test]
fn store_check_reports_the_inbox_log() {
    let dir = TempDir::new("durable-check");
    let config = dir.config(DURABLE);
    let p = Pushman::start(&config);
    let mut api = tcp_connect(p.text);
    for n in 1..=3 {
        assert_eq!(push(&mut api, "c1", &format!("m{n}"))["ok"], true);
    }
    p.stop();
    let out = cli(
        &["store", "check", "--config", config.to_str().unwrap()],
        &dir.0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("inbox log: ") && text.contains("3 pushes of 1 uids"),
        "{text}"
    );
}

//! The inbox in Redis (cluster mode, docs/PROTOCOL.md §7): a real `redis-server` and two
//! real `pushman` nodes; resume-capable tabs (tungstenite) leave one node and come back on
//! the other, plain tabs get their uid's offline queue on its first connection anywhere.
//!
//! `#[ignore]`d like the other cluster tests: `cargo test -- --include-ignored` runs them
//! and fails, naming it, when `redis-server` is missing.

mod common;

use common::{cluster::*, daemon::*, *};
use serde_json::{json, Value};
use std::time::Duration;

const INBOX: &str = "[inbox]\nenabled = true\n";

/// A resume-capable tab of `uid` on `node` (`query` adds e.g. `&since=…`): the socket and
/// its `bound` frame.
fn resumer(node: &Node, uid: &str, query: &str) -> (Ws, Value) {
    let mut ws = ws_connect(node.p.ws, &format!("/?pushman=1&resume=1{query}"));
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let bound = frame(&mut ws);
    assert_eq!(bound["pushman"], "bound", "{bound}");
    assert_eq!(bound["uid"], uid);
    (ws, bound)
}

/// A plain tab (the seed's snippet): no query, its uid as first message.
fn plain(node: &Node, uid: &str) -> Ws {
    let mut ws = ws_connect(node.p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    ws
}

#[track_caller]
fn frame(ws: &mut Ws) -> Value {
    let text = ws_read_text(ws);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The next `msg` frame: its uid-stream offset (or broadcast offset) and text.
#[track_caller]
fn msg(ws: &mut Ws) -> (Option<u64>, Option<u64>, String) {
    let f = frame(ws);
    assert_eq!(f["pushman"], "msg", "{f}");
    (
        f["o"].as_u64(),
        f["a"].as_u64(),
        f["d"].as_str().unwrap().to_string(),
    )
}

fn since(bound: &Value, o: u64) -> String {
    format!(
        "&since={}:{o}:{}",
        bound["e"].as_str().unwrap(),
        bound["a"].as_u64().unwrap()
    )
}

fn line(uid: &str, n: u32) -> String {
    json!({ "uid": uid, "content": format!("m{n}") }).to_string()
}

/// Waits until no live node holds `uid` (asked through `via`).
#[track_caller]
fn wait_offline(via: &Node, uid: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while online(via, uid) > 0 {
        assert!(std::time::Instant::now() < deadline, "{uid} stayed online");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_tab_that_comes_back_on_another_node_gets_exactly_what_it_missed_then_live() {
    let dir = TempDir::new("inbox-redis-1");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("ia1", &redis, INBOX), node("ib1", &redis, INBOX));
    let (mut tab, bound) = resumer(&a, "r1", "");
    let start = bound["o"].as_u64().unwrap();
    let mut backend_b = b.backend();
    // Live on node A from node B's text port: offsets follow `bound`.
    for n in 1..=2 {
        assert_eq!(request_line(&mut backend_b, &line("r1", n)), "ok");
        assert_eq!(msg(&mut tab), (Some(start + n as u64), None, line("r1", n)));
    }
    tab.close(None).unwrap();
    let _ = tab.flush();
    wait_offline(&b, "r1");
    // Away: nobody is online, so push.php's truth is `fail`; the pushes are kept.
    for n in 3..=5 {
        assert_eq!(request_line(&mut backend_b, &line("r1", n)), "fail");
    }
    let receipt = command(
        &mut backend_b,
        json!({"cmd":"push","uid":"r1","data":"extended"}),
    );
    assert_eq!(receipt["receipt"]["offline"], json!(["r1"]), "{receipt}");
    assert_eq!(receipt["receipt"]["queued"], json!(["r1"]), "{receipt}");
    // A scheduled push falls due while away: the claim script appends it too.
    let scheduled = command(
        &mut backend_b,
        json!({"cmd":"push","uid":"r1","data":"later","delay":0.2}),
    );
    assert_eq!(scheduled["ok"], true, "{scheduled}");
    let claimed = |s: &Value| s["cluster"]["scheduled_claimed"].as_u64().unwrap_or(0);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while claimed(&a.status()) + claimed(&b.status()) == 0 {
        assert!(std::time::Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Back, on node B, from the last offset it saw.
    let (mut back, bound) = resumer(&b, "r1", &since(&bound, start + 2));
    assert_eq!(bound["o"].as_u64(), Some(start + 2), "{bound}");
    for n in 3..=5 {
        assert_eq!(
            msg(&mut back),
            (Some(start + n as u64), None, line("r1", n))
        );
    }
    assert_eq!(msg(&mut back), (Some(start + 6), None, "extended".into()));
    assert_eq!(msg(&mut back), (Some(start + 7), None, "later".into()));
    // Then live, pushed through node A: no gap, no duplicate.
    let mut backend_a = a.backend();
    assert_eq!(request_line(&mut backend_a, &line("r1", 8)), "ok");
    assert_eq!(msg(&mut back), (Some(start + 8), None, line("r1", 8)));
    silent(&mut back, Duration::from_millis(300));
    let status = b.status();
    let inbox = &status["cluster"]["inbox"];
    assert_eq!(inbox["replayed"], 5, "{status}");
    assert_eq!(inbox["max_per_uid"], 100, "{status}");
    assert!(a.status()["cluster"]["inbox"]["appended"].as_u64() >= Some(1));
    b.wait_for(
        |s| s["cluster"]["inbox"]["redis_used_memory"].as_u64() > Some(0),
        "Redis's memory sampled",
    );
    let metrics = ureq::get(&format!("http://{}/metrics", b.p.http))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    for figure in [
        "pushman_cluster_inbox_replayed_total 5",
        "pushman_cluster_inbox_max_per_uid 100",
        "pushman_cluster_inbox_redis_used_memory_bytes ",
        "pushman_cluster_inbox_redis_keys ",
    ] {
        assert!(metrics.contains(figure), "{figure} not in {metrics}");
    }
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn positions_that_cannot_be_resumed_get_a_gap_with_its_reason_then_live() {
    let dir = TempDir::new("inbox-redis-2");
    let redis = Redis::start(&dir.0, 0);
    let config = "[inbox]\nenabled = true\nmax_per_uid = 3\n";
    let (a, b) = (node("ia2", &redis, config), node("ib2", &redis, config));
    let (mut tab, bound) = resumer(&a, "g1", "");
    let start = bound["o"].as_u64().unwrap();
    tab.close(None).unwrap();
    let _ = tab.flush();
    wait_offline(&b, "g1");
    let mut backend = b.backend();
    for n in 1..=5 {
        assert_eq!(request_line(&mut backend, &line("g1", n)), "fail");
    }
    // Five pushes while away, three kept: the position is evicted.
    let (mut back, bound2) = resumer(&b, "g1", &since(&bound, start));
    assert_eq!(bound2["o"].as_u64(), Some(start + 5), "{bound2}");
    let gap = frame(&mut back);
    assert_eq!(gap, json!({"pushman":"gap","s":"uid","reason":"evicted"}));
    assert_eq!(request_line(&mut backend, &line("g1", 6)), "ok");
    assert_eq!(msg(&mut back), (Some(start + 6), None, line("g1", 6)));
    // Within the cap: the last three are replayed.
    let (mut third, _) = resumer(&a, "g1", &since(&bound, start + 3));
    for n in 4..=6 {
        assert_eq!(
            msg(&mut third),
            (Some(start + n), None, line("g1", n as u32))
        );
    }
    // Another epoch, a position past the end, a malformed one.
    for (query, reason) in [
        (format!("&since=0000000000000001:{start}"), "epoch"),
        (since(&bound, start + 1000), "ahead"),
        ("&since=not-a-position".to_string(), "epoch"),
    ] {
        let (mut ws, _) = resumer(&a, "g1", &query);
        assert_eq!(frame(&mut ws)["reason"], reason, "{query}");
    }
    assert!(a.status()["cluster"]["inbox"]["gaps"].as_u64() >= Some(3));
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn the_offline_queue_goes_to_the_uids_first_connection_anywhere_in_the_cluster() {
    let dir = TempDir::new("inbox-redis-3");
    let redis = Redis::start(&dir.0, 0);
    let a = node("ia3", &redis, "[inbox]\nenabled = true\noffline = true\n");
    let b = node(
        "ib3",
        &redis,
        "[inbox]\nenabled = true\noffline = true\noffline_reply = \"ok\"\n",
    );
    let mut backend_a = a.backend();
    for n in 1..=3 {
        assert_eq!(request_line(&mut backend_a, &line("q1", n)), "fail");
    }
    // Node B answers `ok` for a line it only queued (`offline_reply`).
    assert_eq!(request_line(&mut b.backend(), &line("q1", 4)), "ok");
    // The seed's plain snippet on node B: the queue, byte-exact and in order, then live.
    let mut first = plain(&b, "q1");
    for n in 1..=4 {
        assert_eq!(ws_read_text(&mut first), line("q1", n));
    }
    assert_eq!(request_line(&mut backend_a, &line("q1", 5)), "ok");
    assert_eq!(ws_read_text(&mut first), line("q1", 5));
    // A second tab, on node A (its first there, not the uid's first): no queue, live only.
    let mut second = plain(&a, "q1");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while online(&a, "q1") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "second tab never bound"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(request_line(&mut backend_a, &line("q1", 6)), "ok");
    assert_eq!(ws_read_text(&mut second), line("q1", 6));
    assert_eq!(ws_read_text(&mut first), line("q1", 6));
    silent(&mut second, Duration::from_millis(200));
    assert_eq!(b.status()["cluster"]["inbox"]["queued_delivered"], 4);
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn tabs_of_one_uid_on_two_nodes_share_offsets_and_broadcasts_count_every_node() {
    let dir = TempDir::new("inbox-redis-4");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("ia4", &redis, INBOX), node("ib4", &redis, INBOX));
    // Scheduled pushes live in Redis: the store file is not even created.
    assert!(!a.dir.path("data/schedule.redb").exists());
    let (mut on_a, bound_a) = resumer(&a, "s1", "");
    let (mut on_b, bound_b) = resumer(&b, "s1", "");
    assert_eq!(bound_a["e"], bound_b["e"]);
    assert_eq!(bound_a["o"], bound_b["o"]);
    // Pushes from both nodes' text ports, pipelined from each: one order, one offset each.
    let (mut backend_a, mut backend_b) = (a.backend(), b.backend());
    for n in 1..=6 {
        let backend = if n % 2 == 0 {
            &mut backend_a
        } else {
            &mut backend_b
        };
        assert_eq!(request_line(backend, &line("s1", n)), "ok");
    }
    let seen_a: Vec<_> = (0..6).map(|_| msg(&mut on_a)).collect();
    let seen_b: Vec<_> = (0..6).map(|_| msg(&mut on_b)).collect();
    assert_eq!(seen_a, seen_b);
    let start = bound_a["o"].as_u64().unwrap();
    let offsets: Vec<u64> = seen_a.iter().map(|m| m.0.unwrap()).collect();
    assert_eq!(offsets, (start + 1..=start + 6).collect::<Vec<_>>());
    // A broadcast: the same offset in the broadcast stream on both nodes, and its receipt
    // counts both nodes' tabs.
    let receipt = command(
        &mut backend_a,
        json!({"cmd":"push","all":true,"data":"all"}),
    );
    assert_eq!(receipt["receipt"]["sent"], 2, "{receipt}");
    let (ma, mb) = (msg(&mut on_a), msg(&mut on_b));
    assert_eq!(ma, mb);
    assert_eq!(ma.1, Some(bound_a["a"].as_u64().unwrap() + 1));
    // A group push reaches both tabs with the next offset; its receipt counts both.
    command(&mut backend_b, json!({"cmd":"join","group":"g","uid":"s1"}));
    let receipt = command(
        &mut backend_b,
        json!({"cmd":"push","group":"g","data":"grp"}),
    );
    assert_eq!(receipt["receipt"]["sent"], 2, "{receipt}");
    assert_eq!(msg(&mut on_a), (Some(start + 7), None, "grp".into()));
    assert_eq!(msg(&mut on_b), (Some(start + 7), None, "grp".into()));
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn without_redis_a_resume_is_closed_to_retry_and_pushes_fail_then_a_new_epoch_is_a_gap() {
    let dir = TempDir::new("inbox-redis-5");
    let redis = Redis::start(&dir.0, 0);
    let port = redis.port;
    let a = node("ia5", &redis, INBOX);
    let (mut tab, bound) = resumer(&a, "d1", "");
    let start = bound["o"].as_u64().unwrap();
    redis.kill();
    a.wait_for(|s| s["cluster"]["link"] != "up", "its link down");
    // A live tab: pushes answer fail (nothing is delivered that Redis does not keep).
    let mut backend = a.backend();
    assert_eq!(request_line(&mut backend, &line("d1", 1)), "fail");
    let reply = command(&mut backend, json!({"cmd":"push","uid":"d1","data":"x"}));
    assert_eq!(reply["error"], "cluster unavailable", "{reply}");
    silent(&mut tab, Duration::from_millis(200));
    // A resume cannot be read: closed with 1013 (try again later), at once.
    let mut ws = ws_connect(a.p.ws, &format!("/?resume=1{}", since(&bound, start)));
    ws.send(tungstenite::Message::text("d1")).unwrap();
    ws.flush().unwrap();
    let t0 = std::time::Instant::now();
    let code = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(c))) => break u16::from(c.code),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, 1013);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // Redis back, empty: a new epoch. The old position is a gap, the live tab reconnects.
    let _redis = Redis::start(&dir.0, port);
    a.wait_for(|s| s["cluster"]["link"] == "up", "its link up again");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while online(&a, "d1") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "routes never came back"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut back, bound2) = resumer(&a, "d1", &since(&bound, start));
    assert_ne!(bound2["e"], bound["e"]);
    for s in ["uid", "all"] {
        assert_eq!(
            frame(&mut back),
            json!({"pushman":"gap","s":s,"reason":"epoch"})
        );
    }
    assert_eq!(request_line(&mut backend, &line("d1", 2)), "ok");
    let o = bound2["o"].as_u64().unwrap();
    assert_eq!(msg(&mut back), (Some(o + 1), None, line("d1", 2)));
    // The tab that stayed through the outage holds the old epoch: closed with 1012.
    let code = loop {
        match tab.read() {
            Ok(tungstenite::Message::Close(Some(c))) => break u16::from(c.code),
            Ok(tungstenite::Message::Text(t)) => panic!("old-epoch tab got {t}"),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, 1012);
}

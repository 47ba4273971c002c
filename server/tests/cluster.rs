//! Cluster mode with real parts: a real `redis-server` on a free loopback port (its own
//! temp dir, no persistence, stopped by pid) and several real `pushman` nodes; browsers
//! (tungstenite) on one node, backends (text port, HTTP API) on another.
//!
//! They need `redis-server` (Debian's, 7.x), so they are `#[ignore]`d like the browser
//! tests: `cargo test -- --include-ignored` (README, `.ci/run`) runs them and fails, naming
//! it, when it is missing.

mod common;

use common::{cluster::*, daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::{BufReader, Write},
    net::{TcpListener, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

const SEED_LINE: &str = r#"{"uid":"u-a","content":"hello from B","type":"publish"}"#;

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn compat_push_crosses_nodes_byte_exact_and_fails_for_nobody() {
    let dir = TempDir::new("cluster-redis-1");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a1", &redis, ""), node("b1", &redis, ""));
    let mut tab = a.browser("u-a", &b);
    let mut backend = b.backend();
    assert_eq!(request_line(&mut backend, SEED_LINE), "ok");
    assert_eq!(ws_read_text(&mut tab), SEED_LINE);
    assert_eq!(
        request_line(&mut backend, r#"{"uid":"nobody","content":"x"}"#),
        "fail"
    );
    // Two tabs of one uid on two nodes both receive; pipelined lines are answered in order.
    let mut tab_b = b.browser("u-a", &a);
    let line2 = r#"{"uid":"u-a","content":"both"}"#;
    backend
        .write_all(format!("{line2}\n{{\"uid\":\"nobody\"}}\n{line2}\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(backend.try_clone().unwrap());
    for want in ["ok", "fail", "ok"] {
        assert_eq!(read_line(&mut reader), want);
    }
    for _ in 0..2 {
        assert_eq!(ws_read_text(&mut tab), line2);
        assert_eq!(ws_read_text(&mut tab_b), line2);
    }
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn broadcast_groups_online_list_totals_and_kick_are_cluster_wide() {
    let dir = TempDir::new("cluster-redis-2");
    let redis = Redis::start(&dir.0, 0);
    let (a, b, c) = (
        node("a2", &redis, ""),
        node("b2", &redis, ""),
        node("c2", &redis, ""),
    );
    let mut tab1 = a.browser("u1", &c);
    let mut tab2 = b.browser("u2", &c);
    let mut tab3 = a.browser("u3", &c);
    let mut backend = c.backend();

    // push.php broadcast from C reaches every tab on A and B.
    let line = r#"{"broadcast":true,"content":"to all"}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    for tab in [&mut tab1, &mut tab2, &mut tab3] {
        assert_eq!(ws_read_text(tab), line);
    }
    // An extended broadcast's receipt counts the tabs of every node that answered.
    let r = command(&mut backend, json!({"cmd":"push","all":true,"data":"all"}));
    let mut nodes: Vec<String> =
        serde_json::from_value(r["receipt"]["nodes"].clone()).unwrap_or_default();
    nodes.sort();
    assert_eq!(
        (r["receipt"]["sent"].clone(), nodes),
        (json!(3), vec!["a2".to_string(), "b2".to_string()]),
        "{r}"
    );
    assert_eq!(r["receipt"]["unanswered"], json!([]), "{r}");
    for tab in [&mut tab1, &mut tab2, &mut tab3] {
        assert_eq!(ws_read_text(tab), "all");
    }

    // Groups live in Redis: joined through C, pushed through B.
    for uid in ["u1", "u2"] {
        let r = command(&mut backend, json!({"cmd":"join","group":"g","uid":uid}));
        assert_eq!(r["added"], true, "{r}");
    }
    let r = command(&mut b.backend(), json!({"cmd":"members","group":"g"}));
    assert_eq!(r["members"], json!(["u1", "u2"]));
    let r = command(
        &mut b.backend(),
        json!({"cmd":"push","group":"g","data":"group hi"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        (r["receipt"]["sent"].clone(), r["receipt"]["nodes"].clone()),
        (json!(2), json!(["a2"])),
        "{r}"
    );
    assert_eq!(ws_read_text(&mut tab1), "group hi");
    assert_eq!(ws_read_text(&mut tab2), "group hi");
    silent(&mut tab3, Duration::from_millis(200));

    // An extended push to uids on two other nodes: nothing offline, published to both.
    let r = command(
        &mut backend,
        json!({"cmd":"push","uids":["u1","u2","ghost"],"data":"many"}),
    );
    assert_eq!(r["receipt"]["offline"], json!(["ghost"]), "{r}");
    // Counted by the nodes that delivered it, which answered in time.
    let mut nodes: Vec<String> = serde_json::from_value(r["receipt"]["nodes"].clone()).unwrap();
    nodes.sort();
    assert_eq!(nodes, ["a2", "b2"]);
    assert_eq!(r["receipt"]["sent"], 2, "{r}");
    assert_eq!(r["receipt"]["unanswered"], json!([]), "{r}");
    assert_eq!(ws_read_text(&mut tab1), "many");
    assert_eq!(ws_read_text(&mut tab2), "many");

    // online_list: sorted and paged over the whole cluster.
    let r = command(
        &mut backend,
        json!({"cmd":"online_list","offset":1,"limit":2}),
    );
    assert_eq!(
        (r["total"].clone(), r["uids"].clone()),
        (json!(3), json!(["u2", "u3"]))
    );
    // Connection counts travel with each node's lease renewal (every lease/3).
    let deadline = Instant::now() + TIMEOUT;
    let mut r = command(&mut backend, json!({"cmd":"totals"}));
    while r["connections"] != 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        r = command(&mut backend, json!({"cmd":"totals"}));
    }
    assert_eq!(
        (
            r["uids"].clone(),
            r["connections"].clone(),
            r["groups"].clone(),
            r["nodes"].clone()
        ),
        (json!(3), json!(3), json!(1), json!(3)),
        "{r}"
    );

    // kick through C closes u2's tab on B with the reason.
    // online counts every tab, asked of the nodes holding the uid.
    let mut tab1b = b.browser("u1", &c);
    let r = command(&mut backend, json!({"cmd":"online","uid":"u1"}));
    assert_eq!(
        (r["online"].clone(), r["connections"].clone()),
        (json!(true), json!(2)),
        "{r}"
    );
    let mut nodes: Vec<String> = serde_json::from_value(r["nodes"].clone()).unwrap();
    nodes.sort();
    assert_eq!(nodes, ["a2", "b2"]);
    let r = command(&mut backend, json!({"cmd":"online","uid":"nobody"}));
    assert_eq!(
        (r["online"].clone(), r["connections"].clone()),
        (json!(false), json!(0)),
        "{r}"
    );
    tab1b.close(None).unwrap();
    while tab1b.read().is_ok() {}
    drop(tab1b);

    let r = command(
        &mut backend,
        json!({"cmd":"kick","uid":"u2","reason":"bye"}),
    );
    assert_eq!(
        (r["nodes"].clone(), r["closed"].clone()),
        (json!(["b2"]), json!(1)),
        "{r}"
    );
    match tab2.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (4000, "bye")
            )
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Our close reply goes out with the flush; then the socket closes.
    let _ = tab2.flush();
    drop(tab2);
    let deadline = Instant::now() + TIMEOUT;
    while online(&c, "u2") > 0 {
        assert!(Instant::now() < deadline, "u2 stayed online after the kick");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        request_line(&mut backend, r#"{"uid":"u2","content":"x"}"#),
        "fail"
    );
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_delayed_push_survives_the_death_of_the_node_that_accepted_it() {
    let dir = TempDir::new("cluster-redis-3");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a3", &redis, ""), node("b3", &redis, ""));
    let mut tab = b.browser("late", &a);
    let accepted = Instant::now();
    let r = command(
        &mut a.backend(),
        json!({"cmd":"push","uid":"late","data":"on time","delay":1.0}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let listed = command(&mut b.backend(), json!({"cmd":"scheduled"}));
    assert_eq!(listed["pending"], 1, "{listed}");
    assert_eq!(listed["scheduled"][0]["target"], json!({"uid":"late"}));
    a.p.kill9();
    assert_eq!(ws_read_text(&mut tab), "on time");
    let after = accepted.elapsed();
    assert!(
        after >= Duration::from_millis(1000),
        "delivered early: {after:?}"
    );
    assert!(after < Duration::from_secs(3), "delivered late: {after:?}");
    // Claimed once: no second copy.
    silent(&mut tab, Duration::from_millis(500));
    let listed = command(&mut b.backend(), json!({"cmd":"scheduled"}));
    assert_eq!(listed["pending"], 0, "{listed}");
    // A cancelled one never comes.
    let r = command(
        &mut b.backend(),
        json!({"cmd":"push","uid":"late","data":"never","delay":0.5}),
    );
    let r = command(&mut b.backend(), json!({"cmd":"cancel","id":r["id"]}));
    assert_eq!(r["cancelled"], true);
    silent(&mut tab, Duration::from_millis(900));
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_dead_nodes_uids_answer_fail_within_the_lease() {
    let dir = TempDir::new("cluster-redis-4");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a4", &redis, ""), node("b4", &redis, ""));
    let _tab = a.browser("doomed", &b);
    let mut backend = b.backend();
    assert_eq!(request_line(&mut backend, r#"{"uid":"doomed"}"#), "ok");
    let killed = Instant::now();
    a.p.kill9();
    // Lease 2 s in these tests: `fail` within it (plus a tick), not `ok` into the void.
    loop {
        let reply = request_line(&mut backend, r#"{"uid":"doomed"}"#);
        if reply == "fail" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_millis(2500),
            "still ok after the lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = command(&mut backend, json!({"cmd":"online_list"}));
    assert_eq!(r["total"], 0, "{r}");
    // Past the 2 s command timeout: the survivor's links never dropped meanwhile (a
    // subscription must not look like an unanswered command).
    std::thread::sleep(Duration::from_millis(2200).saturating_sub(killed.elapsed()));
    let status = b.status();
    assert_eq!(status["cluster"]["reconnects"], 0, "{status}");
    // The survivor's janitor forgets the dead node's routes (once a lease).
    let deadline = Instant::now() + TIMEOUT;
    while redis.cmd(&["EXISTS", "pushman:route:doomed"]).as_deref() != Some(":0")
        || redis.cmd(&["SISMEMBER", "pushman:nodes", "a4"]).as_deref() != Some(":0")
    {
        assert!(
            Instant::now() < deadline,
            "the dead node's routes stayed in Redis"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_node_whose_lease_lapsed_writes_its_routes_again() {
    let dir = TempDir::new("cluster-redis-9");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a9", &redis, ""), node("b9", &redis, ""));
    let _tab = a.browser("kept", &b);
    // What a janitor does to a node whose lease ran out while it was cut off.
    for key in ["pushman:node:a9", "pushman:route:kept", "pushman:uids:a9"] {
        redis.cmd(&["DEL", key]).unwrap();
    }
    let mut backend = b.backend();
    let deadline = Instant::now() + TIMEOUT;
    while request_line(&mut backend, r#"{"uid":"kept"}"#) != "ok" {
        assert!(Instant::now() < deadline, "routes were never written again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_gracefully_stopped_nodes_uids_answer_fail_at_once() {
    let dir = TempDir::new("cluster-redis-7");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a7", &redis, ""), node("b7", &redis, ""));
    let _tab = a.browser("leaving", &b);
    let mut backend = b.backend();
    assert_eq!(request_line(&mut backend, r#"{"uid":"leaving"}"#), "ok");
    a.p.stop();
    // Well within the 2 s lease.
    assert_eq!(request_line(&mut backend, r#"{"uid":"leaving"}"#), "fail");
    assert_eq!(
        redis.cmd(&["EXISTS", "pushman:node:a7"]).as_deref(),
        Some(":0")
    );
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn without_redis_local_pushes_work_remote_ones_fail_fast_and_routes_come_back() {
    let dir = TempDir::new("cluster-redis-5");
    let redis = Redis::start(&dir.0, 0);
    let port = redis.port;
    let (a, b) = (node("a5", &redis, ""), node("b5", &redis, ""));
    let mut here = b.browser("here", &a);
    let mut there = a.browser("there", &b);
    let mut backend = b.backend();
    redis.kill();
    b.wait_for(|s| s["cluster"]["link"] == "down", "its Redis link down");

    let started = Instant::now();
    assert_eq!(request_line(&mut backend, r#"{"uid":"here","v":1}"#), "ok");
    assert_eq!(ws_read_text(&mut here), r#"{"uid":"here","v":1}"#);
    assert_eq!(
        request_line(&mut backend, r#"{"uid":"there","v":1}"#),
        "fail"
    );
    let r = command(&mut backend, json!({"cmd":"push","uid":"there","data":"x"}));
    assert_eq!(r["error"], "cluster unavailable", "{r}");
    let r = command(
        &mut backend,
        json!({"cmd":"push","uid":"here","data":"local"}),
    );
    assert_eq!(
        (r["ok"].clone(), r["receipt"]["sent"].clone()),
        (json!(true), json!(1)),
        "{r}"
    );
    assert_eq!(ws_read_text(&mut here), "local");
    let r = command(
        &mut backend,
        json!({"cmd":"push","uid":"here","data":"later","delay":5}),
    );
    assert_eq!(
        r["error"], "cluster unavailable",
        "scheduling must be refused: {r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answers must not wait for Redis"
    );
    let status = b.status();
    assert_eq!(status["cluster"]["link"], "down", "{status}");

    // Redis back, empty: both nodes reconnect and write their routes again.
    let _redis = Redis::start(&dir.0, port);
    a.wait_for(|s| s["cluster"]["link"] == "up", "its Redis link back");
    b.wait_for(|s| s["cluster"]["link"] == "up", "its Redis link back");
    let deadline = Instant::now() + TIMEOUT;
    while request_line(&mut backend, r#"{"uid":"there","v":2}"#) != "ok" {
        assert!(Instant::now() < deadline, "routes never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ws_read_text(&mut there), r#"{"uid":"there","v":2}"#);
    let metrics = ureq::get(&format!("http://{}/metrics", b.p.http))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("pushman_cluster_link_up 1"), "{metrics}");
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn the_http_api_answers_cluster_commands_too() {
    let dir = TempDir::new("cluster-redis-6");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a6", &redis, ""), node("b6", &redis, ""));
    let mut tab = a.browser("web", &b);
    let body = ureq::post(&format!("http://{}/push", b.p.http))
        .header("Content-Type", "application/json")
        .send(r#"{"uid":"web","data":"via http"}"#)
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["receipt"]["nodes"], json!(["a6"]), "{r}");
    assert_eq!(r["receipt"]["sent"], 1, "{r}");
    assert_eq!(ws_read_text(&mut tab), "via http");
    let body = ureq::get(&format!("http://{}/online?uid=web", b.p.http))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["online"], true, "{r}");
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_node_that_does_not_answer_is_named_and_not_counted() {
    let dir = TempDir::new("cluster-redis-8");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a8", &redis, ""), node("b8", &redis, ""));
    let _tab = a.browser("frozen", &b);
    // Stopped, not dead: its lease still counts, but it cannot deliver or answer.
    signal(a.p.child.id(), "STOP");
    let asked = Instant::now();
    let r = command(
        &mut b.backend(),
        json!({"cmd":"push","uid":"frozen","data":"x"}),
    );
    signal(a.p.child.id(), "CONT");
    let waited = asked.elapsed();
    assert_eq!(r["receipt"]["unanswered"], json!(["a8"]), "{r}");
    assert_eq!(
        (r["receipt"]["sent"].clone(), r["receipt"]["nodes"].clone()),
        (json!(0), json!([])),
        "{r}"
    );
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn auth_and_select_come_from_the_url_and_a_wrong_password_keeps_the_link_down() {
    let dir = TempDir::new("cluster-redis-10");
    let redis = Redis::start_with(&dir.0, 0, &["--requirepass", "s3cret"]);
    let url = |pass: &str| format!("redis://:{pass}@127.0.0.1:{}/3", redis.port);
    let (a, b) = (
        node_at("a10", &url("s3cret"), "", "up"),
        node_at("b10", &url("s3cret"), "", "up"),
    );
    let mut tab = a.browser("secure", &b);
    assert_eq!(request_line(&mut b.backend(), r#"{"uid":"secure"}"#), "ok");
    assert_eq!(ws_read_text(&mut tab), r#"{"uid":"secure"}"#);
    // The routes are in database 3.
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"AUTH s3cret\r\nSELECT 3\r\nSISMEMBER pushman:route:secure a10\r\n")
        .unwrap();
    let mut reader = BufReader::new(s);
    let replies: Vec<String> = (0..3).map(|_| read_line(&mut reader)).collect();
    assert_eq!(replies, ["+OK\r", "+OK\r", ":1\r"]);

    // A wrong password: refused by Redis, the node keeps trying and says so, pushes to
    // other nodes fail at once.
    let c = node_at("c10", &url("wrong"), "", "down");
    let log = c.dir.path("stderr.log");
    let deadline = Instant::now() + TIMEOUT;
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("AUTH refused")
    {
        assert!(
            Instant::now() < deadline,
            "the refused AUTH was never logged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = c.status();
    assert_eq!(status["cluster"]["command_link"], "down", "{status}");
    let started = Instant::now();
    assert_eq!(
        request_line(&mut c.backend(), r#"{"uid":"secure"}"#),
        "fail"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn routes_are_written_only_for_a_uids_first_and_last_tab_on_a_node() {
    let dir = TempDir::new("cluster-redis-11");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a11", &redis, ""), node("b11", &redis, ""));
    let writes = |n: &Node| n.status()["cluster"]["route_writes"].as_u64().unwrap();
    let before = writes(&a);
    let mut tabs: Vec<Ws> = (0..3).map(|_| a.browser("multi", &b)).collect();
    let wait_writes = |want: u64| {
        let deadline = Instant::now() + TIMEOUT;
        while writes(&a) != want {
            assert!(
                Instant::now() < deadline,
                "route writes {} != {want}",
                writes(&a)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_writes(before + 1);
    assert_eq!(
        redis.cmd(&["SCARD", "pushman:route:multi"]).as_deref(),
        Some(":1")
    );
    for mut tab in tabs.drain(1..) {
        tab.close(None).unwrap();
        while tab.read().is_ok() {}
    }
    // Two tabs gone, one left: still routed, nothing written.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(writes(&a), before + 1);
    assert_eq!(request_line(&mut b.backend(), r#"{"uid":"multi"}"#), "ok");
    let mut last = tabs.pop().unwrap();
    assert_eq!(ws_read_text(&mut last), r#"{"uid":"multi"}"#);
    last.close(None).unwrap();
    while last.read().is_ok() {}
    // The server's side closes once the socket does (it lingers for the peer's FIN).
    drop(last);
    wait_writes(before + 2);
    assert_eq!(
        redis.cmd(&["EXISTS", "pushman:route:multi"]).as_deref(),
        Some(":0")
    );
    assert_eq!(request_line(&mut b.backend(), r#"{"uid":"multi"}"#), "fail");
}

#[test]
#[ignore = "needs redis-server and php (php-cli); .ci/run installs them (cargo test -- --include-ignored)"]
fn the_seeds_php_snippet_on_node_c_reaches_tabs_on_a_and_b_byte_exact() {
    let dir = TempDir::new("cluster-redis-12");
    let redis = Redis::start(&dir.0, 0);
    let (a, b, c) = (
        node("a12", &redis, ""),
        node("b12", &redis, ""),
        node("c12", &redis, ""),
    );
    let mut tab_a = a.browser("uid1", &c);
    let mut tab_b = b.browser("uid1", &c);
    // The PHP snippet of the original push.php article, pointed at node C.
    let script = format!(
        "<?php\n$client = stream_socket_client('tcp://{}', $errno, $errmsg, 1);\n\
         fwrite($client, json_encode(array('uid'=>'uid1','percent'=>'88%')).\"\\n\");\n\
         echo fread($client, 8192);\n",
        c.p.text
    );
    let path = dir.path("push.php");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("php")
        .arg(&path)
        .output()
        .expect("php is needed for this test (apt-get install php-cli)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    let frame = r#"{"uid":"uid1","percent":"88%"}"#;
    assert_eq!(ws_read_text(&mut tab_a), frame);
    assert_eq!(ws_read_text(&mut tab_b), frame);
}

/// A fake Redis on a free port: accepts connections, counts them, and answers every read
/// with `reply` (or nothing, if empty). Stops with the test process.
fn fake_redis(reply: &'static [u8]) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::{io::Read, sync::atomic::Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || (!reply.is_empty() && stream.write_all(reply).is_err()) {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn a_silent_or_garbled_redis_never_blocks_the_node_and_is_retried() {
    use std::sync::atomic::Ordering;
    for (name, reply) in [("silent", &b""[..]), ("garbled", &b"?not resp\r\n"[..])] {
        let (port, accepted) = fake_redis(reply);
        let url = format!("redis://127.0.0.1:{port}/0");
        let n = node_at(&format!("{name}13"), &url, "", "down");
        // Bound once the node says so (presence cannot be asked of the cluster here).
        let mut tab = ws_connect(n.p.ws, "/?pushman=1");
        tab.send(tungstenite::Message::text("here")).unwrap();
        tab.flush().unwrap();
        assert!(ws_read_text(&mut tab).contains("bound"));
        let mut backend = n.backend();
        let started = Instant::now();
        assert_eq!(
            request_line(&mut backend, r#"{"uid":"here"}"#),
            "ok",
            "{name}"
        );
        assert_eq!(ws_read_text(&mut tab), r#"{"uid":"here"}"#);
        assert_eq!(
            request_line(&mut backend, r#"{"uid":"elsewhere"}"#),
            "fail",
            "{name}"
        );
        let r = command(&mut backend, json!({"cmd":"online_list"}));
        assert_eq!(r["error"], "cluster unavailable", "{name}: {r}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name}: answers waited"
        );
        // Both links dropped (the 2 s reply timeout covers the subscription link's
        // SUBSCRIBE too, or a protocol error) and made again, never up.
        let deadline = started + Duration::from_millis(3500);
        while accepted.load(Ordering::SeqCst) < 4 {
            assert!(Instant::now() < deadline, "{name}: no reconnects");
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = n.status();
        assert_ne!(status["cluster"]["link"], "up", "{name}: {status}");
    }
}

/// `cmdstat_<name>` calls from `INFO commandstats` (0 when never called).
fn command_calls(redis: &Redis, name: &str) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "info", "commandstats"])
        .output()
        .expect("redis-cli (installed with redis-server)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs redis-server; .ci/run installs it (run with cargo test -- --include-ignored)"]
fn idle_nodes_claim_once_a_second_and_a_new_earliest_push_wakes_them() {
    let dir = TempDir::new("cluster-redis-claim");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("ca", &redis, ""), node("cb", &redis, ""));
    // Only the claim script reads the schedule by score.
    assert_eq!(redis.cmd(&["CONFIG", "RESETSTAT"]).as_deref(), Some("+OK"));
    std::thread::sleep(Duration::from_secs(2));
    let idle = command_calls(&redis, "zrangebyscore");
    // Two nodes, 2 s: at most one claim a second each (it was one per 50 ms tick: 80).
    assert!(idle <= 6, "{idle} claims in 2 s of idling");
    // A push scheduled while they sleep is claimed when due, not at the next wake: the
    // schedule script nudges every node. Three in a row, each on time.
    let mut tab = b.browser("soon", &a);
    for n in 0..3 {
        let accepted = Instant::now();
        let r = command(
            &mut a.backend(),
            json!({"cmd":"push","uid":"soon","data":format!("n{n}"),"delay":0.3}),
        );
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(ws_read_text(&mut tab), format!("n{n}"));
        let after = accepted.elapsed();
        assert!(after >= Duration::from_millis(300), "early: {after:?}");
        assert!(after < Duration::from_millis(600), "late: {after:?}");
    }
}

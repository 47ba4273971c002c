//! The `pushman` binary over time: delayed pushes (also across restart and `kill -9`),
//! tokens, heartbeats, limits, and the `start -d` / `status` / `connections` / `reload` /
//! `stop` command line.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

#[track_caller]
fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

fn bind(p: &Pushman, uid: &str) -> Ws {
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let mut api = tcp_connect(p.text);
    let deadline = Instant::now() + TIMEOUT;
    while command(&mut api, json!({"cmd":"online","uid":uid}))["connections"] == 0 {
        assert!(Instant::now() < deadline, "uid {uid} never came online");
        std::thread::sleep(Duration::from_millis(10));
    }
    ws
}

/// Reads a text message, recording when it arrived.
fn read_at(ws: &mut Ws) -> (String, Instant) {
    let text = ws_read_text(ws);
    (text, Instant::now())
}

#[test]
fn delayed_push_arrives_after_its_delay_and_not_before_and_can_be_cancelled() {
    let dir = TempDir::new("delay");
    let p = Pushman::start(&dir.config(""));
    let mut tab = bind(&p, "d");
    let mut api = tcp_connect(p.text);
    let sent = Instant::now();
    let r = command(
        &mut api,
        json!({"cmd":"push","uid":"d","data":"later","delay":1.0}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let cancelled = command(
        &mut api,
        json!({"cmd":"push","uid":"d","data":"never","delay":0.5}),
    );
    let pending = command(&mut api, json!({"cmd":"scheduled"}));
    assert_eq!(pending["pending"], 2, "{pending}");
    assert_eq!(
        command(&mut api, json!({"cmd":"cancel","id":cancelled["id"]}))["cancelled"],
        true
    );
    assert_eq!(
        command(&mut api, json!({"cmd":"cancel","id":cancelled["id"]}))["cancelled"],
        false
    );
    let (text, at) = read_at(&mut tab);
    assert_eq!(text, "later");
    assert!(
        at.duration_since(sent) >= Duration::from_millis(1000),
        "arrived early: {:?}",
        at - sent
    );
    assert_eq!(command(&mut api, json!({"cmd":"scheduled"}))["pending"], 0);
}

#[test]
fn scheduled_pushes_survive_a_graceful_restart_and_kill_9() {
    let dir = TempDir::new("durable");
    let config = dir.config("");
    for hard in [false, true] {
        let p = Pushman::start(&config);
        let mut api = tcp_connect(p.text);
        let r = command(
            &mut api,
            json!({"cmd":"push","uid":"k","data":format!("hard={hard}"),"delay":2.0}),
        );
        let at_ms = r["at_ms"].as_u64().expect("scheduled");
        if hard {
            p.kill9();
        } else {
            p.stop();
        }
        let p = Pushman::start(&config);
        let mut tab = bind(&p, "k");
        assert_eq!(ws_read_text(&mut tab), format!("hard={hard}"));
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            now_ms >= at_ms,
            "delivered {} ms before its time",
            at_ms - now_ms
        );
        p.stop();
    }
}

#[test]
fn tokens_accept_good_and_refuse_forged_and_expired() {
    let dir = TempDir::new("tokens");
    let p = Pushman::start(&dir.config("[auth]\nmode = \"token\"\nsecret = \"k3y\"\n"));
    let config = dir.path("pushman.toml");
    let mint = |uid: &str, ttl: &str| {
        let out = cli(
            &[
                "token",
                uid,
                "--ttl",
                ttl,
                "--config",
                config.to_str().unwrap(),
            ],
            &dir.0,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // A good token as first message, and another in the URL.
    let mut first = ws_connect(p.ws, "/");
    first
        .send(tungstenite::Message::text(mint("alice", "60")))
        .unwrap();
    let mut in_url = ws_connect(p.ws, &format!("/?token={}", mint("bob", "60")));
    let mut api = tcp_connect(p.text);
    let deadline = Instant::now() + TIMEOUT;
    while command(&mut api, json!({"cmd":"totals"}))["uids"] != 2 {
        assert!(Instant::now() < deadline, "tokens did not bind");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(request_line(&mut api, r#"{"uid":"bob"}"#), "ok");
    assert_eq!(ws_read_text(&mut in_url), r#"{"uid":"bob"}"#);

    let good = mint("carol", "60");
    let forged = good.replace("Y2Fyb2w", "bWFsbG9yeQ"); // uid swapped for "mallory"
    for (token, reason) in [
        (forged.as_str(), "invalid token"),
        ("garbage", "invalid token"),
    ] {
        let mut ws = ws_connect(p.ws, "/");
        ws.send(tungstenite::Message::text(token)).unwrap();
        expect_close(&mut ws, 1008, reason);
    }
    // Expired: minted with a ttl already past.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = pushman::push::token::mint(b"k3y", "dave", secs - 10);
    let mut ws = ws_connect(p.ws, &format!("/?token={expired}"));
    expect_close(&mut ws, 1008, "token expired");
    let status = command(&mut api, json!({"cmd":"totals"}));
    assert_eq!(status["uids"], 2);
}

#[track_caller]
fn expect_close(ws: &mut Ws, code: u16, reason: &str) {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), code, "reason {:?}", frame.reason);
                if !reason.is_empty() {
                    assert_eq!(frame.reason.as_str(), reason);
                }
                return;
            }
            Ok(tungstenite::Message::Ping(_)) => {}
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

#[test]
fn heartbeat_closes_a_client_that_stops_answering() {
    let dir = TempDir::new("heartbeat");
    let p =
        Pushman::start(&dir.config(
            "[heartbeat]\nping_interval = 0.2\nidle_timeout = 1.0\nhandshake_timeout = 1.0\n",
        ));
    // A client that keeps reading answers pings and stays.
    let mut alive = bind(&p, "alive");
    // A client that never reads never answers pings: closed after idle_timeout.
    let mut silent = bind(&p, "silent");
    // A client that never sends its uid: closed after handshake_timeout.
    let mut anonymous = ws_connect(p.ws, "/");
    let start = Instant::now();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = alive.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    while start.elapsed() < Duration::from_millis(2500) {
        match alive.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("the answering client was closed: {e}"),
        }
    }
    expect_close(&mut anonymous, 1008, "no uid in time");
    expect_close(&mut silent, 1001, "idle timeout");
    let mut api = tcp_connect(p.text);
    assert_eq!(
        command(&mut api, json!({"cmd":"online","uid":"alive"}))["connections"],
        1
    );
}

#[test]
fn connection_limits_and_oversized_client_messages() {
    let dir = TempDir::new("limits");
    let p = Pushman::start(
        &dir.config("[limits]\nmax_connections_per_ip = 2\nmax_client_message = 64\n"),
    );
    let _a = bind(&p, "a");
    let mut b = ws_connect(p.ws, "/");
    // the third connection from this IP is refused
    let stream = tcp_connect(p.ws);
    let refused = tungstenite::client::client(
        format!("ws://{}/", p.ws),
        tungstenite::stream::MaybeTlsStream::Plain(stream),
    );
    assert!(refused.is_err(), "third connection was accepted");
    // The refused one is not counted: two are open, and a slot frees when one closes.
    let status = || -> Value {
        let (code, body) = http_get(p.http, "/status", "").unwrap();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let s = status();
    assert_eq!(
        (s["connections"].as_u64(), s["connections_refused"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    // a 65-byte message from a browser is too big
    b.send(tungstenite::Message::text("x".repeat(65))).unwrap();
    expect_close(&mut b, 1009, "");
    let deadline = Instant::now() + TIMEOUT;
    while status()["connections"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the closed connection stays counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _c = bind(&p, "c");
    assert_eq!(status()["connections"], 2);
}

#[test]
fn cli_lifecycle_start_d_status_connections_reload_stop() {
    let dir = TempDir::new("cli");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    let out = cli(&["start", "-d", "--config", c], &dir.0);
    assert!(
        out.status.success(),
        "start -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("started (pid"));

    let again = cli(&["start", "-d", "--config", c], &dir.0);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let status = cli(&["status", "--config", c], &dir.0);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for want in [
        "pid",
        "uptime",
        "memory",
        "uids online",
        "pushes ok",
        "websocket",
        "text",
        "http",
    ] {
        assert!(text.contains(want), "status lacks {want:?}:\n{text}");
    }

    let conns = cli(&["connections", "--config", c], &dir.0);
    assert!(conns.status.success());
    assert!(String::from_utf8_lossy(&conns.stdout).contains("bytes_in"));

    // reload with a changed log level is accepted and logged
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("debug", "info"),
    )
    .unwrap();
    let reload = cli(&["reload", "--config", c], &dir.0);
    assert!(reload.status.success());
    let deadline = Instant::now() + TIMEOUT;
    while !std::fs::read_to_string(dir.path("pushman.log"))
        .unwrap_or_default()
        .contains("reloaded")
    {
        assert!(Instant::now() < deadline, "no reload in the log");
        std::thread::sleep(Duration::from_millis(20));
    }

    let stop = cli(&["stop", "--config", c], &dir.0);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    // Stopping a stopped server succeeds, as init scripts expect (server/tests/cli.rs has more).
    let not_running = cli(&["stop", "--config", c], &dir.0);
    assert!(not_running.status.success());
    assert!(String::from_utf8_lossy(&not_running.stdout).contains("not running"));
}

#[test]
fn cli_errors_name_the_cause_and_exit_nonzero() {
    let dir = TempDir::new("clierr");
    let bad = dir.path("bad.toml");
    std::fs::write(&bad, "[limits]\nsend_buffer = \"lots\"\n").unwrap();
    let out = cli(&["start", "--config", bad.to_str().unwrap()], &dir.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("line 2") && err.contains("send_buffer"),
        "{err}"
    );

    let missing = cli(
        &["start", "--config", dir.path("none.toml").to_str().unwrap()],
        &dir.0,
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read config"));

    // address in use
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.config("");
    let out = cli(
        &[
            "start",
            "--config",
            config.to_str().unwrap(),
            "--ws",
            &taken.local_addr().unwrap().to_string(),
        ],
        &dir.0,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot listen on"),
        "{err}"
    );

    let out = cli(&["config"], &dir.0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[heartbeat]"));
}

#[test]
fn origin_allow_list_refuses_other_origins() {
    use tungstenite::client::IntoClientRequest;
    let dir = TempDir::new("origin");
    let p = Pushman::start(&dir.config("[auth]\norigins = [\"http://good.example\"]\n"));
    let connect = |origin: &str| {
        let mut request = format!("ws://{}/", p.ws).into_client_request().unwrap();
        if !origin.is_empty() {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        let stream = tcp_connect(p.ws);
        // The status of a refusal, 101 for an accepted upgrade.
        match tungstenite::client::client(
            request,
            tungstenite::stream::MaybeTlsStream::Plain(stream),
        ) {
            Ok((_, response)) => response.status().as_u16(),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                resp.status().as_u16()
            }
            Err(e) => panic!("handshake failed otherwise: {e}"),
        }
    };
    assert_eq!(connect("http://good.example"), 101);
    assert_eq!(connect("http://evil.example"), 403);
    // Documented (PROTOCOL.md §1): with the list set, no Origin header at all is refused too,
    // and the match is exact (no trailing slash, no case folding).
    assert_eq!(connect(""), 403);
    assert_eq!(connect("http://good.example/"), 403);
    assert_eq!(connect("HTTP://GOOD.EXAMPLE"), 403);
}

#[test]
fn a_binary_first_message_is_closed_with_the_documented_1008_reason() {
    let dir = TempDir::new("binary-first");
    let p = Pushman::start(&dir.config(""));
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::binary(b"uid1".to_vec()))
        .unwrap();
    expect_close(
        &mut ws,
        1008,
        "the first message must be a text uid or token",
    );
}

#[test]
fn slow_consumers_are_closed_or_skipped_by_policy() {
    for policy in ["close", "drop"] {
        let dir = TempDir::new(&format!("slow-{policy}"));
        let p = Pushman::start(&dir.config(&format!(
            "[limits]\nsend_buffer = 65536\nslow_consumer = \"{policy}\"\n"
        )));
        let _never_reads = bind(&p, "slow");
        let mut api = tcp_connect(p.text);
        let data = "x".repeat(64 << 10);
        let mut dropped = 0;
        // The kernel's socket buffers take a few MiB first; 40 MiB is far beyond them.
        for _ in 0..640 {
            let r = command(&mut api, json!({"cmd":"push","uid":"slow","data":data}));
            dropped += r["receipt"]["dropped"].as_u64().unwrap_or(0);
        }
        let status: Value = {
            let (code, body) = http_get(p.http, "/status", "").unwrap();
            assert_eq!(code, 200);
            serde_json::from_str(&body).unwrap()
        };
        if policy == "close" {
            assert_eq!(status["slow_consumers_closed"], 1, "{status}");
        } else {
            assert_eq!(status["slow_consumers_closed"], 0, "{status}");
            assert!(
                dropped > 0 && status["pushes"]["dropped"].as_u64() == Some(dropped),
                "{status}"
            );
            assert_eq!(
                command(&mut api, json!({"cmd":"online","uid":"slow"}))["connections"],
                1
            );
        }
    }
}

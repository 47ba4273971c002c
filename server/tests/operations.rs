//! How pushman fits the way servers are run (issue 14): systemd's readiness protocol
//! (`Type=notify`) and log rotation with `mv` + `pushman reload`.

mod common;

use common::{daemon::*, *};
use std::{
    os::unix::net::UnixDatagram,
    time::{Duration, Instant},
};

/// The next datagram on `socket`, or `None` after `limit`.
fn next_state(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn systemd_hears_ready_once_listening_reloading_then_ready_and_stopping() {
    let dir = TempDir::new("sd-notify");
    let notify_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    let config = dir.config("");
    let server = Pushman::start_env(&config, "NOTIFY_SOCKET", notify_path.as_os_str());

    assert_eq!(next_state(&socket, TIMEOUT).as_deref(), Some("READY=1"));
    // Ready means ready: the listeners accept now.
    let mut ws = ws_connect(server.ws, "/");
    ws.send("uid-ready".into()).unwrap();
    assert_eq!(
        next_state(&socket, Duration::from_millis(300)),
        None,
        "one READY per start, nothing while serving"
    );

    signal(server.child.id(), "HUP");
    let reloading = next_state(&socket, TIMEOUT).expect("RELOADING after SIGHUP");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .expect("RELOADING carries MONOTONIC_USEC");
    assert!(usec > 0);
    assert_eq!(next_state(&socket, TIMEOUT).as_deref(), Some("READY=1"));

    let pid = server.child.id();
    signal(pid, "TERM");
    assert_eq!(next_state(&socket, TIMEOUT).as_deref(), Some("STOPPING=1"));
    server.stop_after_signal();
    assert_eq!(
        next_state(&socket, Duration::from_millis(300)),
        None,
        "STOPPING is said once"
    );
}

#[test]
fn reload_moves_a_detached_daemon_onto_a_fresh_log_after_rotation() {
    let dir = TempDir::new("log-reopen");
    let config = dir.config("");
    let config = config.to_str().unwrap();
    let started = cli(&["start", "-d", "--config", config], &dir.0);
    assert!(started.status.success(), "{started:?}");

    let log = dir.path("pushman.log");
    let rotated = dir.path("pushman.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let reloaded = cli(&["reload", "--config", config], &dir.0);
    assert!(reloaded.status.success(), "{reloaded:?}");

    let deadline = Instant::now() + TIMEOUT;
    let fresh = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("reloaded") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(fresh.contains("reopened log file"), "fresh log: {fresh}");
    assert!(fresh.contains("reloaded"), "fresh log: {fresh}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("listening on"), "rotated log: {old}");
    assert!(
        !old.contains("reopened") && !old.contains("reloaded"),
        "nothing after the rotation goes to the moved file: {old}"
    );

    let stopped = cli(&["stop", "--config", config], &dir.0);
    assert!(stopped.status.success(), "{stopped:?}");
    let fresh = std::fs::read_to_string(&log).unwrap();
    assert!(fresh.contains("stopped"), "fresh log: {fresh}");
}

/// The repository's root, where `contrib/` lives.
fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let dir = TempDir::new("unit");
    let unit = std::fs::read_to_string(repo("contrib/systemd/pushman.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("LimitNOFILE="));
    // verify checks that ExecStart's binary exists: point it at the one under test.
    let unit = unit.replace("/usr/local/bin/pushman", BIN);
    let path = dir.path("pushman.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd; .ci/run installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("pushman.service"),
        "warnings about the unit: {stderr}"
    );
}

#[test]
fn the_shipped_configs_parse() {
    for file in [
        "contrib/systemd/pushman.toml",
        "contrib/docker/pushman.toml",
    ] {
        let path = repo(file);
        let dir = TempDir::new("shipped-config");
        let out = cli(&["status", "--config", path.to_str().unwrap()], &dir.0);
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        // Parsed and validated: the only complaint left is that no server runs.
        assert!(said.contains("not running"), "{file}: {said}");
    }
}

/// Waits until `path` holds a line for which `found` is true; returns every line so far.
fn wait_for_line(path: &std::path::Path, found: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.iter().any(|l| found(l)) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no such line in:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_format_json_writes_one_object_per_line_and_reload_switches_it() {
    let dir = TempDir::new("log-json");
    let config = dir.config("log_format = \"json\"");
    let server = Pushman::start(&config);
    let stderr = dir.path("stderr.log");
    let mut ws = ws_connect(server.ws, "/");
    ws.send("uid \"quoted\"\nnewline".into()).unwrap();
    let lines = wait_for_line(&stderr, |l| l.contains("quoted"));
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line: {line:?}: {e}"));
        for key in ["ts", "level", "target", "msg"] {
            assert!(value[key].is_string(), "{key} missing in {line}");
        }
    }
    let listening = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["msg"].as_str().unwrap().contains("listening on"))
        .expect("the listening line");
    assert_eq!(listening["level"], "INFO");
    assert!(listening["ts"].as_str().unwrap().ends_with('Z'));

    // Back to text on reload: the reload's own line is the first plain one.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("log_format = \"json\"", "")).unwrap();
    signal(server.child.id(), "HUP");
    let lines = wait_for_line(&stderr, |l| l.starts_with('[') && l.contains("reloaded"));
    let plain = lines.iter().find(|l| l.contains("reloaded")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(plain).is_err(),
        "{plain}"
    );
    server.stop();
}

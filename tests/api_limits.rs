//! The real binary under resource pressure: out of file descriptors, backends that do not
//! read their replies, and the internal APIs' own caps and timeouts (issue 9, items 6, 7, 12).

mod common;

use common::{daemon::*, *};
use std::{
    net::TcpStream,
    time::{Duration, Instant},
};

/// Lines of the daemon's log (stderr) containing `needle`.
fn log_lines(dir: &TempDir, needle: &str) -> Vec<String> {
    std::fs::read_to_string(dir.path("stderr.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// Waits until the log has a line containing `needle`.
#[track_caller]
fn wait_for_log(dir: &TempDir, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some(line) = log_lines(dir, needle).pop() {
            return line;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no log line with {needle:?}");
}

/// User plus system CPU time of process `pid`, in clock ticks (`/proc/PID/stat` fields 14
/// and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may contain spaces; count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Connects a browser as `uid` and waits until a push reaches it, proving it is served.
#[track_caller]
fn browser_is_served(p: &Pushman, uid: &str) -> Ws {
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    let mut backend = tcp_connect(p.text);
    let deadline = Instant::now() + TIMEOUT;
    // The uid binds when its first message is processed; retry the push until it has.
    while request_line(&mut backend, &format!(r#"{{"uid":"{uid}","n":1}}"#)) != "ok" {
        assert!(Instant::now() < deadline, "{uid} never came online");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ws_read_text(&mut ws), format!(r#"{{"uid":"{uid}","n":1}}"#));
    ws
}

#[test]
fn issue_9_out_of_fds_pauses_accepting_logs_once_and_resumes() {
    let dir = TempDir::new("emfile");
    // Idle sockets must not be closed by the handshake timeout during the test.
    let config = dir.config("[heartbeat]\nhandshake_timeout = 120.0\n");
    let p = Pushman::start_nofile(&config, 64);
    let pid = p.child.id();
    // Twice the limit: the kernel completes every handshake into the backlog; the server
    // runs out of descriptors part way.
    let mut clients: Vec<TcpStream> = (0..128).map(|_| tcp_connect(p.ws)).collect();
    wait_for_log(&dir, "pausing accepts");
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // A spinning loop burns ~200 ticks in 2 s; a paused listener retries at most once a
    // second.
    assert!(
        used <= 30,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    let accept_lines = log_lines(&dir, "accept on websocket");
    assert_eq!(
        accept_lines.len(),
        1,
        "one line per episode, got {accept_lines:#?}"
    );
    assert!(
        accept_lines[0].contains("Too many open files"),
        "{accept_lines:?}"
    );
    // Free descriptors: service resumes within the longest backoff.
    clients.truncate(8);
    let _ws = browser_is_served(&p, "after-emfile");
    let resumed = wait_for_log(&dir, "accept on websocket resumed");
    assert!(resumed.contains("accepts failed"), "{resumed}");
    drop(clients);
    p.stop();
}

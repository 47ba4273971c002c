//! The real binary under resource pressure: out of file descriptors, backends that do not
//! read their replies, and the internal APIs' own caps and timeouts (issue 9, items 6, 7, 12).

mod common;

use common::{daemon::*, *};
use std::{
    io::{BufReader, Read, Write},
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

/// Schedules `n` pushes of `size` bytes an hour ahead, pipelined on one connection.
fn schedule_pushes(p: &Pushman, n: usize, size: usize) {
    let mut backend = tcp_connect(p.text);
    let data = "d".repeat(size);
    let line = format!(r#"{{"cmd":"push","uid":"later","data":"{data}","delay":3600}}"#);
    let batch: String = (0..n).map(|_| format!("{line}\n")).collect();
    backend.write_all(batch.as_bytes()).unwrap();
    let mut reader = BufReader::new(backend);
    for i in 0..n {
        let reply = read_line(&mut reader);
        assert!(
            reply.contains(r#""ok":true"#) && reply.contains(r#""id":"#),
            "push {i}: {reply}"
        );
    }
}

/// A parsed `scheduled` reply: how many entries it lists, and each one's data length.
#[track_caller]
fn check_scheduled(reply: &[u8], want: usize, size: usize) {
    let value: serde_json::Value = serde_json::from_slice(reply).expect("a JSON reply");
    assert_eq!(
        value["ok"],
        true,
        "{}",
        String::from_utf8_lossy(&reply[..200])
    );
    let list = value["scheduled"].as_array().expect("a scheduled list");
    assert_eq!(list.len(), want);
    assert!(list
        .iter()
        .all(|e| e["data"].as_str().unwrap().len() == size));
}

/// Nothing more arrives on `stream` for a short while.
#[track_caller]
fn assert_quiet(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
}

#[test]
fn issue_9_text_api_answers_every_pipelined_line_in_order_under_backpressure() {
    let dir = TempDir::new("text-backpressure");
    let p = Pushman::start(&dir.config(""));
    schedule_pushes(&p, 1000, 2048);
    let mut backend = tcp_connect(p.text);
    let mut batch = r#"{"cmd":"scheduled","limit":1000}"#.to_string() + "\n";
    batch = batch.repeat(60) + "{\"cmd\":\"totals\"}\n";
    backend.write_all(batch.as_bytes()).unwrap();
    // Replies far beyond the send buffer pile up unread.
    std::thread::sleep(Duration::from_secs(3));
    let mut reader = BufReader::new(backend.try_clone().unwrap());
    for i in 0..60 {
        let reply = read_line(&mut reader);
        assert!(
            reply.len() > 2_000_000,
            "reply {i} is {} bytes",
            reply.len()
        );
        check_scheduled(reply.as_bytes(), 1000, 2048);
    }
    let totals: serde_json::Value = serde_json::from_str(&read_line(&mut reader)).unwrap();
    assert_eq!(totals["ok"], true);
    assert_eq!(totals["scheduled"], 1000, "{totals}");
    // Exactly 61 replies, and the connection still serves.
    assert_quiet(&mut backend);
    let again: serde_json::Value =
        serde_json::from_str(&request_line(&mut backend, r#"{"cmd":"totals"}"#)).unwrap();
    assert_eq!(again["scheduled"], 1000);
    p.stop();
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: (status, body).
#[track_caller]
fn read_response(reader: &mut impl std::io::BufRead) -> (u16, Vec<u8>) {
    let status_line = read_line(reader);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut length = None;
    loop {
        let header = read_line(reader);
        let header = header.trim_end_matches('\r');
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0u8; length.expect("a Content-Length")];
    reader.read_exact(&mut body).unwrap();
    (status, body)
}

#[test]
fn issue_9_http_api_answers_every_pipelined_request_in_order_under_backpressure() {
    let dir = TempDir::new("http-backpressure");
    let p = Pushman::start(&dir.config(""));
    schedule_pushes(&p, 1000, 2048);
    let mut client = tcp_connect(p.http);
    let host = p.http;
    let scheduled = format!("GET /scheduled?limit=1000 HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let batch = scheduled.repeat(40) + &format!("GET /totals HTTP/1.1\r\nHost: {host}\r\n\r\n");
    client.write_all(batch.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    for i in 0..40 {
        let (status, body) = read_response(&mut reader);
        assert_eq!(status, 200, "response {i}");
        check_scheduled(&body, 1000, 2048);
    }
    let (status, body) = read_response(&mut reader);
    assert_eq!(status, 200);
    let totals: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(totals["scheduled"], 1000, "{totals}");
    assert_quiet(&mut client);
    p.stop();
}

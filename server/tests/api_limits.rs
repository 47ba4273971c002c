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

/// Reads until the server closes; returns what came and how long it took.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, start.elapsed())
            }
            Err(e) => panic!("no close after {:?}: {e}", start.elapsed()),
        }
    }
}

#[test]
fn issue_9_dribbled_requests_are_cut_at_the_request_timeout_and_idle_keep_alive_closes() {
    let dir = TempDir::new("api-timeouts");
    let config = "[limits]\napi_request_timeout = 1.5\nhttp_idle_timeout = 2.0\n";
    let p = Pushman::start(&dir.config(config));
    // A head dribbled a byte every 100 ms never completes: 408, closed after ~1.5 s.
    let mut slow = tcp_connect(p.http);
    let mut dribble = slow.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for byte in b"GET /status HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if dribble.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (reply, took) = read_until_closed(&mut slow);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
    writer.join().unwrap();
    // The same on the text port: no reply for a partial line, just the close.
    let mut line = tcp_connect(p.text);
    line.write_all(br#"{"cmd":"tot"#).unwrap();
    let (reply, took) = read_until_closed(&mut line);
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A normal request afterwards is served; its keep-alive connection idles out after 2 s.
    let mut client = tcp_connect(p.http);
    let host = p.http;
    client
        .write_all(format!("GET /totals HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    assert_eq!(read_response(&mut reader).0, 200);
    let (rest, idle) = read_until_closed(&mut client);
    assert!(rest.is_empty());
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(6),
        "{idle:?}"
    );
    // The text port has no idle timeout by default: a quiet backend stays connected.
    let mut backend = tcp_connect(p.text);
    std::thread::sleep(Duration::from_millis(2500));
    let totals = request_line(&mut backend, r#"{"cmd":"totals"}"#);
    assert!(totals.contains(r#""ok":true"#), "{totals}");
    assert_eq!(log_lines(&dir, "request not complete within").len(), 2);
    p.stop();
}

#[test]
fn issue_9_each_api_listener_is_capped_and_refuses_the_excess_cleanly() {
    let dir = TempDir::new("api-cap");
    let p = Pushman::start(&dir.config("[limits]\nmax_api_connections = 3\n"));
    let mut first: Vec<TcpStream> = (0..3).map(|_| tcp_connect(p.text)).collect();
    for backend in &mut first {
        assert!(request_line(backend, r#"{"cmd":"totals"}"#).contains(r#""ok":true"#));
    }
    let mut extra = tcp_connect(p.text);
    let (reply, _) = read_until_closed(&mut extra);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "{\"error\":\"too many API connections\",\"ok\":false}\n"
    );
    // The first three are still served; the HTTP listener has its own cap.
    for backend in &mut first {
        assert!(request_line(backend, r#"{"cmd":"totals"}"#).contains(r#""ok":true"#));
    }
    let host = p.http;
    let request = format!("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut http: Vec<TcpStream> = (0..3).map(|_| tcp_connect(p.http)).collect();
    for client in &mut http {
        client.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        assert_eq!(read_response(&mut reader).0, 200);
    }
    let mut extra = tcp_connect(p.http);
    extra.write_all(request.as_bytes()).unwrap();
    let (reply, _) = read_until_closed(&mut extra);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    assert!(reply.contains("too many API connections"), "{reply}");
    // Closing one makes room again.
    drop(first.pop());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        let mut again = tcp_connect(p.text);
        let reply = request_line(&mut again, r#"{"cmd":"totals"}"#);
        if reply.contains(r#""ok":true"#) {
            let mut reader = BufReader::new(http[0].try_clone().unwrap());
            http[0].write_all(request.as_bytes()).unwrap();
            break read_response(&mut reader).1;
        }
        assert!(Instant::now() < deadline, "no room after a close: {reply}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    let refused = status["api_connections_refused"].as_u64().unwrap();
    assert!((2..=3).contains(&refused), "{status}");
    p.stop();
}

#[test]
fn issue_9_api_connections_cannot_take_the_last_descriptors_from_browsers() {
    let dir = TempDir::new("api-fd-reserve");
    // Default reserve (128) is capped at half of this limit: 32 kept for browsers.
    let p = Pushman::start_nofile(&dir.config(""), 64);
    let host = p.http;
    let request = format!("GET /totals HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 64, "the API took every descriptor");
        let mut client = tcp_connect(p.http);
        client.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        match read_response(&mut reader) {
            (200, _) => held.push(client),
            (status, body) => break (status, body),
        }
    };
    assert_eq!(refused.0, 503, "{}", String::from_utf8_lossy(&refused.1));
    assert!(
        held.len() >= 8,
        "the API got only {} connections",
        held.len()
    );
    // With the API full, browsers still connect and bind.
    let mut browsers: Vec<Ws> = (0..10).map(|_| ws_connect(p.ws, "/")).collect();
    for (i, ws) in browsers.iter_mut().enumerate() {
        ws.send(tungstenite::Message::text(format!("b{i}")))
            .unwrap();
    }
    // Free the API's descriptors; once the server has seen the closes, backends are
    // served again (a refused one gets its error line and a close).
    drop(held);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut backend = tcp_connect(p.text);
        let _ = backend.write_all(b"{\"uid\":\"b9\",\"n\":1}\n");
        let mut reply = String::new();
        let _ = std::io::BufRead::read_line(&mut BufReader::new(backend), &mut reply);
        if reply == "ok\n" {
            break;
        }
        assert!(Instant::now() < deadline, "b9 never came online: {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ws_read_text(&mut browsers[9]), r#"{"uid":"b9","n":1}"#);
    p.stop();
}

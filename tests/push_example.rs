//! The push.php flow end to end against `examples/push`, with a real WebSocket client and a
//! raw TCP backend, as the PHP original's clients would talk to it.

mod common;

use common::*;
use std::{io::Write, process::Command, time::Duration};

fn start() -> Example {
    run_example("push", &["127.0.0.1:0", "127.0.0.1:0"], 2)
}

/// Connects a browser-like client and sends its uid; waits until the server has bound it.
fn browser(ex: &Example, uid: &str) -> Ws {
    let mut ws = ws_connect(ex.addrs[0], "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    // The uid is bound once the server read it; a push that reports ok proves it.
    let mut backend = tcp_connect(ex.addrs[1]);
    let probe = format!(r#"{{"uid":"{uid}","probe":true}}"#);
    for _ in 0..100 {
        if request_line(&mut backend, &probe) == "ok" {
            assert_eq!(ws_read_text(&mut ws), probe);
            return ws;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("uid {uid} never bound");
}

#[test]
fn push_to_uid_answers_ok_and_delivers_the_whole_line() {
    let ex = start();
    let mut ws = browser(&ex, "uid1");
    let mut backend = tcp_connect(ex.addrs[1]);
    // The PHP snippet: fwrite(json_encode(['uid'=>'uid1','percent'=>'88%'])."\n"); fread → "ok\n"
    let line = r#"{"uid":"uid1","percent":"88%"}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    assert_eq!(ws_read_text(&mut ws), line);
}

#[test]
fn a_uid_written_with_escapes_reaches_its_tab() {
    let ex = start();
    let mut ws = browser(&ex, "alice");
    let mut backend = tcp_connect(ex.addrs[1]);
    let line = r#"{"uid":"al\u0069ce","n":1}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    assert_eq!(ws_read_text(&mut ws), line);
}

#[test]
fn push_to_unknown_uid_and_malformed_lines_answer_fail_and_harm_nobody() {
    let ex = start();
    let mut ws = browser(&ex, "alice");
    let mut backend = tcp_connect(ex.addrs[1]);
    for bad in [
        r#"{"uid":"nobody","x":1}"#,
        "not json",
        r#"{"percent":"1%"}"#,
        r#"{"uid":["x"]}"#,
        r#"{"uid":42}"#,
        // Addressed to alice, but `broadcast` must be a boolean.
        r#"{"uid":"alice","broadcast":"yes"}"#,
        "",
        "\u{0}\u{1}\u{2}",
    ] {
        assert_eq!(request_line(&mut backend, bad), "fail", "line {bad:?}");
    }
    // Not UTF-8 throughout, so not JSON: it would be a text frame a browser refuses (1007).
    let mut reader = std::io::BufReader::new(backend.try_clone().unwrap());
    for bad in [
        &b"{\"uid\":\"alice\",\"pad\":\"\xff\"}\n"[..],
        b"{\"broadcast\":true,\"pad\":\"\xc3\"}\n",
    ] {
        backend.write_all(bad).unwrap();
        assert_eq!(read_line(&mut reader), "fail", "line {bad:?}");
    }
    let line = r#"{"uid":"alice","after":"bad lines"}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    assert_eq!(ws_read_text(&mut ws), line);
}

#[test]
fn two_tabs_of_one_uid_both_receive_and_closing_the_older_keeps_the_newer() {
    let ex = start();
    let mut old_tab = browser(&ex, "u");
    let mut new_tab = browser(&ex, "u");
    // browser() probes each tab; the old tab saw the new tab's probe too.
    assert_eq!(ws_read_text(&mut old_tab), r#"{"uid":"u","probe":true}"#);
    let mut backend = tcp_connect(ex.addrs[1]);
    let line = r#"{"uid":"u","n":1}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    assert_eq!(ws_read_text(&mut old_tab), line);
    assert_eq!(ws_read_text(&mut new_tab), line);

    old_tab.close(None).unwrap();
    while old_tab.read().is_ok() {}
    let line = r#"{"uid":"u","n":2}"#;
    // The old tab's close may still be in flight; the new tab stays bound throughout.
    assert_eq!(request_line(&mut backend, line), "ok");
    assert_eq!(ws_read_text(&mut new_tab), line);
}

#[test]
fn broadcast_reaches_every_uid() {
    let ex = start();
    let mut tabs: Vec<Ws> = (0..3).map(|i| browser(&ex, &format!("b{i}"))).collect();
    let mut backend = tcp_connect(ex.addrs[1]);
    let line = r#"{"broadcast":true,"msg":"hello all"}"#;
    assert_eq!(request_line(&mut backend, line), "ok");
    for tab in &mut tabs {
        assert_eq!(ws_read_text(tab), line);
    }
}

#[test]
fn split_and_pipelined_backend_lines_are_answered_in_order() {
    let ex = start();
    let mut ws = browser(&ex, "p");
    let mut backend = tcp_connect(ex.addrs[1]);
    // One write holding three lines (one with \r\n), then one line split over three writes.
    backend
        .write_all(b"{\"uid\":\"p\",\"n\":1}\n{\"uid\":\"x\"}\r\n{\"uid\":\"p\",\"n\":3}\n")
        .unwrap();
    for part in [&b"{\"uid\":"[..], b"\"p\",\"n\"", b":4}\n"] {
        backend.write_all(part).unwrap();
        backend.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut reader = std::io::BufReader::new(backend.try_clone().unwrap());
    let answers: Vec<String> = (0..4).map(|_| read_line(&mut reader)).collect();
    assert_eq!(answers, ["ok", "fail", "ok", "ok"]);
    for n in [1, 3, 4] {
        assert_eq!(
            ws_read_text(&mut ws),
            format!("{{\"uid\":\"p\",\"n\":{n}}}")
        );
    }
}

#[test]
fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    let mut ex = start();
    let mut ws = browser(&ex, "s");
    let status = Command::new("kill")
        .args(["-TERM", &ex.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    };
    let frame = close.expect("close frame with a code");
    assert_eq!(u16::from(frame.code), 1001);
    // Answer the close so the server need not wait out its close timeout.
    let _ = ws.flush();
    drop(ws);
    let exit = wait_timeout(&mut ex.child, Duration::from_secs(10)).expect("server did not exit");
    assert!(exit.success(), "exit status {exit}");
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

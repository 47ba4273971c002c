//! Every scheme against a real socket: echo servers built with the library on port 0.

mod common;

use common::*;
use pushman::{codec::http::Response, Message, Refusal, Worker};
use std::io::{BufReader, Read, Write};

/// A worker on `scheme://127.0.0.1:0` echoing every message in its own framing.
fn echo(scheme: &str) -> Worker<()> {
    let mut worker = Worker::new(&format!("{scheme}://127.0.0.1:0")).unwrap();
    worker.on_message(|ctx, conn, msg| {
        let _ = match msg {
            Message::Binary(b) => ctx.io.send_binary(conn, b),
            Message::Request(req) => ctx.io.respond(
                conn,
                &Response::new(200)
                    .header("X-Path", req.path())
                    .body(req.body.clone()),
            ),
            other => ctx.io.send(conn, other.as_bytes()),
        };
    });
    worker
}

#[test]
fn tcp_echoes_raw_bytes() {
    let server = serve(|| ((), vec![echo("tcp")]));
    let mut client = tcp_connect(server.addr());
    client.write_all(b"hello\x00world").unwrap();
    let mut got = [0u8; 11];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\x00world");
}

#[test]
fn text_splits_lines_accepts_crlf_and_answers_pipelined_lines_in_order() {
    let server = serve(|| ((), vec![echo("text")]));
    let mut client = tcp_connect(server.addr());
    client.write_all(b"one\r\ntwo\nthr").unwrap();
    client.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    client.write_all(b"ee\n").unwrap();
    let mut reader = BufReader::new(client);
    for want in ["one", "two", "three"] {
        assert_eq!(read_line(&mut reader), want);
    }
}

#[test]
fn frame_echoes_length_prefixed_payloads() {
    let server = serve(|| ((), vec![echo("frame")]));
    let mut client = tcp_connect(server.addr());
    let mut wire = Vec::new();
    for payload in [&b"abc"[..], b"", b"0123456789"] {
        wire.extend_from_slice(&((payload.len() + 4) as u32).to_be_bytes());
        wire.extend_from_slice(payload);
    }
    // byte at a time: the codec must reassemble across reads
    for byte in &wire {
        client.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let mut got = vec![0u8; wire.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, wire);
}

#[test]
fn http_answers_keep_alive_requests_and_closes_on_connection_close() {
    let server = serve(|| ((), vec![echo("http")]));
    let mut client = tcp_connect(server.addr());
    client
        .write_all(b"POST /a?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    client
        .write_all(b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let all = String::from_utf8(read_to_end(&mut client)).unwrap();
    let first = all.find("HTTP/1.1 200").expect("first response");
    let second = all[first + 1..]
        .find("HTTP/1.1 200")
        .expect("second response")
        + first
        + 1;
    assert!(
        all[first..second].contains("X-Path: /a") && all[first..second].ends_with("hello"),
        "{all}"
    );
    assert!(all[second..].contains("X-Path: /b"), "{all}");
}

#[test]
fn http_malformed_request_gets_400_and_a_close() {
    let server = serve(|| ((), vec![echo("http")]));
    let mut client = tcp_connect(server.addr());
    client.write_all(b"GARBAGE\x01 / HTTP/9\r\n\r\n").unwrap();
    let all = String::from_utf8_lossy(&read_to_end(&mut client)).to_string();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
}

#[test]
fn websocket_echoes_text_and_binary() {
    let server = serve(|| ((), vec![echo("websocket")]));
    let mut ws = ws_connect(server.addr(), "/chat?room=1");
    ws.send(tungstenite::Message::text("héllo")).unwrap();
    assert_eq!(ws_read_text(&mut ws), "héllo");
    ws.send(tungstenite::Message::binary(vec![0u8, 255, 7]))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        tungstenite::Message::binary(vec![0u8, 255, 7])
    );
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn websocket_echoes_a_16_mib_message() {
    let server = serve(|| {
        let mut worker = echo("websocket");
        worker.limits.max_package_size = 32 << 20;
        worker.limits.max_send_buffer_size = 32 << 20;
        ((), vec![worker])
    });
    let mut ws = ws_connect(server.addr(), "/");
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    ws.send(tungstenite::Message::binary(big.clone())).unwrap();
    match ws.read().unwrap() {
        tungstenite::Message::Binary(got) => assert!(got[..] == big[..], "16 MiB echo differs"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn plain_http_on_a_websocket_port_gets_400() {
    let server = serve(|| ((), vec![echo("websocket")]));
    let mut client = tcp_connect(server.addr());
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let all = String::from_utf8_lossy(&read_to_end(&mut client)).to_string();
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
    assert!(all.contains("WebSocket"), "{all}");
}

#[test]
fn plain_http_on_a_websocket_port_can_be_served() {
    let server = serve(|| {
        let mut worker = echo("websocket");
        worker.on_http_request(|_, _, req| {
            Response::new(200).body(format!("page for {}", req.path()))
        });
        ((), vec![worker])
    });
    let mut client = tcp_connect(server.addr());
    client
        .write_all(b"GET /demo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let all = String::from_utf8_lossy(&read_to_end(&mut client)).to_string();
    assert!(
        all.starts_with("HTTP/1.1 200") && all.ends_with("page for /demo"),
        "{all}"
    );
}

#[test]
fn handshake_hook_sees_the_query_and_can_refuse() {
    let server = serve(|| {
        let mut worker = echo("websocket");
        worker.on_ws_handshake(|_, _, req| match req.query_param("token").as_deref() {
            Some("good") => Ok(()),
            _ => Err(Refusal {
                status: 403,
                reason: "bad token".into(),
            }),
        });
        ((), vec![worker])
    });
    let mut ok = ws_connect(server.addr(), "/?token=good");
    ok.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(ws_read_text(&mut ok), "hi");

    let stream = tcp_connect(server.addr());
    let refused = tungstenite::client::client(
        format!("ws://{}/?token=bad", server.addr()),
        tungstenite::stream::MaybeTlsStream::Plain(stream),
    );
    match refused {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 403);
        }
        other => panic!("expected a 403, got {:?}", other.map(|_| ())),
    }
}

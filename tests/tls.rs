//! TLS listeners with real clients (tungstenite and rustls, trusting a CA made here):
//! round trips over wss:// and https://, a handshake fed one byte per segment, large and
//! burst output through a full socket, garbage and stalled handshakes closed without
//! affecting others, and a certificate replaced for new connections only.

mod common;

use common::{tls::*, *};
use pushman::{ConnId, Message, TlsConfig, TlsError, Worker};
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tungstenite::Message as WsMessage;

fn tls_config(cert: &ServerCert) -> TlsConfig {
    TlsConfig::from_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes()).expect("valid PEM")
}

/// A wss:// echo worker; a text `reload` makes it serve `next` from then on; `big N`
/// answers one message of N bytes, `burst N` N numbered small ones.
fn echo(tls: TlsConfig, next: Option<TlsConfig>) -> Worker<()> {
    let mut worker = Worker::new("websocket://127.0.0.1:0").unwrap();
    worker.name = "wss".into();
    worker.tls = Some(tls);
    worker.limits.request_timeout = Some(Duration::from_millis(500));
    worker.limits.max_send_buffer_size = 64 << 20;
    let mut next = next;
    worker.on_message(move |ctx, conn, msg| {
        let Message::Text(text) = msg else { return };
        if text == "reload" {
            let done = ctx.io.set_tls("wss", next.take().expect("one reload"));
            let _ = ctx.io.send(conn, format!("reloaded {done}"));
        } else if let Some(n) = text.strip_prefix("big ") {
            let _ = ctx.io.send(conn, "x".repeat(n.parse().unwrap()));
        } else if let Some(n) = text.strip_prefix("burst ") {
            for i in 0..n.parse::<usize>().unwrap() {
                ctx.io.send(conn, format!("{i}")).expect("taken");
            }
        } else {
            let tls = ctx.io.is_tls(conn);
            let _ = ctx.io.send(conn, format!("{text} tls={tls}"));
        }
    });
    worker
}

#[test]
fn wss_round_trip_with_a_chain_and_https_on_the_same_worker() {
    let ca = TestCa::new();
    let cert = ca.server_cert("first");
    let server = serve({
        let tls = tls_config(&cert);
        move || {
            let mut ws = echo(tls.clone(), None);
            ws.on_http_request(|_, _, request| {
                pushman::codec::http::Response::new(200).body(format!("page {}", request.path()))
            });
            ((), vec![ws])
        }
    });
    let mut ws = wss_connect(server.addr(), "/", &ca);
    assert_eq!(peer_leaf(&ws), cert.leaf);
    ws.send(WsMessage::text("hello")).unwrap();
    assert_eq!(ws_read_text(&mut ws), "hello tls=true");
    let page = https_get(server.addr(), "/demo", &ca);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("page /demo"), "{page}");
    // ALPN: the server picked http/1.1.
    let mut tls = tls_stream(server.addr(), &ca);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    tls.flush().unwrap();
    let mut first = [0u8; 12];
    tls.read_exact(&mut first).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// Wraps a socket so every write leaves as its own tiny segment: the server's TLS state
/// machine sees the ClientHello (and everything after) arrive a byte or two at a time.
struct Dribble(TcpStream);

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Dribble {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(2);
        self.0.write_all(&buf[..n])?;
        std::thread::sleep(Duration::from_micros(200));
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn a_handshake_fed_in_two_byte_segments_completes() {
    let ca = TestCa::new();
    let cert = ca.server_cert("dribble");
    let server = serve({
        let tls = tls_config(&cert);
        move || ((), vec![echo(tls, None)])
    });
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client_tls_with_config(
        format!("wss://localhost:{}/", server.addr().port()),
        Dribble(stream),
        None,
        Some(tungstenite::Connector::Rustls(ca.client_config())),
    )
    .expect("handshake in small pieces");
    ws.send(WsMessage::text("slowly")).unwrap();
    loop {
        match ws.read().unwrap() {
            WsMessage::Text(t) => break assert_eq!(t.as_str(), "slowly tls=true"),
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn large_and_burst_output_through_a_full_socket_arrives_whole_and_in_order() {
    let ca = TestCa::new();
    let cert = ca.server_cert("bulk");
    let server = serve({
        let tls = tls_config(&cert);
        move || ((), vec![echo(tls, None)])
    });
    let mut ws = wss_connect(server.addr(), "/", &ca);
    // 8 MiB in one message: sealed 64 KiB at a time, most of it waiting for WRITABLE.
    ws.send(WsMessage::text("big 8388608")).unwrap();
    let big = ws_read_text(&mut ws);
    assert_eq!(big.len(), 8 << 20);
    assert!(big.bytes().all(|b| b == b'x'));
    // 200,000 small messages in one turn: gathered into records, in order.
    ws.send(WsMessage::text("burst 200000")).unwrap();
    for i in 0..200_000 {
        assert_eq!(ws_read_text(&mut ws), i.to_string());
    }
    ws.send(WsMessage::text("still")).unwrap();
    assert_eq!(ws_read_text(&mut ws), "still tls=true");
}

/// Reads until the server closes; returns what came and how long it took.
fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, started.elapsed())
            }
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn garbage_instead_of_a_client_hello_is_closed_and_others_are_unaffected() {
    let ca = TestCa::new();
    let cert = ca.server_cert("garbage");
    let server = serve({
        let tls = tls_config(&cert);
        move || ((), vec![echo(tls, None)])
    });
    let mut good = wss_connect(server.addr(), "/", &ca);
    let attempts: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n",
        &[0xff; 4096],
        // A handshake record header announcing 2^14+1 bytes: over the limit.
        &[0x16, 0x03, 0x01, 0x40, 0x01, 0x01],
        // A record of the right type holding no ClientHello.
        &[0x16, 0x03, 0x01, 0x00, 0x04, 0x0e, 0x00, 0x00, 0x00],
    ];
    for garbage in attempts {
        let mut bad = tcp_connect(server.addr());
        bad.write_all(garbage).unwrap();
        let (answer, took) = until_closed(&mut bad);
        // At most a TLS alert record (type 21), never plaintext; and at once.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        assert!(took < Duration::from_secs(2), "closed after {took:?}");
        good.send(WsMessage::text("still here")).unwrap();
        assert_eq!(ws_read_text(&mut good), "still here tls=true");
    }
}

#[test]
fn a_stalled_handshake_is_cut_at_the_request_timeout() {
    let ca = TestCa::new();
    let cert = ca.server_cert("stall");
    let server = serve({
        let tls = tls_config(&cert);
        move || ((), vec![echo(tls, None)])
    });
    let mut good = wss_connect(server.addr(), "/", &ca);
    // Nothing at all, and half a ClientHello: both wait for bytes that never come.
    let hello_half = {
        let mut tls = tls_stream(server.addr(), &ca);
        let mut out = Vec::new();
        tls.conn.write_tls(&mut out).unwrap();
        out.truncate(out.len() / 2);
        out
    };
    for sent in [&[][..], &hello_half[..]] {
        let mut stalled = tcp_connect(server.addr());
        stalled.write_all(sent).unwrap();
        let (answer, took) = until_closed(&mut stalled);
        // Nothing, or an alert (close_notify), never plaintext.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "closed after {took:?} (request_timeout 500 ms)"
        );
    }
    good.send(WsMessage::text("alive")).unwrap();
    assert_eq!(ws_read_text(&mut good), "alive tls=true");
}

#[test]
fn set_tls_serves_the_new_certificate_to_new_connections_only() {
    let ca = TestCa::new();
    let (first, second) = (ca.server_cert("first"), ca.server_cert("second"));
    let server = serve({
        let (a, b) = (tls_config(&first), tls_config(&second));
        move || ((), vec![echo(a, Some(b))])
    });
    let mut old = wss_connect(server.addr(), "/", &ca);
    assert_eq!(peer_leaf(&old), first.leaf);
    old.send(WsMessage::text("reload")).unwrap();
    assert_eq!(ws_read_text(&mut old), "reloaded true");
    let mut new = wss_connect(server.addr(), "/", &ca);
    assert_eq!(peer_leaf(&new), second.leaf);
    for ws in [&mut old, &mut new] {
        ws.send(WsMessage::text("after")).unwrap();
        assert_eq!(ws_read_text(ws), "after tls=true");
    }
}

#[test]
fn plain_workers_stay_plain_and_cannot_be_given_tls_later() {
    let ca = TestCa::new();
    let cert = ca.server_cert("plain");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = serve({
        let (tls, seen) = (tls_config(&cert), seen.clone());
        move || {
            let mut worker = Worker::new("websocket://127.0.0.1:0").unwrap();
            worker.name = "plain".into();
            let mut tls = Some(tls);
            worker.on_message(move |ctx, conn: ConnId, _| {
                let set = ctx.io.set_tls("plain", tls.take().unwrap());
                seen.lock().unwrap().push((set, ctx.io.is_tls(conn)));
                let _ = ctx.io.send(conn, "ok");
            });
            ((), vec![worker])
        }
    });
    let mut ws = ws_connect(server.addr(), "/");
    ws.send(WsMessage::text("x")).unwrap();
    assert_eq!(ws_read_text(&mut ws), "ok");
    assert_eq!(*seen.lock().unwrap(), vec![(false, false)]);
}

#[test]
fn pem_problems_are_named() {
    let ca = TestCa::new();
    let (a, b) = (ca.server_cert("a"), ca.server_cert("b"));
    let err =
        |cert: &str, key: &str| TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap_err();
    assert!(matches!(err("", &a.key_pem), TlsError::NoCertificate));
    assert!(matches!(
        err("garbage", &a.key_pem),
        TlsError::NoCertificate
    ));
    assert!(matches!(err(&a.chain_pem, ""), TlsError::NoKey));
    assert!(matches!(err(&a.chain_pem, &a.chain_pem), TlsError::NoKey));
    let mismatch = err(&a.chain_pem, &b.key_pem);
    assert!(matches!(mismatch, TlsError::Rustls(_)), "{mismatch}");
    let missing = TlsConfig::from_pem_files(
        "/nonexistent/cert.pem".as_ref(),
        "/nonexistent/key.pem".as_ref(),
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/cert.pem"),
        "{missing}"
    );
    // rcgen made it valid until 2040-06-01 00:00:00 UTC.
    let config = tls_config(&a);
    let at = config.not_after().expect("notAfter read");
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs, 2_222_121_600);
}

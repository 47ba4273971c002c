//! Outbound `ws://` connections against the library's own `websocket://` worker, both on
//! one reactor over real loopback sockets: the client handshake (path, key, 101), masked
//! frames of every length class both ways, sends held until the 101, a refused upgrade,
//! and a peer that is not a WebSocket server.

mod common;

use common::*;
use pushman::{ConnError, ConnectError, Message, Refusal, Worker};
use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::mpsc::{self, Receiver, Sender},
};

/// What the two sides saw, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The server's handshake hook: the request path.
    ServerPath(String),
    /// The server received a message (text, or binary of that many bytes).
    Server(String),
    ClientConnect,
    Client(String),
    ClientError(String),
    ClientClose,
}

struct State {
    seen: Sender<Seen>,
}

fn text_of(msg: &Message<'_>) -> String {
    match msg {
        Message::Text(t) => t.to_string(),
        Message::Binary(b) => format!("binary {} bytes, sum {}", b.len(), checksum(b)),
        other => format!("{other:?}"),
    }
}

fn checksum(b: &[u8]) -> u64 {
    b.iter()
        .enumerate()
        .map(|(i, &x)| (i as u64 + 1) * x as u64)
        .sum()
}

/// The library's WebSocket server: echoes every message, refuses the path `/refuse`.
fn echo_server() -> Worker<State> {
    let mut ws = Worker::<State>::new("websocket://127.0.0.1:0").unwrap();
    ws.on_ws_handshake(|ctx, _, req| {
        let _ = ctx
            .state
            .seen
            .send(Seen::ServerPath(req.target.to_string()));
        if req.path() == "/refuse" {
            return Err(Refusal {
                status: 403,
                reason: "not here".into(),
            });
        }
        Ok(())
    });
    ws.on_message(|ctx, conn, msg| {
        let _ = ctx.state.seen.send(Seen::Server(text_of(&msg)));
        let _ = match msg {
            Message::Binary(b) => ctx.io.send_binary(conn, b),
            other => ctx.io.send(conn, format!("echo {}", text_of(&other))),
        };
    });
    ws
}

/// A `ws://` upstream to `path` that sends `early` at once (held until the 101) and, once
/// connected, a 70,000-byte binary message.
fn client(path: &str) -> Worker<State> {
    let mut up = Worker::<State>::new(&format!("ws://127.0.0.1:9{path}")).unwrap();
    up.name = "ws-upstream".into();
    up.on_connect(|ctx, conn| {
        let _ = ctx.state.seen.send(Seen::ClientConnect);
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        ctx.io.send_binary(conn, big).unwrap();
    });
    up.on_message(|ctx, _, msg| {
        let _ = ctx.state.seen.send(Seen::Client(text_of(&msg)));
    });
    up.on_error(|ctx, _, err| {
        let what = match err {
            ConnError::Connect(ConnectError::Upgrade(e)) => format!("upgrade: {e}"),
            other => other.to_string(),
        };
        let _ = ctx.state.seen.send(Seen::ClientError(what));
    });
    up.on_close(|ctx, _| {
        let _ = ctx.state.seen.send(Seen::ClientClose);
    });
    up
}

/// One runtime: the echo server, and a client of it (or of `target`) on `path`.
fn run(path: &'static str, target: Option<std::net::SocketAddr>) -> (Server, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = serve(move || {
        let mut main = Worker::<State>::new("tcp://127.0.0.1:0").unwrap();
        main.on_worker_start(move |ctx| {
            let addr = ctx.io.listen(echo_server())?;
            let upstream = ctx.io.upstream(client(path))?;
            let id = ctx
                .io
                .connect(upstream, target.unwrap_or(addr))
                .expect("connect starts");
            // Queued before the TCP connect, sent after the 101.
            ctx.io.send(id, "early").unwrap();
            Ok(())
        });
        (State { seen: tx }, vec![main])
    });
    (server, rx)
}

#[track_caller]
fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(TIMEOUT)
        .expect("a callback within the timeout")
}

#[test]
fn a_ws_upstream_talks_to_the_librarys_websocket_worker_with_masked_frames() {
    let (_server, rx) = run("/chat?room=1", None);
    assert_eq!(next(&rx), Seen::ServerPath("/chat?room=1".into()));
    // The early send went out after the 101, before anything sent from on_connect.
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut rest: Vec<Seen> = (0..5).map(|_| next(&rx)).collect();
    let client_side: Vec<&Seen> = rest
        .iter()
        .filter(|s| matches!(s, Seen::Client(_) | Seen::ClientConnect))
        .collect();
    assert_eq!(
        client_side,
        [
            &Seen::ClientConnect,
            &Seen::Client("echo early".into()),
            &Seen::Client(format!("binary 70000 bytes, sum {}", checksum(&big))),
        ]
    );
    rest.retain(|s| matches!(s, Seen::Server(_)));
    assert_eq!(
        rest,
        [
            Seen::Server("early".into()),
            Seen::Server(format!("binary 70000 bytes, sum {}", checksum(&big))),
        ]
    );
}

#[test]
fn a_refused_upgrade_is_a_connect_error_then_close_and_never_connect() {
    let (_server, rx) = run("/refuse", None);
    assert_eq!(next(&rx), Seen::ServerPath("/refuse".into()));
    assert_eq!(
        next(&rx),
        Seen::ClientError("upgrade: the server answered the upgrade with HTTP 403".into())
    );
    assert_eq!(next(&rx), Seen::ClientClose);
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(200))
        .is_err());
}

#[test]
fn a_peer_that_is_no_websocket_server_fails_the_connect() {
    // A plain TCP peer: reads the upgrade request, answers nonsense, or hangs up.
    for answer in [&b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..], b""] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (_server, rx) = run("/", Some(listener.local_addr().unwrap()));
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut request = [0u8; 1024];
        let n = peer.read(&mut request).unwrap();
        let request = String::from_utf8_lossy(&request[..n]).into_owned();
        assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains("Sec-WebSocket-Version: 13\r\n"),
            "{request}"
        );
        // Nothing but the request: "early" is held until a 101 that never comes.
        assert!(!request.contains("early"), "{request}");
        peer.write_all(answer).unwrap();
        drop(peer);
        match next(&rx) {
            Seen::ClientError(e) if answer.is_empty() => {
                assert!(e.contains("end of file"), "{e}")
            }
            Seen::ClientError(e) => assert!(e.contains("not valid HTTP"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(next(&rx), Seen::ClientClose);
    }
}

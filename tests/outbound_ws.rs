//! Outbound `ws://` connections (a Worker registered with `Io::upstream` on a `ws://`
//! address) against an independent WebSocket server (tungstenite, which refuses unmasked
//! client frames) and against servers that refuse or ignore the upgrade.

mod common;

use common::*;
use pushman::{ConnError, ConnId, ConnectError, Io, Message, Worker};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    sync::mpsc::{self, Receiver, Sender},
    time::Duration,
};
use tungstenite::handshake::server::{Request, Response};

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Connect,
    Message(String),
    Error(String),
    Close,
}

struct State {
    seen: Sender<Seen>,
}

/// A runtime with a `ws://` upstream to `url`, connected at start; `then` runs on the new
/// connection at once (before it is established).
fn start(
    url: String,
    connect_timeout: Duration,
    then: impl FnOnce(&mut Io<State>, ConnId) + Send + 'static,
) -> (Server, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = serve(move || {
        let mut main = Worker::<State>::new("tcp://127.0.0.1:0").unwrap();
        let mut then = Some(then);
        main.on_worker_start(move |ctx| {
            let mut up = Worker::<State>::new(&url)?;
            up.connect_timeout = connect_timeout;
            let target = up.addr;
            up.on_connect(|ctx, conn| {
                let _ = ctx.state.seen.send(Seen::Connect);
                let _ = ctx.io.send(conn, "after connect");
            });
            up.on_message(|ctx, conn, msg| {
                let Message::Text(text) = msg else {
                    panic!("a text echo expected");
                };
                if text == "close yourself" {
                    ctx.io.close(conn);
                }
                let _ = ctx.state.seen.send(Seen::Message(text.to_string()));
            });
            up.on_error(|ctx, _, err| {
                let what = match err {
                    ConnError::Connect(ConnectError::TimedOut) => "timed out".to_string(),
                    other => other.to_string(),
                };
                let _ = ctx.state.seen.send(Seen::Error(what));
            });
            up.on_close(|ctx, _| {
                let _ = ctx.state.seen.send(Seen::Close);
            });
            let upstream = ctx.io.upstream(up)?;
            let id = ctx.io.connect(upstream, target)?;
            then.take().unwrap()(ctx.io, id);
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

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[test]
fn talks_to_a_real_websocket_server_with_masked_frames() {
    let (listener, addr) = listener();
    let (_server, rx) = start(
        format!("ws://{addr}/chat?room=1"),
        Duration::from_secs(5),
        |io, id| {
            assert!(io.is_connecting(id));
            io.send(id, "sent while connecting").unwrap();
        },
    );
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (target, host) = (mpsc::channel(), mpsc::channel());
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    let mut ws = tungstenite::accept_hdr(stream, |req: &Request, resp: Response| {
        target.0.send(req.uri().to_string()).unwrap();
        let h = req.headers()["host"].to_str().unwrap().to_string();
        host.0.send(h).unwrap();
        Ok(resp)
    })
    .expect("tungstenite accepts our upgrade");
    assert_eq!(target.1.recv().unwrap(), "/chat?room=1");
    assert_eq!(host.1.recv().unwrap(), addr.to_string());
    assert_eq!(next(&rx), Seen::Connect);
    // tungstenite fails on any unmasked client frame: these reads prove the masking.
    for want in ["sent while connecting", "after connect"] {
        assert_eq!(ws.read().unwrap(), tungstenite::Message::text(want));
    }
    // A ping is answered by a (masked) pong, then our messages arrive.
    ws.send(tungstenite::Message::Ping(b"p".to_vec().into()))
        .unwrap();
    ws.send(tungstenite::Message::text("from server")).unwrap();
    assert_eq!(next(&rx), Seen::Message("from server".into()));
    match ws.read().unwrap() {
        tungstenite::Message::Pong(payload) => assert_eq!(&payload[..], b"p"),
        other => panic!("expected the pong, got {other:?}"),
    }
    // A close we start: our close frame (masked), tungstenite's echo, then on_close.
    ws.send(tungstenite::Message::text("close yourself"))
        .unwrap();
    assert_eq!(next(&rx), Seen::Message("close yourself".into()));
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected our close frame, got {other:?}"),
    }
    while ws.read().is_ok() {}
    drop(ws);
    assert_eq!(next(&rx), Seen::Close);
}

#[test]
fn a_refused_upgrade_is_a_connect_error_and_never_connect() {
    let (listener, addr) = listener();
    let (_server, rx) = start(format!("ws://{addr}"), Duration::from_secs(5), |io, id| {
        io.send(id, "never sent").unwrap();
    });
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut request = [0u8; 1024];
    let n = stream.read(&mut request).unwrap();
    let request = String::from_utf8_lossy(&request[..n]).into_owned();
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    stream
        .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(
        next(&rx),
        Seen::Error(
            "cannot connect: websocket upgrade refused: the server answered 403, not 101".into()
        )
    );
    // Nothing but the request was sent: the frame waited for a 101 that never came.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "sent after the request: {rest:?}");
    drop(stream);
    assert_eq!(next(&rx), Seen::Close);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn a_server_that_never_answers_the_upgrade_times_out() {
    let (listener, addr) = listener();
    let (_server, rx) = start(
        format!("ws://{addr}/"),
        Duration::from_millis(300),
        |_, _| {},
    );
    let (_stream, _) = listener.accept().unwrap();
    assert_eq!(next(&rx), Seen::Error("timed out".into()));
    assert_eq!(next(&rx), Seen::Close);
}

#[test]
fn a_server_that_hangs_up_before_the_101_is_a_connect_error() {
    let (listener, addr) = listener();
    let (_server, rx) = start(format!("ws://{addr}/"), Duration::from_secs(5), |_, _| {});
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut request = [0u8; 1024];
    assert!(stream.read(&mut request).unwrap() > 0);
    drop(stream);
    assert_eq!(
        next(&rx),
        Seen::Error(
            "cannot connect: the server closed the connection before answering the upgrade".into()
        )
    );
    assert_eq!(next(&rx), Seen::Close);
}

#[test]
fn a_pushman_websocket_worker_is_a_server_for_it() {
    // pushman's own server side, in another runtime: the echo comes back.
    let echo = serve(|| {
        let mut worker = Worker::<()>::new("websocket://127.0.0.1:0").unwrap();
        worker.on_message(|ctx, conn, msg| {
            if let Message::Text(text) = msg {
                let _ = ctx.io.send(conn, text);
            }
        });
        ((), vec![worker])
    });
    let (_server, rx) = start(
        format!("ws://{}/", echo.addr()),
        Duration::from_secs(5),
        |io, id| io.send(id, "first").unwrap(),
    );
    assert_eq!(next(&rx), Seen::Connect);
    assert_eq!(next(&rx), Seen::Message("first".into()));
    assert_eq!(next(&rx), Seen::Message("after connect".into()));
}

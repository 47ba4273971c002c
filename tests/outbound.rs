//! Outbound connections (`Io::upstream` + `Io::connect`) against real sockets: established,
//! refused, timed out, closed while connecting, reconnected from `on_close` with a timer.

mod common;

use common::*;
use pushman::{ConnError, ConnId, ConnectError, Ctx, Io, Reconnect, Upstream, Worker};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    sync::mpsc::{self, Receiver, Sender},
    time::Duration,
};

/// What the upstream callbacks saw, sent to the test thread as they happen.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Connect,
    Message(String),
    Error(String),
    Close,
}

struct State {
    seen: Sender<Seen>,
    upstream: Option<Upstream>,
    /// Connects left to make from `on_close` (reconnect test).
    reconnects: usize,
    target: SocketAddr,
}

/// An outbound `text` worker that reports everything on `seen`; it closes a connection
/// whose peer sends `close yourself`.
fn upstream_worker_with(connect_timeout: Duration, reconnect: Option<Reconnect>) -> Worker<State> {
    let mut up = Worker::<State>::new("text://127.0.0.1:9").unwrap();
    up.name = "upstream".into();
    up.connect_timeout = connect_timeout;
    up.reconnect = reconnect;
    up.on_connect(|ctx, conn| {
        let _ = ctx.state.seen.send(Seen::Connect);
        let _ = ctx.io.send(conn, "after connect");
    });
    up.on_message(|ctx, conn, msg| {
        let text = String::from_utf8_lossy(msg.as_bytes()).into_owned();
        if text == "close yourself" {
            ctx.io.close(conn);
        }
        let _ = ctx.state.seen.send(Seen::Message(text));
    });
    up.on_error(|ctx, _, err| {
        let what = match err {
            ConnError::Connect(ConnectError::Refused) => "refused".to_string(),
            ConnError::Connect(ConnectError::TimedOut) => "timed out".to_string(),
            other => other.to_string(),
        };
        let _ = ctx.state.seen.send(Seen::Error(what));
    });
    up.on_close(|ctx, _| {
        let _ = ctx.state.seen.send(Seen::Close);
        if ctx.state.reconnects > 0 {
            ctx.state.reconnects -= 1;
            // Reconnect after a backoff, from a timer.
            ctx.io.add_timer(Duration::from_millis(50), false, |ctx| {
                connect(ctx, |_, _| {});
            });
        }
    });
    up
}

fn connect(ctx: &mut Ctx<'_, State>, then: impl FnOnce(&mut Io<State>, ConnId)) {
    let upstream = ctx.state.upstream.expect("upstream registered");
    let id = ctx
        .io
        .connect(upstream, ctx.state.target)
        .expect("connect starts");
    then(ctx.io, id);
}

/// Runs a runtime whose start registers the upstream and connects it to `target`; `then`
/// runs on the new connection right away (e.g. to send before it is established).
fn start(
    target: SocketAddr,
    connect_timeout: Duration,
    reconnects: usize,
    then: impl FnOnce(&mut Io<State>, ConnId) + Send + 'static,
) -> (Server, Receiver<Seen>) {
    start_with(target, connect_timeout, reconnects, None, then)
}

fn start_with(
    target: SocketAddr,
    connect_timeout: Duration,
    reconnects: usize,
    auto: Option<Reconnect>,
    then: impl FnOnce(&mut Io<State>, ConnId) + Send + 'static,
) -> (Server, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = serve(move || {
        let mut main = Worker::<State>::new("tcp://127.0.0.1:0").unwrap();
        let mut then = Some(then);
        main.on_worker_start(move |ctx| {
            let upstream = ctx
                .io
                .upstream(upstream_worker_with(connect_timeout, auto))?;
            ctx.state.upstream = Some(upstream);
            connect(ctx, then.take().unwrap());
            Ok(())
        });
        let state = State {
            seen: tx,
            upstream: None,
            reconnects,
            target,
        };
        (state, vec![main])
    });
    (server, rx)
}

#[track_caller]
fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(TIMEOUT)
        .expect("a callback within the timeout")
}

#[test]
fn connects_sends_queued_lines_in_order_and_receives() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (server, rx) = start(
        listener.local_addr().unwrap(),
        Duration::from_secs(5),
        0,
        |io, id| {
            assert!(io.is_connecting(id));
            io.send(id, "queued 1").unwrap();
            io.send(id, "queued 2").unwrap();
        },
    );
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(next(&rx), Seen::Connect);
    let mut reader = BufReader::new(peer.try_clone().unwrap());
    for want in ["queued 1", "queued 2", "after connect"] {
        assert_eq!(read_line(&mut reader), want);
    }
    (&peer).write_all(b"from peer\nsecond\n").unwrap();
    assert_eq!(next(&rx), Seen::Message("from peer".into()));
    assert_eq!(next(&rx), Seen::Message("second".into()));
    drop(reader);
    drop(peer);
    assert_eq!(next(&rx), Seen::Close);
    // The upstream is not a listener.
    drop(server);
}

#[test]
fn refused_connect_reports_refused_then_close_and_never_connect() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_server, rx) = start(port, Duration::from_secs(5), 0, |io, id| {
        io.send(id, "lost").unwrap();
    });
    assert_eq!(next(&rx), Seen::Error("refused".into()));
    assert_eq!(next(&rx), Seen::Close);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn unanswered_connect_times_out() {
    // A listener whose accept queue is full drops further SYNs: connects to it hang until
    // the client gives up. Fill it (std listens with a backlog of 128) with non-blocking
    // connects that nobody accepts.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..300 {
        fillers.push(mio::net::TcpStream::connect(addr).unwrap());
    }
    std::thread::sleep(Duration::from_millis(200));
    let (_server, rx) = start(addr, Duration::from_millis(300), 0, |_, _| {});
    assert_eq!(next(&rx), Seen::Error("timed out".into()));
    assert_eq!(next(&rx), Seen::Close);
    drop(fillers);
}

#[test]
fn close_while_connecting_closes_without_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (_server, rx) = start(
        listener.local_addr().unwrap(),
        Duration::from_secs(5),
        0,
        |io, id| io.close(id),
    );
    assert_eq!(next(&rx), Seen::Close);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn reconnects_from_on_close_with_a_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (_server, rx) = start(
        listener.local_addr().unwrap(),
        Duration::from_secs(5),
        1,
        |_, _| {},
    );
    for round in 0..2 {
        let (peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(next(&rx), Seen::Connect, "round {round}");
        let mut line = String::new();
        BufReader::new(&peer).read_line(&mut line).unwrap();
        assert_eq!(line, "after connect\n");
        drop(peer);
        assert_eq!(next(&rx), Seen::Close, "round {round}");
    }
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

/// `ws://` upstreams are WebSocket clients (tests/outbound_ws.rs); `http://` has no client.
#[test]
fn http_upstreams_are_refused() {
    let (tx, rx) = mpsc::channel::<bool>();
    let server = serve(move || {
        let mut main = Worker::<()>::new("tcp://127.0.0.1:0").unwrap();
        main.on_worker_start(move |ctx| {
            let ws = ctx.io.upstream(Worker::new("ws://127.0.0.1:1/path")?);
            let http = ctx.io.upstream(Worker::new("http://127.0.0.1:1")?);
            let _ = tx.send(ws.is_ok() && http.is_err());
            Ok(())
        });
        ((), vec![main])
    });
    assert!(rx.recv_timeout(TIMEOUT).unwrap());
    drop(server);
}

#[test]
fn automatic_reconnect_with_backoff_until_the_owner_closes() {
    // Nothing listens at first: refused attempts repeat with a growing wait.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let auto = Reconnect {
        min: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    let started = std::time::Instant::now();
    let (_server, rx) = start_with(addr, Duration::from_secs(5), 0, Some(auto), |_, _| {});
    for _ in 0..3 {
        assert_eq!(next(&rx), Seen::Error("refused".into()));
        assert_eq!(next(&rx), Seen::Close);
    }
    // Waits of 50 + 100 ms at least came between the three attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let listener = TcpListener::bind(addr).expect("the port is free again");
    let mut connected = false;
    while !connected {
        match next(&rx) {
            Seen::Connect => connected = true,
            Seen::Error(_) | Seen::Close => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The peer goes away (a reset, if our line was unread): it comes back by itself.
    let (peer, _) = listener.accept().unwrap();
    drop(peer);
    let mut seen = next(&rx);
    if let Seen::Error(e) = &seen {
        assert!(e.contains("reset"), "{e}");
        seen = next(&rx);
    }
    assert_eq!(seen, Seen::Close);
    let (peer, _) = listener.accept().unwrap();
    assert_eq!(next(&rx), Seen::Connect);
    // Closed by its owner: it stays closed.
    (&peer).write_all(b"close yourself\n").unwrap();
    assert_eq!(next(&rx), Seen::Message("close yourself".into()));
    // A graceful close: our side flushes and shuts down its write side; the peer reads
    // to the end and closes too.
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut rest = Vec::new();
    (&peer).read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"after connect\n");
    drop(peer);
    assert_eq!(next(&rx), Seen::Close);
    listener.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(listener.accept().is_err(), "reconnected after close()");
    assert!(rx.try_recv().is_err());
}

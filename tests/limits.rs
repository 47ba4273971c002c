//! Backpressure and size limits: buffer-full/drain, packages too big, pausing input, timers.

mod common;

use common::*;
use pushman::{ConnError, Message, SendError, Worker};
use std::{
    io::{Read, Write},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

type Log = Arc<Mutex<Vec<String>>>;

fn log(state: &Log, entry: impl Into<String>) {
    state.lock().unwrap().push(entry.into());
}

/// Waits until the log has an entry starting with `prefix`; returns it.
#[track_caller]
fn wait_for(state: &Log, prefix: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some(e) = state.lock().unwrap().iter().find(|e| e.starts_with(prefix)) {
            return e.clone();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no {prefix:?} in {:?}", state.lock().unwrap());
}

#[test]
fn a_slow_reader_fills_the_buffer_then_sends_are_refused_until_it_drains() {
    const CHUNK: usize = 64 << 10;
    let events = Log::default();
    let state = events.clone();
    let server = serve(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0").unwrap();
        worker.limits.max_send_buffer_size = 256 << 10;
        worker.on_message(|ctx, conn, _| {
            let chunk = vec![b'x'; CHUNK];
            let mut sent = 0;
            loop {
                match ctx.io.send(conn, &chunk) {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        assert_eq!(e, SendError::BufferFull);
                        log(ctx.state, format!("refused after {sent}"));
                        break;
                    }
                }
            }
        });
        worker.on_buffer_full(|ctx, _| log(ctx.state, "full"));
        worker.on_buffer_drain(|ctx, _| log(ctx.state, "drain"));
        (state, vec![worker])
    });
    let mut client = tcp_connect(server.addr());
    client.write_all(b"go").unwrap();
    let refused = wait_for(&events, "refused after ");
    wait_for(&events, "full");
    assert!(!events.lock().unwrap().iter().any(|e| e == "drain"));
    let sent: usize = refused["refused after ".len()..].parse().unwrap();
    let mut got = vec![0u8; sent * CHUNK];
    client.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == b'x'));
    wait_for(&events, "drain");
    // nothing beyond what was accepted arrives
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        client.read(&mut [0u8; 1]).is_err(),
        "more bytes than the sends accepted"
    );
}

#[test]
fn a_text_line_over_max_package_size_is_an_error_and_a_close() {
    let events = Log::default();
    let state = events.clone();
    let server = serve(move || {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.limits.max_package_size = 1024;
        worker.on_message(|ctx, conn, msg| {
            let _ = ctx.io.send(conn, msg.as_bytes());
        });
        worker.on_error(|ctx, _, err| {
            log(
                ctx.state,
                format!("error {}", matches!(err, ConnError::Line(_))),
            )
        });
        worker.on_close(|ctx, _| log(ctx.state, "close"));
        (state, vec![worker])
    });
    let mut client = tcp_connect(server.addr());
    client.write_all(&[b'a'; 1024]).unwrap();
    client.write_all(b"\n").unwrap();
    let mut echo = vec![0u8; 1025];
    client.read_exact(&mut echo).unwrap();
    client.write_all(&[b'b'; 2000]).unwrap();
    assert!(read_to_end(&mut client).is_empty());
    assert_eq!(wait_for(&events, "error"), "error true");
    // The server lingers until we close too, so our unread bytes never turn into a reset.
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_for(&events, "close");
}

#[test]
fn a_websocket_message_over_max_package_size_gets_close_1009() {
    let server = serve(|| {
        let mut worker = Worker::<()>::new("websocket://127.0.0.1:0").unwrap();
        worker.limits.max_package_size = 1024;
        worker.on_message(|ctx, conn, msg| {
            let _ = ctx.io.send(conn, msg.as_bytes());
        });
        ((), vec![worker])
    });
    let mut ws = ws_connect(server.addr(), "/");
    ws.send(tungstenite::Message::text("x".repeat(1024)))
        .unwrap();
    assert_eq!(ws_read_text(&mut ws).len(), 1024);
    ws.send(tungstenite::Message::text("y".repeat(2000)))
        .unwrap();
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[test]
fn paused_input_is_delivered_in_order_after_resume() {
    let events = Log::default();
    let state = events.clone();
    let server = serve(move || {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.on_message(|ctx, conn, msg| {
            let line = String::from_utf8_lossy(msg.as_bytes()).to_string();
            log(ctx.state, format!("line {line}"));
            if line == "pause" {
                ctx.io.pause_recv(conn);
                ctx.io
                    .add_timer(Duration::from_millis(100), false, move |ctx| {
                        log(ctx.state, "resume");
                        ctx.io.resume_recv(conn);
                    });
            }
        });
        (state, vec![worker])
    });
    let mut client = tcp_connect(server.addr());
    client.write_all(b"pause\na\nb\n").unwrap();
    wait_for(&events, "line b");
    let entries = events.lock().unwrap().clone();
    assert_eq!(entries, ["line pause", "resume", "line a", "line b"]);
}

#[test]
fn timers_repeat_stop_when_deleted_and_one_shots_fire_once() {
    #[derive(Default)]
    struct Counts {
        repeat: u32,
        once: u32,
        log: Vec<&'static str>,
    }
    let shared = Arc::new(Mutex::new(Counts::default()));
    let state = shared.clone();
    let server = serve(move || {
        let mut worker = Worker::<Arc<Mutex<Counts>>>::new("tcp://127.0.0.1:0").unwrap();
        worker.on_worker_start(|ctx| {
            let id = std::rc::Rc::new(std::cell::Cell::new(None));
            let me = id.clone();
            let timer = ctx
                .io
                .add_timer(Duration::from_millis(5), true, move |ctx| {
                    let mut counts = ctx.state.lock().unwrap();
                    counts.repeat += 1;
                    if counts.repeat == 3 {
                        counts.log.push("deleted");
                        assert!(ctx.io.del_timer(me.get().unwrap()));
                    }
                });
            id.set(Some(timer));
            ctx.io.add_timer(Duration::from_millis(20), false, |ctx| {
                let mut counts = ctx.state.lock().unwrap();
                counts.once += 1;
                counts.log.push("once");
            });
            Ok(())
        });
        (state, vec![worker])
    });
    let deadline = Instant::now() + TIMEOUT;
    while shared.lock().unwrap().log.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    server.stop().unwrap();
    let counts = shared.lock().unwrap();
    assert_eq!((counts.repeat, counts.once), (3, 1));
}

#[test]
fn send_to_a_closed_connection_is_not_found() {
    let events = Log::default();
    let state = events.clone();
    let server = serve(move || {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.on_close(|ctx, conn| {
            let verdict = ctx.io.send(conn, "late");
            log(ctx.state, format!("{verdict:?}"));
        });
        worker.on_message(|_, _, _: Message<'_>| {});
        (state, vec![worker])
    });
    drop(tcp_connect(server.addr()));
    assert_eq!(wait_for(&events, "Err"), "Err(NotFound)");
}

#[test]
fn when_full_pause_recv_takes_every_reply_and_reads_no_further_until_drained() {
    const LIMIT: usize = 256 << 10;
    const REPLY: usize = 1 << 20;
    const LINES: usize = 40;
    let events = Log::default();
    let state = events.clone();
    let server = serve(move || {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.limits.max_send_buffer_size = LIMIT;
        worker.limits.when_full = pushman::WhenFull::PauseRecv;
        worker.on_message(|ctx, conn, msg| {
            let n = String::from_utf8_lossy(msg.as_bytes()).to_string();
            // A line is decoded only while the buffer is under its mark.
            let buffered = ctx.io.info(conn).unwrap().send_buffered;
            let mut reply = vec![b'0' + (n.parse::<u8>().unwrap() % 10); REPLY];
            reply[..n.len()].copy_from_slice(n.as_bytes());
            let sent = ctx.io.send(conn, &reply);
            log(
                ctx.state,
                format!("line {n} buffered {buffered} sent {sent:?}"),
            );
        });
        (state, vec![worker])
    });
    let mut client = tcp_connect(server.addr());
    let batch: String = (0..LINES).map(|i| format!("{i}\n")).collect();
    client.write_all(batch.as_bytes()).unwrap();
    wait_for(&events, "line 0 ");
    std::thread::sleep(Duration::from_millis(500));
    let early = events.lock().unwrap().len();
    // Loopback's kernel buffers hold a few MiB; 40 MiB of replies cannot all fit.
    assert!(early < LINES / 2, "{early} lines decoded while nobody read");
    let mut got = vec![0u8; REPLY + 1];
    for i in 0..LINES {
        client.read_exact(&mut got).unwrap();
        let n = i.to_string();
        assert_eq!(&got[..n.len()], n.as_bytes(), "reply {i} out of order");
        assert_eq!(got[REPLY], b'\n');
    }
    // The last reply can reach us before its callback has logged it.
    wait_for(&events, &format!("line {} ", LINES - 1));
    let entries = events.lock().unwrap().clone();
    assert_eq!(entries.len(), LINES);
    for (i, entry) in entries.iter().enumerate() {
        let buffered: usize = entry.split(' ').nth(3).unwrap().parse().unwrap();
        assert!(buffered < LIMIT, "{entry}: decoded over the mark");
        assert!(entry.starts_with(&format!("line {i} ")), "{entry}");
        assert!(entry.ends_with("sent Ok(())"), "{entry}");
    }
}

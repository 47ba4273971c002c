//! Write coalescing: what one turn sends to a connection leaves in few writes, yet whole and
//! in order, past the batch's size limit, around large messages, and into a full socket.

mod common;

use common::*;
use pushman::{ConnId, Worker};
use std::io::{BufRead, BufReader, Write};

/// Messages of one burst: the first `SMALL` (8.4 MB, twice the write batch's limit) are
/// small; after them every `BIG_EVERY`-th is large (written directly, not batched).
const BURST: usize = 700_000;
const SMALL: usize = 600_000;
const BIG_EVERY: usize = 1_000;
const BIG: usize = 20 << 10;

fn message(i: usize) -> String {
    if i >= SMALL && i % BIG_EVERY == 0 {
        format!("{i}:{}", "b".repeat(BIG))
    } else {
        format!("{i:07}-small")
    }
}

#[test]
fn a_burst_to_one_connection_arrives_whole_and_in_order() {
    let server = serve(|| {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.limits.max_send_buffer_size = 64 << 20;
        worker.on_message(|ctx, conn, msg| {
            let state: &mut Option<ConnId> = ctx.state;
            match msg.as_bytes() {
                b"sink" => {
                    *state = Some(conn);
                    let _ = ctx.io.send(conn, "ready");
                }
                b"burst" => {
                    let sink = state.expect("sink first");
                    for i in 0..BURST {
                        ctx.io.send(sink, message(i)).expect("taken");
                    }
                    let _ = ctx.io.send(conn, "sent");
                }
                _ => {}
            }
        });
        (None::<ConnId>, vec![worker])
    });
    let mut sink = tcp_connect(server.addr());
    sink.write_all(b"sink\n").unwrap();
    let mut sink = BufReader::new(sink);
    assert_eq!(read_line(&mut sink), "ready");
    let mut backend = tcp_connect(server.addr());
    // The sink does not read until the burst is sent: its socket fills and the rest waits
    // in the server's buffer.
    assert_eq!(request_line(&mut backend, "burst"), "sent");
    for i in 0..BURST {
        let line = read_line(&mut sink);
        assert!(line == message(i), "message {i}: got {:.40}…", line);
    }
    // Nothing more: the next line is the answer to a new request.
    sink.get_mut().write_all(b"sink\n").unwrap();
    assert_eq!(read_line(&mut sink), "ready");
    drop(server);
}

#[test]
fn pipelined_lines_get_their_replies_whole_and_in_order() {
    const LINES: usize = 50_000;
    let server = serve(|| {
        let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
        worker.on_message(|ctx, conn, msg| {
            let reply = format!("re:{}", String::from_utf8_lossy(msg.as_bytes()));
            let _ = ctx.io.send(conn, reply);
        });
        ((), vec![worker])
    });
    let mut backend = tcp_connect(server.addr());
    let writer = {
        let mut backend = backend.try_clone().unwrap();
        std::thread::spawn(move || {
            let all: String = (0..LINES).map(|i| format!("{i}\n")).collect();
            backend.write_all(all.as_bytes()).unwrap();
        })
    };
    let mut reader = BufReader::new(&mut backend);
    for i in 0..LINES {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("re:{i}\n"));
    }
    writer.join().unwrap();
}

//! The turn-end hook and held output (`Runtime::on_turn_end`, `Runtime::hold_output`): what
//! a turn sends reaches no peer before the hook has run, whatever path the bytes would take
//! (a read batch's replies, a large message written at once, a batch past its limit).

mod common;

use common::*;
use pushman::{ConnId, Worker};
use std::{
    io::{BufReader, Write},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

/// What the server knows: turns ended so far, and whether the current one sent anything.
#[derive(Default)]
struct Turns {
    ended: u64,
    busy: bool,
    sink: Option<ConnId>,
}

/// Each message carries the number of the turn whose hook must have run before it leaves;
/// the hook publishes that number only after a pause, so a message that left early would be
/// read while the published number is still below it.
#[test]
fn held_output_leaves_only_after_the_turn_end_hook() {
    let published = Arc::new(AtomicU64::new(0));
    let seen = published.clone();
    let server = serve_with(
        || {
            let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
            worker.limits.max_send_buffer_size = 64 << 20;
            worker.on_message(|ctx, conn, msg| {
                let state: &mut Turns = ctx.state;
                state.busy = true;
                let turn = state.ended + 1;
                match msg.as_bytes() {
                    b"sink" => state.sink = Some(conn),
                    b"small" => {
                        let _ = ctx.io.send(conn, format!("{turn} small"));
                    }
                    // Large: written straight to the socket unless held.
                    b"big" => {
                        let _ = ctx
                            .io
                            .send(conn, format!("{turn} {}", "b".repeat(40 << 10)));
                    }
                    // Past the batch's 4 MiB limit, to another connection.
                    b"burst" => {
                        let sink = state.sink.expect("sink first");
                        for _ in 0..600 {
                            let _ = ctx
                                .io
                                .send(sink, format!("{turn} {}", "x".repeat(10 << 10)));
                        }
                        let _ = ctx.io.send(conn, format!("{turn} sent"));
                    }
                    _ => {}
                }
            });
            (Turns::default(), vec![worker])
        },
        move |runtime| {
            runtime.hold_output(true);
            runtime.on_turn_end(move |ctx| {
                let state: &mut Turns = ctx.state;
                state.ended += 1;
                if std::mem::take(&mut state.busy) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                published.store(state.ended, Ordering::SeqCst);
            });
        },
    );
    let check = |line: &str| {
        let turn: u64 = line.split(' ').next().unwrap().parse().unwrap();
        let now = seen.load(Ordering::SeqCst);
        assert!(
            now >= turn,
            "a message of turn {turn} arrived before its hook ran (published {now})"
        );
    };
    let mut sink = tcp_connect(server.addr());
    sink.write_all(b"sink\n").unwrap();
    let mut sink = BufReader::new(sink);
    let mut backend = tcp_connect(server.addr());
    for round in 0..10 {
        check(&request_line(&mut backend, "small"));
        check(&request_line(&mut backend, "big"));
        if round % 5 == 0 {
            check(&request_line(&mut backend, "burst"));
            for _ in 0..600 {
                check(&read_line(&mut sink));
            }
        }
    }
    drop(server);
}

/// Without `hold_output` the hook still runs once per turn, and a burst of pipelined lines
/// read in one turn costs one hook call, not one per line.
#[test]
fn the_hook_runs_once_per_turn_not_per_message() {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let server = serve_with(
        || {
            let mut worker = Worker::new("text://127.0.0.1:0").unwrap();
            worker.on_message(|ctx, conn, msg| {
                if msg.as_bytes() == b"last" {
                    let _ = ctx.io.send(conn, "done");
                }
            });
            ((), vec![worker])
        },
        move |runtime| {
            runtime.on_turn_end(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            })
        },
    );
    let mut backend = tcp_connect(server.addr());
    std::thread::sleep(Duration::from_millis(50));
    let before = calls.load(Ordering::SeqCst);
    let burst = "line\n".repeat(2_000) + "last\n";
    backend.write_all(burst.as_bytes()).unwrap();
    let mut reader = BufReader::new(backend);
    assert_eq!(read_line(&mut reader), "done");
    // Without held output the reply may leave before its turn's hook runs: give it time.
    std::thread::sleep(Duration::from_millis(50));
    let during = calls.load(Ordering::SeqCst) - before;
    assert!(
        (1..100).contains(&during),
        "2,001 lines took {during} turn-end calls"
    );
    drop(server);
}

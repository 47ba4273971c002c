//! Heartbeats of the real `pushman` binary: each connection is pinged once per interval,
//! whatever the number of connections, and silent or uid-less ones are closed in time.

mod common;

use common::{daemon::*, *};
use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

/// A bare WebSocket client that never reads until asked to: pings pile up in its socket
/// buffer, where they are counted (tungstenite would answer them and hide the count).
struct RawClient {
    stream: TcpStream,
    bound_at: Instant,
}

impl RawClient {
    fn connect(addr: SocketAddr, uid: &str) -> Self {
        let mut stream = tcp_connect(addr);
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
        // A masked text frame (mask 0: the payload goes as is).
        let mut frame = vec![0x81, 0x80 | uid.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(uid.as_bytes());
        stream.write_all(&frame).unwrap();
        Self {
            stream,
            bound_at: Instant::now(),
        }
    }

    /// Counts the empty ping frames received so far, and how long the client has been up.
    fn pings(&mut self) -> (usize, Duration) {
        let alive = self.bound_at.elapsed();
        self.stream.set_nonblocking(true).unwrap();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the server closed a client"),
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            bytes.chunks(2).all(|f| f == [0x89, 0x00]),
            "only empty pings expected: {bytes:?}"
        );
        (bytes.len() / 2, alive)
    }
}

/// Connects `count` clients to a server pinging every 0.5 s, waits about 2.5 s, and checks
/// each client got one ping per interval it was up: at least and at most.
fn pings_once_per_interval(count: usize) {
    let interval = Duration::from_millis(500);
    let dir = TempDir::new(&format!("heartbeat-{count}"));
    let p = Pushman::start(&dir.config("[heartbeat]\nping_interval = 0.5\n"));
    let mut clients: Vec<RawClient> = (0..count)
        .map(|i| RawClient::connect(p.ws, &format!("u{i}")))
        .collect();
    std::thread::sleep(Duration::from_millis(2600));
    for (i, client) in clients.iter_mut().enumerate() {
        let (pings, alive) = client.pings();
        let intervals = (alive.as_secs_f64() / interval.as_secs_f64()).floor() as usize;
        // The first ping comes one interval after the connection, then one per interval; a
        // ping on its way while we count, or a tick's lateness, moves the count by one.
        assert!(
            pings + 1 >= intervals && pings <= intervals,
            "client {i} of {count}: {pings} pings in {alive:?} ({intervals} intervals)"
        );
    }
}

#[test]
fn one_connection_is_pinged_once_per_interval() {
    pings_once_per_interval(1);
}

#[test]
fn twenty_connections_are_each_pinged_once_per_interval() {
    pings_once_per_interval(20);
}

#[test]
fn two_thousand_connections_are_each_pinged_once_per_interval() {
    pings_once_per_interval(2000);
}

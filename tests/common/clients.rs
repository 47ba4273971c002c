//! Test clients with timeouts: WebSocket, text lines, raw TCP. One copy, included by the
//! library's tests (`tests/common`) and the server's (`server/tests/common`, by path).
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};
use tungstenite::{stream::MaybeTlsStream, WebSocket};

/// Every blocking read in the tests gives up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// A WebSocket client connected to `addr` at `path`, with read timeouts.
#[track_caller]
pub fn ws_connect(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (ws, _) =
        tungstenite::client::client(format!("ws://{addr}{path}"), MaybeTlsStream::Plain(stream))
            .expect("WebSocket handshake");
    ws
}

/// The next text message, skipping pings and pongs.
#[track_caller]
pub fn ws_read_text(ws: &mut Ws) -> String {
    loop {
        let message = match ws.read() {
            // A signal landed during the read (seen once in a full run): tungstenite keeps
            // its state, so the read is simply made again.
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                continue
            }
            other => other.expect("read a WebSocket message"),
        };
        match message {
            tungstenite::Message::Text(t) => return t.to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Asserts that nothing but pings and pongs arrives on `ws` within `wait`.
#[track_caller]
pub fn assert_silent(ws: &mut Ws, wait: Duration) {
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(wait)).unwrap();
    }
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_)) => {}
            Ok(other) => panic!("expected nothing, got {other:?}"),
            Err(_) => break,
        }
    }
}

/// A TCP client with read timeouts.
#[track_caller]
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Reads one `\n`-terminated line (without it).
#[track_caller]
pub fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("read a line");
    assert!(n > 0, "connection closed before a line arrived");
    assert!(line.ends_with('\n'), "line without newline: {line:?}");
    line.pop();
    line
}

/// Writes `line` and returns the server's one-line answer.
#[track_caller]
pub fn request_line(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    read_line(&mut reader)
}

/// Reads until the peer closes; panics on timeout.
#[track_caller]
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read until close");
    all
}

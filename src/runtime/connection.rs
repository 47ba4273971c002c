//! What callbacks see of a connection: its id, its messages, its errors and a snapshot of
//! its counters.

pub use crate::reactor::{ConnError, ConnId, ConnectError, SendError};

use crate::codec::http::Request;
use std::{net::SocketAddr, time::Duration};

/// One message, as the connection's protocol framed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A WebSocket text message (valid UTF-8).
    Text(&'a str),
    /// A WebSocket binary message.
    Binary(&'a [u8]),
    /// A `text` line (without its line ending), a `frame` payload, or a chunk of `tcp` bytes.
    Bytes(&'a [u8]),
    /// An `http` request.
    Request(&'a Request),
}

impl Message<'_> {
    /// The message's bytes (an HTTP request's body).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_bytes(),
            Self::Binary(b) | Self::Bytes(b) => b,
            Self::Request(r) => &r.body,
        }
    }
}

/// A snapshot of a connection, for status pages (`pushman connections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's id.
    pub id: ConnId,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The name of the worker that accepted it.
    pub worker: String,
    /// The worker's protocol scheme (`websocket`, `text`, …).
    pub protocol: &'static str,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Bytes waiting in the send buffer.
    pub send_buffered: usize,
    /// Time since it was accepted.
    pub age: Duration,
    /// Time since input last arrived.
    pub idle: Duration,
}

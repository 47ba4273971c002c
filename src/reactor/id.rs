//! Connection ids and the errors a connection can meet: what the reactor hands upward.

use crate::codec::{frame::FrameError, http::HttpError, text::LineTooLong, ws};
use std::{fmt, io};

/// Bits of a [`ConnId`] holding the slab slot; the rest is a sequence number.
const SLOT_BITS: u32 = 24;

/// Names a connection for its whole life; never reused (Workerman's `$connection->id`).
///
/// It packs a process-wide sequence number, which only grows, with the reactor's slot, so
/// looking a connection up costs no map. [`fmt::Display`] shows the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// Most connections open at once.
    pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;

    pub(crate) fn new(seq: u64, slot: usize) -> Self {
        debug_assert!(slot < Self::MAX_SLOTS);
        Self((seq << SLOT_BITS) | slot as u64)
    }

    pub(crate) fn slot(self) -> usize {
        (self.0 & ((1 << SLOT_BITS) - 1)) as usize
    }

    /// The sequence number: 1 for the process's first connection, then 2, 3, …
    pub fn seq(self) -> u64 {
        self.0 >> SLOT_BITS
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.seq().fmt(f)
    }
}

/// Why a send was refused. Nothing of the message was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No such connection: it closed, or the id is stale.
    NotFound,
    /// The connection is closing; it takes no new messages.
    Closing,
    /// The send buffer is at its limit (`max_send_buffer_size`); the peer reads too slowly.
    BufferFull,
    /// The message cannot be framed by the protocol (e.g. over 4 GiB for `frame`).
    TooLarge,
}

/// Why a connection failed; given to `on_error` before the connection closes.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed (reset, broken pipe, …).
    Io(io::Error),
    /// A message exceeded `max_package_size` (WebSocket peers get close code 1009).
    PackageTooBig,
    /// A `text` line exceeded the limit.
    Line(LineTooLong),
    /// A malformed `frame` header.
    Frame(FrameError),
    /// A malformed or oversized HTTP request.
    Http(HttpError),
    /// A refused WebSocket handshake.
    Handshake(ws::handshake::HandshakeError),
    /// A violation of RFC 6455.
    WebSocket(ws::ProtocolError),
    /// An outbound connection could not be established.
    Connect(super::ConnectError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "socket error: {e}"),
            Self::PackageTooBig => f.write_str("message larger than max_package_size"),
            Self::Line(e) => e.fmt(f),
            Self::Frame(e) => e.fmt(f),
            Self::Http(e) => e.fmt(f),
            Self::Handshake(e) => write!(f, "WebSocket handshake refused: {e}"),
            Self::WebSocket(e) => write!(f, "WebSocket protocol error: {e}"),
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "no such connection",
            Self::Closing => "connection is closing",
            Self::BufferFull => "send buffer full",
            Self::TooLarge => "message too large for the protocol",
        })
    }
}

impl std::error::Error for SendError {}

//! One connection's socket, protocol state and buffers, and the only code that reads and
//! writes sockets. `WouldBlock` never leaves this file: I/O results become [`Progress`].

use super::{
    batch::Chain,
    tls::{Tls, Wire},
    ConnId,
};
use crate::codec::{
    frame::FrameCodec, http::HttpCodec, text::TextCodec, ws::WsSession, Limits, Protocol, WhenFull,
};
use mio::net::TcpStream;
use std::{
    any::Any,
    io::{self, IoSlice, Read, Write},
    net::SocketAddr,
    time::Instant,
};

/// Largest request head accepted for HTTP and the WebSocket handshake.
pub(crate) const MAX_HTTP_HEAD: usize = 16 << 10;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Messages flow both ways.
    Open,
    /// Closing was asked for: queued output is flushed (WebSocket: after our close frame),
    /// no new sends are taken, input is still decoded so a WebSocket close reply is seen.
    Closing,
    /// Output is flushed and our write side shut down; input is read and discarded until the
    /// peer closes too, so unread data never turns our close into a reset.
    Linger,
    /// Gone: deregistered; `on_close` is pending or done; the slot is freed after the batch.
    Dead,
}

/// Protocol state; `Detached` while the runtime has lent it out to decode.
#[derive(Debug)]
pub(crate) enum Codec {
    Tcp,
    Text(TextCodec),
    Frame(FrameCodec),
    Http(HttpCodec),
    Handshake(HttpCodec),
    /// Outbound `ws://`: our upgrade request is sent, the server's 101 awaited.
    Upgrading(Box<super::connect::Upgrade>),
    Ws(Box<WsSession>),
    Detached,
}

impl Codec {
    pub(crate) fn new(protocol: Protocol, limits: &Limits) -> Self {
        match protocol {
            Protocol::Tcp => Self::Tcp,
            Protocol::Text => Self::Text(TextCodec::new(limits.max_package_size)),
            Protocol::Frame => Self::Frame(FrameCodec::new(limits.max_package_size)),
            Protocol::Http => Self::Http(HttpCodec::new(MAX_HTTP_HEAD, limits.max_package_size)),
            Protocol::WebSocket => Self::Handshake(HttpCodec::new(MAX_HTTP_HEAD, 0)),
        }
    }
}

/// What a read or write achieved.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Some bytes moved; try again.
    Moved,
    /// The socket has nothing more for now (`WouldBlock`), or the buffer is flushed.
    Drained,
    /// The peer closed its write side (read returned 0).
    Eof,
    /// The socket failed.
    Error(io::Error),
}

/// Input bytes: `data[start..end]` is pending; `data` is fully initialised so reads need no
/// `unsafe`, and it is allocated only while bytes are pending or being read.
#[derive(Debug, Default)]
pub(crate) struct InBuf {
    pub(crate) data: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl InBuf {
    pub(crate) fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Makes room for at least `min` more bytes at the end.
    pub(crate) fn reserve(&mut self, min: usize) {
        if self.data.len() - self.end >= min {
            return;
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < min {
            let want = (self.end + min).max(self.data.len() * 2);
            self.data.resize(want, 0);
        }
    }

    /// Appends `bytes`.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.data[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// Output bytes not yet accepted by the socket: `buf[head..]`.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    buf: Vec<u8>,
    head: usize,
}

impl OutBuf {
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The queued bytes.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.buf.drain(..self.head);
        self.buf
    }

    /// Puts `bytes` in front of everything queued (the WebSocket 101 before early sends).
    pub(crate) fn prepend(&mut self, bytes: &[u8]) {
        let mut buf = Vec::with_capacity(bytes.len() + self.len());
        buf.extend_from_slice(bytes);
        buf.extend_from_slice(&self.buf[self.head..]);
        self.buf = buf;
        self.head = 0;
    }

    fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.buf.len() {
            // Release the memory: an idle connection keeps no buffer.
            self.buf = Vec::new();
            self.head = 0;
        } else if self.head >= 64 << 10 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }
}

/// A connection in the reactor's slab.
///
/// Laid out in declaration order (`repr(C)`), hottest first: a push to one of 10,000 idle
/// connections finds its slot cold, so what sending and flushing read shares the first
/// cache line, and what reading and decoding read the next ones; the rest comes last.
#[repr(C)]
pub(crate) struct Conn {
    // Sending and flushing.
    pub(crate) id: ConnId,
    pub(crate) socket: TcpStream,
    pub(crate) phase: Phase,
    pub(crate) protocol: Protocol,
    /// WebSocket before the 101 is written: sends are queued, not written.
    pub(crate) hold_output: bool,
    /// An outbound WebSocket: the client side, whose frames are masked.
    pub(crate) ws_client: bool,
    pub(crate) output: OutBuf,
    pub(crate) max_send_buffer: usize,
    /// Whether WRITABLE interest is registered (only while output is pending).
    pub(crate) writable: bool,
    /// [`WhenFull::PauseRecv`]: sends past `max_send_buffer` are taken and set `backlogged`.
    pub(crate) pause_when_full: bool,
    /// Over its send limit with `pause_when_full`: input waits until output drains.
    pub(crate) backlogged: bool,
    pub(crate) recv_paused: bool,
    /// `on_buffer_full` fired; `on_buffer_drain` is owed once the output empties.
    pub(crate) buffer_full: bool,
    /// An outbound connection whose connect has not completed yet (see `connect.rs`).
    pub(crate) connecting: bool,
    /// The peer closed its write side; no lingering needed after our flush.
    pub(crate) peer_eof: bool,
    /// HTTP: close after the response to the current request.
    pub(crate) close_after_response: bool,
    /// Its messages gathered in the reactor's write batch since the last flush (only while
    /// `output` is empty: later messages queue behind `output` instead).
    pub(crate) batched: Option<Chain>,
    /// The TLS session of a connection accepted by a worker with `tls`: every read and
    /// write goes through it (see [`Wire`]).
    pub(crate) tls: Option<Box<Tls>>,
    pub(crate) bytes_out: u64,
    // Reading and decoding.
    pub(crate) bytes_in: u64,
    /// Index of the worker that accepted it.
    pub(crate) worker: usize,
    /// When input last arrived (any frame, pongs included): for idle timeouts.
    pub(crate) last_active: Instant,
    pub(crate) codec: Codec,
    /// Unconsumed input (a partial message), empty while idle.
    pub(crate) input: InBuf,
    /// When this connection was last answered at light load (see the runtime's
    /// `REQUEST_RESPONSE`): a peer that writes again soon after waits for its answers.
    pub(crate) answered: Option<Instant>,
    /// Since when a message has been arriving incomplete: for `request_timeout`.
    pub(crate) partial_since: Option<Instant>,
    /// The pending timeout check, and when it is due.
    pub(crate) deadline: Option<(super::timer::TimerId, Instant)>,
    // Rarely read.
    /// Closed by its owner (`close`, `destroy`): an outbound worker's automatic reconnect
    /// does not bring it back.
    pub(crate) closed_by_owner: bool,
    pub(crate) peer: SocketAddr,
    pub(crate) since: Instant,
    /// WebSocket close code and reason asked for by `close`, applied by the runtime.
    pub(crate) close_request: Option<(u16, Box<str>)>,
    pub(crate) data: Option<Box<dyn Any>>,
}

impl Conn {
    pub(crate) fn new(
        id: ConnId,
        socket: TcpStream,
        peer: SocketAddr,
        worker: usize,
        protocol: Protocol,
        limits: &Limits,
        now: Instant,
    ) -> Self {
        Self {
            id,
            socket,
            tls: None,
            peer,
            worker,
            protocol,
            codec: Codec::new(protocol, limits),
            phase: Phase::Open,
            input: InBuf::default(),
            output: OutBuf::default(),
            batched: None,
            max_send_buffer: limits.max_send_buffer_size,
            pause_when_full: limits.when_full == WhenFull::PauseRecv,
            backlogged: false,
            writable: false,
            hold_output: protocol == Protocol::WebSocket,
            recv_paused: false,
            connecting: false,
            ws_client: false,
            closed_by_owner: false,
            buffer_full: false,
            peer_eof: false,
            close_after_response: false,
            close_request: None,
            data: None,
            bytes_in: 0,
            bytes_out: 0,
            since: now,
            last_active: now,
            answered: None,
            partial_since: None,
            deadline: None,
        }
    }

    /// Whether its input may be read and decoded now: not closed, paused or backlogged.
    pub(crate) fn may_read(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing) && !self.recv_paused && !self.backlogged
    }

    /// Output not yet written: its own buffer and its messages in the write batch.
    pub(crate) fn queued(&self) -> usize {
        self.output.len() + self.batched.map_or(0, |c| c.bytes as usize)
    }

    /// The socket as reads and writes see it: through the TLS session, if any.
    pub(crate) fn wire(&mut self) -> Wire<'_> {
        Wire {
            socket: &mut self.socket,
            tls: self.tls.as_deref_mut(),
        }
    }

    /// Whether TLS ciphertext waits for the socket (output not flushed yet).
    pub(crate) fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.pending())
    }

    /// Whether the TLS handshake is still under way (it counts as an incomplete request).
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking())
    }

    /// Reads once into `buf`'s free space (plaintext, with TLS).
    pub(crate) fn read_into(&mut self, buf: &mut InBuf) -> Progress {
        loop {
            return match self.wire().read(&mut buf.data[buf.end..]) {
                Ok(0) => Progress::Eof,
                Ok(n) => {
                    buf.end += n;
                    self.bytes_in += n as u64;
                    Progress::Moved
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
                Err(e) => Progress::Error(e),
            };
        }
    }

    /// Reads and discards (ciphertext too: nothing more is decoded); for lingering
    /// connections.
    pub(crate) fn read_discard(&mut self) -> Progress {
        let mut sink = [0u8; 4096];
        loop {
            match self.socket.read(&mut sink) {
                Ok(0) => return Progress::Eof,
                Ok(n) => self.bytes_in += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Drained,
                Err(e) => return Progress::Error(e),
            }
        }
    }

    /// Sends `parts` as one message: written straight to the socket when nothing is queued
    /// (one `writev`, no copy), the rest queued. For large messages; the reactor's
    /// `write_parts` batches the others.
    pub(crate) fn write_parts(&mut self, parts: &[&[u8]]) -> Progress {
        let mut written = 0;
        if self.output.is_empty() && !self.hold_output {
            let slices: [IoSlice<'_>; 3] =
                std::array::from_fn(|i| IoSlice::new(parts.get(i).copied().unwrap_or(&[])));
            loop {
                match self.wire().write_vectored(&slices[..parts.len().min(3)]) {
                    Ok(n) => written = n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Progress::Error(e),
                }
                break;
            }
            self.bytes_out += written as u64;
        }
        let mut skip = written;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            self.output.extend(&part[skip..]);
            skip = 0;
        }
        Progress::Moved
    }

    /// Writes queued output (with TLS: held ciphertext first) until it is empty
    /// (`Drained`) or the socket is full (`Moved`).
    pub(crate) fn flush(&mut self) -> Progress {
        match self.wire().send_held() {
            Ok(true) => {}
            Ok(false) => return Progress::Moved,
            Err(e) => return Progress::Error(e),
        }
        while !self.output.is_empty() {
            let Self {
                socket,
                tls,
                output,
                ..
            } = self;
            let mut wire = Wire {
                socket,
                tls: tls.as_deref_mut(),
            };
            match wire.write(&output.buf[output.head..]) {
                Ok(0) => return Progress::Error(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.output.consume(n);
                    self.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Moved,
                Err(e) => return Progress::Error(e),
            }
        }
        if self.tls_pending() {
            Progress::Moved
        } else {
            Progress::Drained
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Conn, OutBuf};
    use std::mem::{offset_of, size_of};

    /// A push to a cold connection reads these fields: they share its first cache line.
    #[test]
    fn what_a_send_reads_sits_in_the_first_cache_line() {
        let ends = [
            ("id", offset_of!(Conn, id) + 8),
            ("phase", offset_of!(Conn, phase) + 1),
            ("protocol", offset_of!(Conn, protocol) + 1),
            ("hold_output", offset_of!(Conn, hold_output) + 1),
            ("output", offset_of!(Conn, output) + size_of::<OutBuf>()),
        ];
        for (field, end) in ends {
            assert!(end <= 64, "{field} ends at byte {end}");
        }
    }
}

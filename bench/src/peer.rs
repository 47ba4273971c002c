//! The two kinds of sockets the harness drives: WebSocket clients (client framing written
//! by hand: one handshake GET, masked frames out, unmasked frames in) and pipelined backends
//! on the text port. Reads stop at a short read: on a stream socket a read that did not fill
//! the buffer drained it, and edge-triggered readiness fires again for new data. With
//! `--tls` a client's bytes go through a rustls session (read until the socket would block).

use crate::book::Book;
use mio::net::TcpStream;
use rustls::ClientConnection;
use std::{
    collections::VecDeque,
    io::{self, Read, Write},
};

/// The RFC 6455 §1.3 example key and its accept value: the server does not care that every
/// client uses the same key, and the harness spends no SHA-1 on it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Where a WebSocket client stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Connecting,
    /// GET sent, waiting for 101.
    Handshaking,
    /// 101 received, uid sent.
    Open,
    Dead,
}

/// One WebSocket client; its uid is `u{index}`.
#[derive(Debug)]
pub struct Client {
    pub sock: Option<TcpStream>,
    /// `--tls`: the session the client's bytes go through.
    pub tls: Option<Box<ClientConnection>>,
    pub state: State,
    /// An incomplete response head or frame carried to the next read.
    partial: Vec<u8>,
}

/// What reading a socket came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Open,
    /// The peer closed or the socket failed.
    Gone,
}

impl Client {
    pub fn new() -> Self {
        Self {
            sock: None,
            tls: None,
            state: State::Idle,
            partial: Vec::new(),
        }
    }

    /// The socket connected: send the upgrade request.
    pub fn send_handshake(&mut self, host: &str) -> io::Result<()> {
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.send(req.as_bytes())?;
        self.state = State::Handshaking;
        Ok(())
    }

    /// Writes a small message (through TLS: sealed, then as much as the socket takes; the
    /// rest leaves on the next writable edge, see [`Client::flush_tls`]).
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let sock = self.sock.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        match self.tls.as_mut() {
            None => write_all_nb(sock, bytes),
            Some(tls) => {
                tls.writer().write_all(bytes)?;
                self.flush_tls()
            }
        }
    }

    /// Sends the ciphertext the session holds, until the socket would block.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        let (Some(sock), Some(tls)) = (self.sock.as_mut(), self.tls.as_mut()) else {
            return Ok(());
        };
        while tls.wants_write() {
            match tls.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads through the TLS session until the socket would block.
    fn read_tls(&mut self, index: usize, rbuf: &mut [u8], book: &mut Book, now_ns: u64) -> Flow {
        loop {
            let (Some(sock), Some(tls)) = (self.sock.as_mut(), self.tls.as_mut()) else {
                return Flow::Gone;
            };
            match tls.read_tls(sock) {
                Ok(0) => return Flow::Gone,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Flow::Gone,
            }
            if tls.process_new_packets().is_err() {
                return Flow::Gone;
            }
            loop {
                let Some(tls) = self.tls.as_mut() else {
                    return Flow::Gone;
                };
                let n = match tls.reader().read(rbuf) {
                    Ok(0) => return Flow::Gone,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return Flow::Gone,
                };
                if self.consume(index, &rbuf[..n], book, now_ns) == Flow::Gone {
                    return Flow::Gone;
                }
            }
            if self.flush_tls().is_err() {
                return Flow::Gone;
            }
        }
    }

    /// Hands `data` (after any partial item kept from before) to [`Client::process`].
    fn consume(&mut self, index: usize, data: &[u8], book: &mut Book, now_ns: u64) -> Flow {
        if self.partial.is_empty() {
            let (used, r) = self.process(index, data, book, now_ns);
            self.partial.extend_from_slice(&data[used..]);
            r
        } else {
            let mut all = std::mem::take(&mut self.partial);
            all.extend_from_slice(data);
            let (used, r) = self.process(index, &all, book, now_ns);
            all.drain(..used);
            self.partial = all;
            r
        }
    }

    /// Reads what is available; completes the handshake (then sends `uid`) and hands every
    /// text frame to `book`. Returns `Gone` if the connection ended.
    pub fn read(&mut self, index: usize, rbuf: &mut [u8], book: &mut Book, now_ns: u64) -> Flow {
        if self.tls.is_some() {
            return self.read_tls(index, rbuf, book, now_ns);
        }
        loop {
            let Some(sock) = self.sock.as_mut() else {
                return Flow::Gone;
            };
            let n = match sock.read(rbuf) {
                Ok(0) => return Flow::Gone,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Flow::Gone,
            };
            let result = self.consume(index, &rbuf[..n], book, now_ns);
            if result == Flow::Gone || n < rbuf.len() {
                return result;
            }
        }
    }

    /// Consumes complete items from `data`; returns how many bytes were used.
    fn process(
        &mut self,
        index: usize,
        data: &[u8],
        book: &mut Book,
        now_ns: u64,
    ) -> (usize, Flow) {
        let mut at = 0;
        if self.state == State::Handshaking {
            let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                return (0, Flow::Open);
            };
            let head = &data[..end];
            if !head.starts_with(b"HTTP/1.1 101")
                || !head.windows(ACCEPT.len()).any(|w| w == ACCEPT)
            {
                return (end + 4, Flow::Gone);
            }
            at = end + 4;
            let uid = format!("u{index}");
            let frame = masked_text(uid.as_bytes(), index as u32);
            if self.send(&frame).is_err() {
                return (at, Flow::Gone);
            }
            self.state = State::Open;
        }
        while let Some((opcode, payload, len)) = server_frame(&data[at..]) {
            match opcode {
                Some(0x1) => book.on_frame(index, payload, now_ns),
                Some(0x8) => return (at + len, Flow::Gone),
                // Pings are not expected from these servers; pongs and binary are ignored.
                Some(_) => {}
                // A masked server frame is a protocol violation: count it as corrupt.
                None => book.corrupted += 1,
            }
            at += len;
        }
        (at, Flow::Open)
    }
}

/// Parses one unmasked server frame: (opcode, or None if masked; payload; frame length).
fn server_frame(data: &[u8]) -> Option<(Option<u8>, &[u8], usize)> {
    let [b0, b1, ..] = *data else { return None };
    let (len, head): (usize, usize) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(data.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(data.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let head = if b1 & 0x80 != 0 { head + 4 } else { head };
    let payload = data.get(head..head.checked_add(len)?)?;
    let opcode = (b1 & 0x80 == 0).then_some(b0 & 0x0F);
    Some((opcode, payload, head + len))
}

/// A final masked text frame (client → server) of a short payload.
pub fn masked_text(payload: &[u8], seed: u32) -> Vec<u8> {
    assert!(payload.len() < 126, "short payloads only");
    let mask = seed.wrapping_mul(0x9E37_79B1).to_be_bytes();
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Writes a small message whole on a fresh socket (the kernel buffer has room for it).
fn write_all_nb(sock: &mut TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match sock.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A pipelined connection to the text port: lines out, `ok`/`fail` answers in, in order.
#[derive(Debug)]
pub struct Backend {
    pub sock: TcpStream,
    /// Lines not yet taken by the socket: `out[head..]`.
    pub out: Vec<u8>,
    head: usize,
    input: Vec<u8>,
    /// Seqs written and not yet answered, oldest first.
    pub outstanding: VecDeque<u64>,
    pub ok: u64,
    pub fail: u64,
    /// Seqs answered `fail` (the binding check retries their uids).
    pub failed: Vec<u64>,
}

impl Backend {
    pub fn new(sock: TcpStream) -> Self {
        Self {
            sock,
            out: Vec::with_capacity(64 << 10),
            head: 0,
            input: Vec::new(),
            outstanding: VecDeque::new(),
            ok: 0,
            fail: 0,
            failed: Vec::new(),
        }
    }

    /// Writes queued lines until done or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.head < self.out.len() {
            match self.sock.write(&self.out[self.head..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.head += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.head == self.out.len() {
            self.out.clear();
            self.head = 0;
        }
        Ok(())
    }

    /// Reads answers; each one settles the oldest outstanding seq.
    pub fn read(&mut self, rbuf: &mut [u8]) -> Flow {
        loop {
            let n = match self.sock.read(rbuf) {
                Ok(0) => return Flow::Gone,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Flow::Gone,
            };
            self.input.extend_from_slice(&rbuf[..n]);
            let mut at = 0;
            while let Some(nl) = self.input[at..].iter().position(|&b| b == b'\n') {
                let line = &self.input[at..at + nl];
                let seq = self.outstanding.pop_front();
                if line == b"ok" {
                    self.ok += 1;
                } else {
                    self.fail += 1;
                    self.failed.extend(seq);
                }
                at += nl + 1;
            }
            self.input.drain(..at);
            if n < rbuf.len() {
                return Flow::Open;
            }
        }
    }
}

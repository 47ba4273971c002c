//! A connection's TLS session, driven sans-IO: [`Wire`] puts a
//! `rustls::server::UnbufferedServerConnection` between the socket and the buffers, so
//! reading yields plaintext and writing takes plaintext, with the same non-blocking
//! contract as the socket itself.
//!
//! rustls' unbuffered API leaves every buffer to us, which is what keeps an idle TLS
//! connection small: records are read into one buffer shared by all connections and
//! processed there; only the bytes of a record not complete yet (or a handshake flight
//! still being joined) are kept by the connection, and ciphertext and plaintext waiting
//! for the socket or the codec only while they wait.
//!
//! Reading processes what the socket has until the caller's buffer is full or the socket
//! would block, and writes what the handshake produced as it goes. Writing first sends
//! ciphertext still held from before (and would block, taking nothing, while some
//! remains), then seals up to [`SEAL_MAX`] bytes of the caller's slices gathered into
//! full records, and sends them. Ciphertext the socket did not take stays with the
//! connection ([`Tls::pending`]): the reactor keeps WRITABLE interest for it and does not
//! count the connection flushed until it is out.

mod drive;

use drive::{drive, encode_with, seal, Quiet, Writer};
use mio::net::TcpStream;
use rustls::{server::UnbufferedServerConnection, unbuffered::ConnectionState, ServerConfig};
use std::{
    cell::RefCell,
    io::{self, IoSlice, Read, Write},
    sync::Arc,
};

/// Plaintext sealed per write call: bounds the ciphertext held per connection when the
/// socket is full.
const SEAL_MAX: usize = 64 << 10;
/// One read from the socket: a whole record (RFC 8446 §5.2: 2^14 + 256) and its header.
const READ: usize = (16 << 10) + 256 + 5;

thread_local! {
    /// Socket reads land here; only an incomplete record is copied to its connection.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Where a write's slices are gathered into records (rustls seals each call's data
    /// as its own records: 22 bytes of overhead on a 40-byte push otherwise).
    static GATHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The TLS state of one connection.
pub(crate) struct Tls {
    conn: UnbufferedServerConnection,
    /// Received bytes rustls has not discarded yet (an incomplete record); empty when idle.
    incoming: Vec<u8>,
    /// Decrypted bytes the caller had no room for; empty when idle.
    plain: Vec<u8>,
    /// Ciphertext waiting for the socket: `out[out_at..]`; empty when idle.
    out: Vec<u8>,
    out_at: usize,
    /// Plaintext written before the handshake completed, sealed once it has.
    early: Vec<u8>,
    /// The peer closed (close_notify, or the connection ended).
    eof: bool,
    /// rustls reported an error: the session is not touched again (its state is sticky,
    /// and the bytes it refers to are gone), every read and write fails.
    failed: bool,
    /// Our `close_notify` alert is queued (sent once, before the write side is shut).
    pub(crate) close_sent: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("incoming", &self.incoming.len())
            .field("plain", &self.plain.len())
            .field("out", &(self.out.len() - self.out_at))
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl Tls {
    pub(crate) fn new(config: Arc<ServerConfig>) -> Result<Box<Self>, rustls::Error> {
        Ok(Box::new(Self {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            plain: Vec::new(),
            out: Vec::new(),
            out_at: 0,
            early: Vec::new(),
            eof: false,
            failed: false,
            close_sent: false,
        }))
    }

    /// Whether ciphertext waits for the socket.
    pub(crate) fn pending(&self) -> bool {
        self.out_at < self.out.len()
    }

    /// Whether the TLS handshake is still under way.
    pub(crate) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues our `close_notify` (nothing before the handshake completed).
    pub(crate) fn queue_close_notify(&mut self) {
        let _ = self.drive_kept(|w, out| encode_with(out, |buf| w.queue_close_notify(buf)));
    }

    /// [`drive`] over the bytes kept from earlier reads (rustls' handshake joining refers
    /// to them by offset, so every call must present them), then drops what it is done
    /// with.
    fn drive_kept(
        &mut self,
        write: impl FnMut(&mut Writer<'_>, &mut Vec<u8>) -> Result<(), rustls::Error>,
    ) -> Result<Quiet, rustls::Error> {
        if self.failed {
            return Err(rustls::Error::General("failed before".into()));
        }
        let Self {
            conn,
            incoming,
            plain,
            out,
            ..
        } = self;
        let result = drive(conn, incoming, plain, out, write);
        let done = match &result {
            Ok((done, _)) | Err((done, _)) => *done,
        };
        incoming.drain(..done.min(incoming.len()));
        if incoming.is_empty() {
            *incoming = Vec::new();
        }
        self.failed = result.is_err();
        result.map(|(_, quiet)| quiet).map_err(|(_, e)| e)
    }

    /// After an error: encodes the alert rustls queued, without looking at the input
    /// again (that would fail again and queue a second fatal alert).
    fn encode_alert(&mut self) {
        if std::mem::replace(&mut self.failed, true) {
            return;
        }
        let Self {
            conn,
            incoming,
            out,
            ..
        } = self;
        let status = conn.process_tls_records(incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let at = out.len();
            out.resize(at + 64, 0);
            match encode.encode(&mut out[at..]) {
                Ok(n) => out.truncate(at + n),
                Err(_) => out.truncate(at),
            }
        }
        *incoming = Vec::new();
    }
}

/// The socket as the buffers see it: plain, or through a TLS session.
#[derive(Debug)]
pub(crate) struct Wire<'a> {
    pub(crate) socket: &'a mut TcpStream,
    pub(crate) tls: Option<&'a mut Tls>,
}

/// Writes held ciphertext until none is left (`Ok`) or the socket is full (`WouldBlock`).
fn send_out(tls: &mut Tls, socket: &mut TcpStream) -> io::Result<()> {
    while tls.pending() {
        match socket.write(&tls.out[tls.out_at..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => tls.out_at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Drained: an idle connection keeps no buffer.
    tls.out = Vec::new();
    tls.out_at = 0;
    Ok(())
}

/// As [`send_out`], with a full socket not an error (WRITABLE interest carries it on).
fn send_out_soft(tls: &mut Tls, socket: &mut TcpStream) -> io::Result<()> {
    match send_out(tls, socket) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}

impl Tls {
    /// Feeds `n` received bytes (in `scratch`, after any kept in `incoming`) to rustls.
    fn receive(&mut self, scratch: &mut [u8], n: usize) -> Result<Quiet, rustls::Error> {
        if self.failed {
            return Err(rustls::Error::General("failed before".into()));
        }
        let Self {
            conn,
            incoming,
            plain,
            out,
            early,
            ..
        } = self;
        let mut seal_early = |w: &mut Writer<'_>, out: &mut Vec<u8>| {
            if early.is_empty() {
                return Ok(());
            }
            let held = std::mem::take(early);
            seal(w, &held, out)
        };
        let (result, kept) = if incoming.is_empty() {
            let result = drive(conn, &mut scratch[..n], plain, out, &mut seal_early);
            let done = match &result {
                Ok((done, _)) | Err((done, _)) => *done,
            };
            (result, scratch[done.min(n)..n].to_vec())
        } else {
            incoming.extend_from_slice(&scratch[..n]);
            let result = drive(conn, incoming, plain, out, &mut seal_early);
            let done = match &result {
                Ok((done, _)) | Err((done, _)) => *done,
            };
            let mut rest = std::mem::take(incoming);
            rest.drain(..done.min(rest.len()));
            (result, rest)
        };
        *incoming = if kept.is_empty() { Vec::new() } else { kept };
        result.map(|(_, quiet)| quiet).map_err(|(_, e)| e)
    }
}

impl Read for Wire<'_> {
    /// Plaintext: fills `buf` until it is full or the socket would block (then `Ok` with
    /// what came, or `WouldBlock` if nothing did), so a short read means the socket is
    /// drained, as it does for a plain socket. `Ok(0)` is the peer's `close_notify` or its
    /// TCP FIN; a TLS protocol error is `InvalidData` after the alert is sent.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.socket.read(buf);
        };
        let mut filled = 0;
        loop {
            if !tls.plain.is_empty() {
                let n = tls.plain.len().min(buf.len() - filled);
                buf[filled..filled + n].copy_from_slice(&tls.plain[..n]);
                filled += n;
                tls.plain.drain(..n);
                if tls.plain.is_empty() {
                    tls.plain = Vec::new();
                }
            }
            if filled == buf.len() || tls.eof {
                return Ok(filled);
            }
            let quiet = SCRATCH.with_borrow_mut(|scratch| {
                if scratch.len() < READ {
                    scratch.resize(READ, 0);
                }
                let n = loop {
                    match self.socket.read(&mut scratch[..READ]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                if n == 0 {
                    // A FIN with or without close_notify: browsers often send none.
                    return Ok(Quiet::PeerClosed);
                }
                tls.receive(scratch, n).map_err(|e| {
                    // Best effort: the alert that says why.
                    tls.encode_alert();
                    let _ = send_out(tls, self.socket);
                    io::Error::new(io::ErrorKind::InvalidData, e)
                })
            });
            let quiet = match quiet {
                Ok(quiet) => quiet,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            };
            if quiet == Quiet::PeerClosed {
                tls.eof = true;
            }
            // Handshake messages, tickets, alerts: written now; what the socket does not
            // take waits for WRITABLE (the reactor checks `Tls::pending` after reading).
            send_out_soft(tls, self.socket)?;
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Plain: one `writev`. TLS: `WouldBlock` while earlier ciphertext waits; else seals
    /// [`SEAL_MAX`] bytes at a time until the socket is full, and returns how much
    /// plaintext was taken (ciphertext the socket did not take is held, at most about
    /// [`SEAL_MAX`], see [`Tls::pending`]). Before the handshake completes, plaintext is
    /// kept and sealed once it has.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.socket.write_vectored(bufs);
        };
        send_out(tls, self.socket)?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut taken = 0;
        while taken < total {
            let n = GATHER.with_borrow_mut(|gather| {
                gather.clear();
                let mut skip = taken;
                for buf in bufs {
                    if gather.len() == SEAL_MAX {
                        break;
                    }
                    if skip >= buf.len() {
                        skip -= buf.len();
                        continue;
                    }
                    let part = &buf[skip..];
                    skip = 0;
                    let n = part.len().min(SEAL_MAX - gather.len());
                    gather.extend_from_slice(&part[..n]);
                }
                let data: &[u8] = gather;
                let mut early = std::mem::take(&mut tls.early);
                let result = tls.drive_kept(|w, out| {
                    if !early.is_empty() {
                        let held = std::mem::take(&mut early);
                        seal(w, &held, out)?;
                    }
                    seal(w, data, out)
                });
                match result {
                    Ok(Quiet::Blocked) => {
                        // Not writable yet: kept for when the handshake completes.
                        early.extend_from_slice(gather);
                        tls.early = early;
                        Ok(gather.len())
                    }
                    Ok(_) => Ok(gather.len()),
                    Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            })?;
            taken += n;
            match send_out(tls, self.socket) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Wire<'_> {
    /// Sends held ciphertext: `Ok(true)` once none is left, `Ok(false)` if the socket is full.
    pub(crate) fn send_held(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        match send_out(tls, self.socket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

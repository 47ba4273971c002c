//! A connection's TLS session, driven sans-IO: [`Wire`] puts a `rustls::ServerConnection`
//! between the socket and the buffers, so reading yields plaintext and writing takes
//! plaintext, with the same non-blocking contract as the socket itself.
//!
//! Reading feeds what the socket has to rustls (`read_tls`, `process_new_packets`) until the
//! caller's buffer is full or the socket would block, and writes what the handshake
//! produced as it goes. Writing first sends ciphertext still held from before (and would
//! block, taking nothing, while some remains), then seals up to [`SEAL_MAX`] bytes of the
//! caller's slices, coalesced into full records, and sends them. Ciphertext the socket did
//! not take stays in rustls ([`Tls::pending`]): the reactor keeps WRITABLE interest for it
//! and does not count the connection flushed until it is out.

use mio::net::TcpStream;
use rustls::ServerConnection;
use std::{
    cell::RefCell,
    io::{self, IoSlice, Read, Write},
};

/// Plaintext sealed per write call: bounds the ciphertext rustls holds per connection
/// when the socket is full.
const SEAL_MAX: usize = 64 << 10;
/// Plaintext in one TLS record (RFC 8446 §5.1).
const RECORD: usize = 16 << 10;

thread_local! {
    /// Where small messages are gathered into one record: rustls seals each slice it is
    /// given as its own record, 22 bytes of overhead for a 40-byte push.
    static GATHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The TLS state of one connection.
#[derive(Debug)]
pub(crate) struct Tls {
    pub(crate) session: ServerConnection,
    /// Our `close_notify` alert is queued (sent once, before the write side is shut).
    pub(crate) close_sent: bool,
}

impl Tls {
    pub(crate) fn new(session: ServerConnection) -> Box<Self> {
        Box::new(Self {
            session,
            close_sent: false,
        })
    }

    /// Whether ciphertext waits for the socket.
    pub(crate) fn pending(&self) -> bool {
        self.session.wants_write()
    }
}

/// The socket as the buffers see it: plain, or through a TLS session.
#[derive(Debug)]
pub(crate) struct Wire<'a> {
    pub(crate) socket: &'a mut TcpStream,
    pub(crate) tls: Option<&'a mut Tls>,
}

/// Writes held ciphertext until none is left (`Ok`) or the socket is full (`WouldBlock`).
fn send_held(session: &mut ServerConnection, socket: &mut TcpStream) -> io::Result<()> {
    while session.wants_write() {
        match session.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Hands up to [`SEAL_MAX`] bytes of `bufs`, after the first `skip`, to rustls in
/// record-sized pieces; returns how many it took.
fn seal(
    session: &mut ServerConnection,
    bufs: &[IoSlice<'_>],
    mut skip: usize,
) -> io::Result<usize> {
    GATHER.with_borrow_mut(|gather| {
        let mut taken = 0;
        let mut full = false;
        for buf in bufs.iter() {
            if skip >= buf.len() {
                skip -= buf.len();
                continue;
            }
            let mut rest: &[u8] = &buf[skip..];
            skip = 0;
            while !rest.is_empty() {
                if taken + gather.len() >= SEAL_MAX {
                    full = true;
                    break;
                }
                if gather.is_empty() && rest.len() >= RECORD {
                    // A large piece needs no gathering: seal it in place.
                    let n = rest.len().min(SEAL_MAX - taken);
                    let sealed = session.writer().write(&rest[..n])?;
                    taken += sealed;
                    if sealed < n {
                        return Ok(taken);
                    }
                    rest = &rest[n..];
                    continue;
                }
                let n = rest.len().min(RECORD - gather.len());
                gather.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if gather.len() == RECORD {
                    let (sealed, whole) = flush_gather(session, gather)?;
                    taken += sealed;
                    if !whole {
                        return Ok(taken);
                    }
                }
            }
            if full {
                break;
            }
        }
        let (sealed, _) = flush_gather(session, gather)?;
        Ok(taken + sealed)
    })
}

/// Seals what `gather` holds; returns how much rustls took and whether that was all. The
/// gather buffer is left empty (what was refused is counted as not written).
fn flush_gather(session: &mut ServerConnection, gather: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    if gather.is_empty() {
        return Ok((0, true));
    }
    let result = session.writer().write(gather);
    let len = gather.len();
    gather.clear();
    let sealed = result?;
    Ok((sealed, sealed == len))
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
        let session = &mut tls.session;
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                return Ok(filled);
            }
            match session.reader().read(&mut buf[filled..]) {
                // `close_notify`.
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A FIN without `close_notify`: browsers do that; an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            match session.read_tls(self.socket) {
                // The FIN is recorded; the reader reports it on the next pass.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
            if let Err(e) = session.process_new_packets() {
                // Best effort: the alert that says why.
                let _ = send_held(session, self.socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages, tickets, alerts: written now; what the socket does not
            // take waits for WRITABLE (the reactor checks `Tls::pending` after reading).
            match send_held(session, self.socket) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Plain: one `writev`. TLS: `WouldBlock` while earlier ciphertext waits; else seals
    /// and sends [`SEAL_MAX`] bytes at a time until the socket is full, and returns how
    /// much plaintext was taken (ciphertext the socket did not take is held, at most about
    /// [`SEAL_MAX`], see [`Tls::pending`]).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.socket.write_vectored(bufs);
        };
        let session = &mut tls.session;
        send_held(session, self.socket)?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut taken = 0;
        while taken < total {
            let sealed = seal(session, bufs, taken)?;
            taken += sealed;
            match send_held(session, self.socket) {
                Ok(()) if sealed > 0 => {}
                // Full socket, or rustls took nothing (its buffer limit mid-handshake).
                Ok(()) => break,
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
        match send_held(&mut tls.session, self.socket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

//! The load generator's event loop: one mio `Poll` over every client and backend socket,
//! on one thread. Phases (in `phases.rs`) drive it by queueing work and calling [`Gen::turn`].

use crate::{
    book::Book,
    peer::{Backend, Client, Flow, State},
};
use mio::{Events, Interest, Poll, Token};
use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

/// Backend `j` has token `BACKEND + j`; client `i` has token `i`.
const BACKEND: usize = 1 << 30;

/// Sockets, the shared read buffer and the verification book.
#[derive(Debug)]
pub struct Gen {
    poll: Poll,
    events: Events,
    pub clients: Vec<Client>,
    pub backends: Vec<Backend>,
    pub book: Book,
    rbuf: Vec<u8>,
    /// Zero of every `*_ns` timestamp.
    epoch: Instant,
    ws: SocketAddr,
    /// `--tls`: every client's session is made from this.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Clients whose connect or handshake is in flight.
    pub in_flight: usize,
    /// Clients that completed the handshake and sent their uid.
    pub open: usize,
    /// Clients that failed or were closed.
    pub dead: usize,
}

impl Gen {
    pub fn new(ws: SocketAddr, n: usize, pad: usize, tls: bool) -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            clients: (0..n).map(|_| Client::new()).collect(),
            backends: Vec::new(),
            book: Book::new(n, pad),
            rbuf: vec![0; 64 << 10],
            epoch: Instant::now(),
            ws,
            tls: tls.then(crate::tls::client_config),
            in_flight: 0,
            open: 0,
            dead: 0,
        })
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Opens the `k` backend connections (blocking connect, then non-blocking).
    pub fn connect_backends(&mut self, text: SocketAddr, k: usize) -> io::Result<()> {
        for j in 0..k {
            let std = std::net::TcpStream::connect(text)?;
            std.set_nodelay(true)?;
            std.set_nonblocking(true)?;
            let mut sock = mio::net::TcpStream::from_std(std);
            self.poll.registry().register(
                &mut sock,
                Token(BACKEND + j),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            self.backends.push(Backend::new(sock));
        }
        Ok(())
    }

    /// Starts a non-blocking connect of client `i` from `source`.
    pub fn start_client(&mut self, i: usize, source: IpAddr) {
        let result = (|| {
            let (IpAddr::V4(source), SocketAddr::V4(dest)) = (source, self.ws) else {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only"));
            };
            let mut stream = crate::sys::connect_from(source, dest)?;
            self.poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok::<_, io::Error>(stream)
        })();
        let client = &mut self.clients[i];
        if let Some(config) = &self.tls {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
            let session = rustls::ClientConnection::new(config.clone(), name).expect("a session");
            client.tls = Some(Box::new(session));
        }
        match result {
            Ok(stream) => {
                client.sock = Some(stream);
                client.state = State::Connecting;
                self.in_flight += 1;
            }
            Err(e) => {
                if self.dead == 0 {
                    eprintln!("pushman-bench: client {i} cannot connect: {e}");
                }
                client.state = State::Dead;
                self.dead += 1;
            }
        }
    }

    /// Polls once (at most `timeout`) and handles every event.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let now_ns = self.now_ns();
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut result = Ok(());
        for e in events.iter() {
            let (token, writable) = (e.token().0, e.is_writable());
            let readable = e.is_readable() || e.is_read_closed() || e.is_error();
            if token >= BACKEND {
                if let Err(err) = self.backend_event(token - BACKEND, writable, readable) {
                    result = Err(err);
                }
            } else {
                self.client_event(token, writable, readable, now_ns);
            }
        }
        self.events = events;
        result
    }

    fn backend_event(&mut self, j: usize, writable: bool, readable: bool) -> io::Result<()> {
        let b = &mut self.backends[j];
        if writable {
            b.flush()?;
        }
        if readable && b.read(&mut self.rbuf) == Flow::Gone {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "backend connection closed",
            ));
        }
        Ok(())
    }

    fn client_event(&mut self, i: usize, writable: bool, readable: bool, now_ns: u64) {
        let client = &mut self.clients[i];
        if client.state == State::Connecting && (writable || readable) {
            let sock = client.sock.as_ref().expect("connecting without a socket");
            // A connect that failed reports its error; one that succeeded has a peer.
            let ok = matches!(sock.take_error(), Ok(None)) && sock.peer_addr().is_ok();
            if !ok || client.send_handshake(&self.ws.to_string()).is_err() {
                self.kill(i);
                return;
            }
        }
        let client = &mut self.clients[i];
        if writable
            && matches!(client.state, State::Handshaking | State::Open)
            && client.flush_tls().is_err()
        {
            self.kill(i);
            return;
        }
        let client = &mut self.clients[i];
        if readable && matches!(client.state, State::Handshaking | State::Open) {
            let was = client.state;
            let flow = client.read(i, &mut self.rbuf, &mut self.book, now_ns);
            if was == State::Handshaking && client.state == State::Open {
                self.in_flight -= 1;
                self.open += 1;
            }
            if flow == Flow::Gone {
                self.kill(i);
            }
        }
    }

    fn kill(&mut self, i: usize) {
        let client = &mut self.clients[i];
        match client.state {
            State::Connecting | State::Handshaking => self.in_flight -= 1,
            State::Open => self.open -= 1,
            State::Idle | State::Dead => return,
        }
        if let Some(mut sock) = client.sock.take() {
            let _ = self.poll.registry().deregister(&mut sock);
        }
        client.state = State::Dead;
        self.dead += 1;
    }

    /// Queues the unicast line for a new seq on backend `j` (flushed by the caller).
    pub fn queue_unicast(&mut self, j: usize, now_ns: u64) {
        let seq = self.book.take_seq(now_ns);
        let b = &mut self.backends[j];
        self.book.unicast_line(seq, &mut b.out);
        b.out.push(b'\n');
        b.outstanding.push_back(seq);
    }

    /// Writes a broadcast line on backend 0; returns its seq.
    pub fn send_broadcast(&mut self) -> io::Result<u64> {
        let seq = self.book.next;
        self.book.next += 1;
        self.book.start_broadcast(seq);
        let b = &mut self.backends[0];
        self.book.broadcast_line(seq, &mut b.out);
        b.out.push(b'\n');
        b.outstanding.push_back(seq);
        b.flush()?;
        Ok(seq)
    }

    /// Answers still owed to the backends.
    pub fn outstanding(&self) -> usize {
        self.backends.iter().map(|b| b.outstanding.len()).sum()
    }

    /// Sums of `ok` and `fail` answers over all backends.
    pub fn answers(&self) -> (u64, u64) {
        self.backends
            .iter()
            .fold((0, 0), |(o, f), b| (o + b.ok, f + b.fail))
    }

    /// Closes every socket (clients first) and waits briefly so the server sees the closes.
    pub fn shutdown(&mut self) {
        for client in &mut self.clients {
            client.sock = None;
        }
        self.backends.clear();
    }
}

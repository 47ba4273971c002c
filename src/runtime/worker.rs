//! `Worker`: a listening address, its protocol, its limits and its callbacks, in Workerman's
//! vocabulary.
//!
//! # Call order
//!
//! Callbacks receive a [`Ctx`]: the application state and the reactor's [`Io`](crate::Io).
//! They run one at a time on the reactor thread. Sends through `ctx.io` are written (or
//! queued) at once; events they cause on other connections (`on_close`, `on_buffer_full`,
//! `on_buffer_drain`, `on_error`) are delivered after the running callback returns, never
//! re-entrantly. For one connection the order is: `on_connect`, then (WebSocket) the
//! handshake hook, then `on_message`s, then `on_close` exactly once.
//!
//! # Outbound connections
//!
//! A worker registered with [`Io::upstream`](crate::Io::upstream) listens nowhere: its
//! callbacks serve the connections [`Io::connect`](crate::Io::connect) opens (Workerman's
//! `AsyncTcpConnection`). Such a connection exists from the call on (sends queue until it
//! is established); then comes `on_connect`, `on_message`s and `on_close`; or, when the
//! connect fails or times out, `on_error` with
//! [`ConnError::Connect`] and `on_close`, never `on_connect`.

use super::{
    connection::{ConnError, ConnId, Message},
    ctx::Ctx,
};
use crate::{
    codec::{
        http::{Request, Response},
        Limits, Protocol,
    },
    error::{Error, Result},
    tls::TlsConfig,
};
use std::{fmt, net::SocketAddr, net::ToSocketAddrs, time::Duration};

/// A refused WebSocket upgrade: the HTTP status and a one-line reason for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status, e.g. 401 or 403.
    pub status: u16,
    /// The reason, sent as a plain-text body.
    pub reason: String,
}

pub(crate) type StartFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>) -> Result<()>>;
pub(crate) type StopFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>)>;
pub(crate) type ConnFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>, ConnId)>;
pub(crate) type MessageFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>, ConnId, Message<'_>)>;
pub(crate) type ErrorFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>, ConnId, &ConnError)>;
pub(crate) type HandshakeFn<S> =
    Box<dyn FnMut(&mut Ctx<'_, S>, ConnId, &Request) -> std::result::Result<(), Refusal>>;
pub(crate) type HttpFn<S> = Box<dyn FnMut(&mut Ctx<'_, S>, ConnId, &Request) -> Response>;

/// The callbacks of one worker; all optional.
pub(crate) struct Handlers<S> {
    pub(crate) worker_start: Option<StartFn<S>>,
    pub(crate) worker_stop: Option<StopFn<S>>,
    pub(crate) connect: Option<ConnFn<S>>,
    pub(crate) message: Option<MessageFn<S>>,
    pub(crate) close: Option<ConnFn<S>>,
    pub(crate) error: Option<ErrorFn<S>>,
    pub(crate) buffer_full: Option<ConnFn<S>>,
    pub(crate) buffer_drain: Option<ConnFn<S>>,
    pub(crate) ws_handshake: Option<HandshakeFn<S>>,
    pub(crate) ws_http: Option<HttpFn<S>>,
}

impl<S> Default for Handlers<S> {
    fn default() -> Self {
        Self {
            worker_start: None,
            worker_stop: None,
            connect: None,
            message: None,
            close: None,
            error: None,
            buffer_full: None,
            buffer_drain: None,
            ws_handshake: None,
            ws_http: None,
        }
    }
}

/// A listening address with a protocol and callbacks: Workerman's `Worker`.
///
/// ```no_run
/// use pushman::{Message, Worker};
///
/// let mut worker = Worker::<()>::new("websocket://127.0.0.1:1234")?;
/// worker.on_message(|ctx, conn, msg| {
///     if let Message::Text(text) = msg {
///         let _ = ctx.io.send(conn, text);
///     }
/// });
/// Worker::run_all((), vec![worker])?;
/// # Ok::<(), pushman::Error>(())
/// ```
pub struct Worker<S> {
    /// Shown in logs and status; defaults to the address.
    pub name: String,
    /// The protocol, from the address's scheme.
    pub protocol: Protocol,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Per-connection limits.
    pub limits: Limits,
    /// Written to a connection refused by `limits.max_connections` or `limits.fd_reserve`
    /// before it is closed. Default: a `503` for `http`, nothing for other protocols.
    pub refusal: Vec<u8>,
    /// Builds the response to a request the library refuses by itself before any callback
    /// (`400`, `413`, `501` from the HTTP codec, `408` from `request_timeout`) from its
    /// status and message. Default: [`plain_error`], a `text/plain` body; an API that
    /// answers JSON everywhere sets its own.
    pub http_error: fn(status: u16, message: &str) -> Response,
    /// Outbound workers only ([`Io::upstream`](crate::Io::upstream)): how long a connect
    /// may take before it fails with [`ConnectError::TimedOut`](crate::ConnectError).
    /// Default: 5 s.
    pub connect_timeout: Duration,
    /// TLS for a listener (Workerman's `transport = 'ssl'`): `websocket` becomes `wss`,
    /// `http` becomes `https` (any protocol works). Default: none. Outbound workers ignore
    /// it. See [`crate::tls`].
    pub tls: Option<TlsConfig>,
    /// Outbound workers only: connect again automatically when a connection fails or
    /// closes (see [`Io::connect`](crate::Io::connect)). Default: off.
    pub reconnect: Option<Reconnect>,
    /// Outbound `ws://` workers: the `Host` header and request path of the upgrade, from
    /// the address (`ws://example.com:8080/chat`; path `/` if none).
    pub(crate) ws_target: (String, String),
    pub(crate) handlers: Handlers<S>,
}

/// Automatic reconnect of an outbound worker: the first attempt after `min`, each failed
/// one doubling the wait up to `max`; an established connection resets it to `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
}

/// The default [`Worker::http_error`]: the message as a `text/plain` body.
pub fn plain_error(status: u16, message: &str) -> Response {
    Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(format!("{message}\n"))
}

impl<S> fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("addr", &self.addr)
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Worker<S> {
    /// A worker for `"scheme://host:port"`; see [`Protocol`] for the schemes.
    ///
    /// # Errors
    /// [`Error::Address`] for an unknown scheme or an address that does not resolve.
    pub fn new(address: &str) -> Result<Self> {
        let bad = |reason| Error::Address {
            given: address.to_string(),
            reason,
        };
        let (scheme, rest) = address.split_once("://").ok_or_else(|| {
            bad("expected scheme://host:port with scheme tcp, text, frame, websocket or http")
        })?;
        let protocol = Protocol::from_scheme(scheme)
            .ok_or_else(|| bad("unknown scheme; supported: tcp, text, frame, websocket, http"))?;
        // A WebSocket address may name a path: the request target of outbound connections.
        let (host, path) = match rest.find('/') {
            Some(at) if protocol == Protocol::WebSocket => rest.split_at(at),
            _ => (rest, "/"),
        };
        let addr = resolve(host).ok_or_else(|| bad("expected host:port, e.g. 0.0.0.0:1234"))?;
        Ok(Self {
            name: address.to_string(),
            protocol,
            addr,
            limits: Limits::default(),
            refusal: if protocol == Protocol::Http {
                b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\ntoo many connections\n".to_vec()
            } else {
                Vec::new()
            },
            http_error: plain_error,
            connect_timeout: Duration::from_secs(5),
            reconnect: None,
            ws_target: (host.to_string(), path.to_string()),
            tls: None,
            handlers: Handlers::default(),
        })
    }

    /// Runs `workers` and everything they start on one reactor in this thread, until a
    /// signal (SIGINT/SIGTERM) or [`Io::stop`](crate::Io::stop). Workerman's `runAll`.
    ///
    /// # Errors
    /// A listener that cannot bind, an `on_worker_start` error, or a failing poll.
    pub fn run_all(state: S, workers: Vec<Worker<S>>) -> Result<()> {
        let mut runtime = super::Runtime::new(state)?;
        for worker in workers {
            runtime.listen(worker)?;
        }
        runtime.run()
    }

    /// Called once when the reactor starts (or, for a worker listened from a callback, at
    /// once); may start more workers with [`Io::listen`](crate::Io::listen). An error stops
    /// the reactor with that error.
    pub fn on_worker_start(&mut self, f: impl FnMut(&mut Ctx<'_, S>) -> Result<()> + 'static) {
        self.handlers.worker_start = Some(Box::new(f));
    }

    /// Called once when the reactor stops, before connections are closed.
    pub fn on_worker_stop(&mut self, f: impl FnMut(&mut Ctx<'_, S>) + 'static) {
        self.handlers.worker_stop = Some(Box::new(f));
    }

    /// Called when a TCP connection is accepted (before any WebSocket handshake), or, for an
    /// outbound worker, when a connection made by [`Io::connect`](crate::Io::connect) is
    /// established.
    pub fn on_connect(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId) + 'static) {
        self.handlers.connect = Some(Box::new(f));
    }

    /// Called for each message the protocol decodes.
    pub fn on_message(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId, Message<'_>) + 'static) {
        self.handlers.message = Some(Box::new(f));
    }

    /// Called exactly once when a connection is gone, whoever closed it.
    pub fn on_close(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId) + 'static) {
        self.handlers.close = Some(Box::new(f));
    }

    /// Called when a connection fails (socket error, bad input, limit); `on_close` follows.
    pub fn on_error(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId, &ConnError) + 'static) {
        self.handlers.error = Some(Box::new(f));
    }

    /// Called when a connection's send buffer reaches `max_send_buffer_size`.
    pub fn on_buffer_full(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId) + 'static) {
        self.handlers.buffer_full = Some(Box::new(f));
    }

    /// Called when a send buffer that was full has been written out completely.
    pub fn on_buffer_drain(&mut self, f: impl FnMut(&mut Ctx<'_, S>, ConnId) + 'static) {
        self.handlers.buffer_drain = Some(Box::new(f));
    }

    /// WebSocket only: sees each valid upgrade request (path, query, headers) and may refuse
    /// it with an HTTP status (Workerman's `onWebSocketConnect`). To refuse it *after* the
    /// upgrade instead, with a WebSocket close code and reason a browser can read (an
    /// expired token, say), call [`Io::close_with`](crate::Io::close_with) here and return
    /// `Ok(())`: the 101 is sent, then the close frame.
    pub fn on_ws_handshake(
        &mut self,
        f: impl FnMut(&mut Ctx<'_, S>, ConnId, &Request) -> std::result::Result<(), Refusal> + 'static,
    ) {
        self.handlers.ws_handshake = Some(Box::new(f));
    }

    /// WebSocket only: answers a plain HTTP request (no `Upgrade`) on the WebSocket port,
    /// e.g. to serve a page. Without it such requests get `400 Bad Request`. The connection
    /// closes after the response.
    pub fn on_http_request(
        &mut self,
        f: impl FnMut(&mut Ctx<'_, S>, ConnId, &Request) -> Response + 'static,
    ) {
        self.handlers.ws_http = Some(Box::new(f));
    }
}

/// Resolves `host:port`, preferring a literal address.
fn resolve(hostport: &str) -> Option<SocketAddr> {
    if let Ok(addr) = hostport.parse() {
        return Some(addr);
    }
    hostport.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        for (addr, protocol) in [
            ("tcp://127.0.0.1:1", Protocol::Tcp),
            ("text://127.0.0.1:2", Protocol::Text),
            ("frame://127.0.0.1:3", Protocol::Frame),
            ("websocket://0.0.0.0:1234", Protocol::WebSocket),
            ("http://[::1]:80", Protocol::Http),
        ] {
            let worker = Worker::<()>::new(addr).unwrap();
            assert_eq!(worker.protocol, protocol);
        }
    }

    #[test]
    fn unknown_scheme_names_the_supported_ones() {
        let err = Worker::<()>::new("udp://127.0.0.1:1").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("udp://") && text.contains("websocket"),
            "{text}"
        );
        assert!(Worker::<()>::new("127.0.0.1:1").is_err());
        assert!(Worker::<()>::new("text://nohostport").is_err());
    }

    #[test]
    fn a_websocket_address_may_name_a_path_others_may_not() {
        let worker = Worker::<()>::new("ws://127.0.0.1:8080/chat?room=1").unwrap();
        assert_eq!(worker.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            worker.ws_target,
            ("127.0.0.1:8080".to_string(), "/chat?room=1".to_string())
        );
        let worker = Worker::<()>::new("ws://localhost:80").unwrap();
        assert_eq!(
            worker.ws_target,
            ("localhost:80".to_string(), "/".to_string())
        );
        assert!(Worker::<()>::new("tcp://127.0.0.1:1/path").is_err());
    }
}

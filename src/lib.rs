//! pushman: a real-time push server and a Workerman-style event-loop library.
//!
//! # Layout
//!
//! ```text
//! codec ──► reactor ──► runtime ──► (server/ crate: the pushman binary)
//!   ▲                                  │
//!   └────────────── push ◄─────────────┘   arrows point from user to used; none points up
//! ```
//!
//! - [`codec`]: sans-IO codecs (text lines, length-prefixed frames, HTTP, WebSocket) and
//!   what a listener speaks ([`Protocol`], [`Limits`]). Bytes in, values and bytes out; they
//!   never touch a socket or a clock, so they are fuzzed and unit-tested alone.
//! - `reactor` (private): mechanism only, generic over nothing the application defines:
//!   one `mio::Poll`, a slab of connections, listeners and accepting (with caps and the
//!   out-of-descriptors pause), reads with a shared buffer pool, writes, the close
//!   lifecycle, deadlines, timers, signals. `WouldBlock` never leaves it.
//! - [`runtime`]: the Workerman-style API over user state `S`: the loop ([`Runtime`]),
//!   [`Io`] (`ctx.io`), [`Worker`] and its callbacks, [`Ctx`], connection types, and
//!   decoding plus dispatch.
//! - [`tls`]: certificates for listeners with TLS ([`TlsConfig`]); the reactor drives a
//!   rustls session per connection between the socket and the codec.
//! - [`push`]: the push server's logic, free of sockets: registry, commands, tokens, the
//!   per-uid inbox.
//! - [`error`]: the crate's error type.
//!
//! The `pushman` binary (browsers, the text and HTTP APIs, heartbeats, scheduled delivery
//! in redb, the pid file, the CLI) is the `server/` crate of this workspace, built on this
//! public API only.
//!
//! # Example
//!
//! ```no_run
//! use pushman::{Message, Worker};
//!
//! let mut ws = Worker::<()>::new("websocket://0.0.0.0:1234")?;
//! ws.on_message(|ctx, conn, msg| {
//!     if let Message::Text(text) = msg {
//!         let _ = ctx.io.send(conn, format!("you said: {text}"));
//!     }
//! });
//! Worker::run_all((), vec![ws])?;
//! # Ok::<(), pushman::Error>(())
//! ```

pub mod codec;
pub mod error;
pub mod push;
mod reactor;
pub mod runtime;
pub mod tls;

pub use codec::{Limits, Protocol, WhenFull};
pub use error::{Error, Result};
pub use reactor::timer::TimerId;
pub use runtime::{
    connection::{ConnError, ConnId, ConnInfo, ConnectError, Message, SendError},
    ctx::Ctx,
    io::{Cursor, Io, Upstream},
    worker::{Reconnect, Refusal, Worker},
    Runtime, StopHandle, DEFAULT_SPIN,
};
pub use tls::{TlsConfig, TlsError};

/// Compiles the README's examples as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

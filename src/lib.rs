//! pushman: a real-time push server and a Workerman-style event-loop library.
//!
//! # Layout
//!
//! ```text
//! codec (pure) ──► reactor (mio) ──► runtime (event loop, callbacks) ──► push (application)
//! ```
//!
//! - [`codec`]: sans-IO codecs (text lines, length-prefixed frames, HTTP, WebSocket). Bytes
//!   in, values and bytes out; they never touch a socket or a clock, so they are fuzzed and
//!   unit-tested alone.
//! - `reactor`: the only code that reads and writes sockets: one `mio::Poll`, a slab of
//!   connections, timers, signals. [`Io`] is its face towards callbacks.
//! - `runtime`: the event loop; [`Runtime`] runs [`Worker`]s and calls their callbacks with
//!   a [`Ctx`].
//! - [`worker`], [`connection`], [`ctx`]: the Workerman-style API.
//! - [`push`]: the push server's logic, free of sockets (registry, commands, tokens).
//!
//! The `pushman` binary (browsers, the text and HTTP APIs, heartbeats, scheduled delivery,
//! the pid file) is the `server/` crate of this workspace, built on this API.
//! - [`error`]: the crate's error type.
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

pub use codec::{Limits, Protocol, WhenFull};
pub use error::{Error, Result};
pub use reactor::timer::TimerId;
pub use runtime::{
    connection::{ConnError, ConnId, ConnInfo, Message, SendError},
    ctx::Ctx,
    io::{Cursor, Io},
    worker::{Refusal, Worker},
    Runtime, StopHandle,
};

/// Compiles the README's examples as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! pushman: a real-time push server and a Workerman-style event-loop library.
//!
//! # Layout
//!
//! ```text
//! codec (pure) ──► reactor (mio) ──► worker (callbacks) ──► push (application)
//! ```
//!
//! - [`codec`]: sans-IO codecs (text lines, length-prefixed frames, HTTP, WebSocket). Bytes
//!   in, values and bytes out; they never touch a socket or a clock, so they are fuzzed and
//!   unit-tested alone.
//! - [`error`]: the crate's error type.

pub mod codec;
pub mod error;

pub use error::{Error, Result};

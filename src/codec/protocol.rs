//! What a listener speaks and the limits its connections live under: chosen by the
//! application, applied by the reactor and the codecs.

use std::time::Duration;

/// The protocols a worker can speak, named by the scheme of its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `tcp://`: raw bytes; each read is one message.
    Tcp,
    /// `text://`: newline-terminated lines (`\r\n` accepted); sends get a `\n`.
    Text,
    /// `frame://`: a 4-byte big-endian total length, then the payload.
    Frame,
    /// `websocket://`: RFC 6455 server.
    WebSocket,
    /// `http://`: HTTP/1.1 requests with `Content-Length` bodies.
    Http,
}

impl Protocol {
    /// The supported schemes, for error messages.
    pub const SCHEMES: &'static str = "tcp, text, frame, websocket, http";

    /// The protocol for `scheme`, if supported.
    pub fn from_scheme(scheme: &str) -> Option<Self> {
        Some(match scheme {
            "tcp" => Self::Tcp,
            "text" => Self::Text,
            "frame" => Self::Frame,
            "websocket" | "ws" => Self::WebSocket,
            "http" => Self::Http,
            _ => return None,
        })
    }

    /// The scheme naming this protocol.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Text => "text",
            Self::Frame => "frame",
            Self::WebSocket => "websocket",
            Self::Http => "http",
        }
    }
}

/// Limits applied to each connection of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted (a line, a frame, a WebSocket message, an HTTP request).
    /// Past it the connection gets an error and is closed (1009 for WebSocket). Workerman's
    /// `maxPackageSize`; default 10 MiB.
    pub max_package_size: usize,
    /// Largest send buffer. Once it is reached `on_buffer_full` fires, and then what
    /// [`Limits::when_full`] says happens. Workerman's `maxSendBufferSize`; default 1 MiB.
    pub max_send_buffer_size: usize,
    /// What a send buffer at `max_send_buffer_size` does; default [`WhenFull::Refuse`].
    pub when_full: WhenFull,
    /// Most connections open at once on this worker; further ones are accepted, get the
    /// worker's [`Worker::refusal`](crate::Worker::refusal) and are closed at once. Default: no cap.
    pub max_connections: usize,
    /// Refuse new connections (as over `max_connections`) while fewer file descriptors
    /// than this remain free under the process's open-files limit (at most half the limit
    /// is reserved), so this worker cannot starve others of descriptors. Default 0: off.
    /// Linux only (it reads `/proc/self`); elsewhere no reserve is kept.
    pub fd_reserve: usize,
    /// A message (line, frame, HTTP request) must arrive whole this soon after its first
    /// byte, or the connection is closed (HTTP: after a `408`); slow-drip defence.
    /// Default: none.
    pub request_timeout: Option<Duration>,
    /// A connection that receives nothing this long, with nothing left to send, is closed.
    /// Default: none.
    pub idle_timeout: Option<Duration>,
}

/// What a connection whose send buffer reached `max_send_buffer_size` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Further sends are refused with [`SendError::BufferFull`](crate::SendError::BufferFull)
    /// until it drains (Workerman). For fan-out, where one slow reader must cost bounded
    /// memory and must not hold anybody up.
    #[default]
    Refuse,
    /// Every send is taken, and the connection's input is not decoded (nor read) until the
    /// buffer has drained below half the limit; the peer's writes then back up in TCP. For
    /// request/reply protocols, where a reply must never be dropped while the connection
    /// stays open. The buffer exceeds the limit by at most the replies to one message;
    /// input already read waits in the connection's read buffer.
    PauseRecv,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_package_size: 10 << 20,
            max_send_buffer_size: 1 << 20,
            when_full: WhenFull::Refuse,
            max_connections: usize::MAX,
            fd_reserve: 0,
            request_timeout: None,
            idle_timeout: None,
        }
    }
}

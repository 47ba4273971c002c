//! The per-connection state machine: frames in, messages out, protocol replies written into a
//! caller-owned buffer.

use super::close::ProtocolError;
use crate::codec::Decode;

/// Where the closing handshake stands (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's. Data frames the peer sent before it saw
    /// ours may still arrive; they are discarded.
    ClosingByUs,
    /// The closing handshake is over, or a protocol error ended the session: decode returns
    /// nothing more, and the caller closes the TCP connection once its output is flushed.
    Closed,
}

/// One decoded step of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message (valid UTF-8, reassembled if it was fragmented).
    Text(&'a str),
    /// A complete binary message (reassembled if it was fragmented).
    Binary(&'a [u8]),
    /// A frame the application need not see was consumed: a ping (its pong is now in `out`),
    /// a pong, a non-final fragment, or a data frame discarded while closing.
    Control,
    /// The peer's close frame. If we had not sent ours, its echo is now in `out`. The state
    /// is [`State::Closed`].
    Close {
        /// The peer's status code, if its close frame had one.
        code: Option<u16>,
        /// The peer's reason text (valid UTF-8; may be empty).
        reason: &'a str,
    },
}

/// Server side of one WebSocket connection after the handshake.
///
/// Memory is kept only for a fragmented message in progress; an idle session holds no buffer.
#[derive(Debug)]
pub struct WsSession {
    state: State,
    /// Largest message (reassembled) or frame accepted, in bytes.
    max_message: usize,
}

impl WsSession {
    /// A session in [`State::Open`] accepting messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        let _ = max_message;
        todo!()
    }

    /// The closing handshake's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Decodes the next step from the front of `src`. The payload is unmasked in place.
    /// Frames the protocol answers by itself (ping → pong, close → close echo) are encoded
    /// into `out`; the caller only flushes `out`.
    ///
    /// In [`State::Closed`] it returns `NeedMore` and consumes nothing.
    ///
    /// # Errors
    /// A [`ProtocolError`] is final: the state becomes [`State::Closed`] and, unless we had
    /// already sent a close frame, `out` holds the close frame with
    /// [`ProtocolError::close_code`].
    pub fn decode<'a>(
        &'a mut self,
        src: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decode<Event<'a>>, ProtocolError> {
        let _ = (src, out, self.max_message);
        todo!()
    }

    /// Starts the closing handshake: encodes a close frame with `code` and `reason` (cut to
    /// fit the 125-byte control payload on a character boundary) into `out`. Does nothing
    /// unless the state is [`State::Open`].
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        let _ = (code, reason, out);
        todo!()
    }
}

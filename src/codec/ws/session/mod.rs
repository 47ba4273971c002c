//! The per-connection state machine: frames in, messages out, protocol replies written into a
//! caller-owned buffer.

use super::close::{CloseCode, ProtocolError};
use super::header::{encode_frame, encode_masked_frame, FrameHeader, OpCode};
use super::mask::apply_mask;
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

/// One WebSocket connection after the handshake: the server side ([`WsSession::new`]), or
/// the client side of an outbound connection ([`WsSession::client`]), which expects
/// unmasked frames and masks its own.
///
/// Memory is kept only for a fragmented message in progress; an idle session holds no buffer.
#[derive(Debug)]
pub struct WsSession {
    state: State,
    /// Largest message (reassembled) or frame accepted, in bytes.
    max_message: usize,
    /// The kind of the fragmented message in progress; `None` between messages, which is
    /// also what tells the next `decode` it may free `buf`.
    message: Option<Kind>,
    /// The payload of the fragmented message so far. After its final fragment it holds the
    /// reassembled message lent out as the event, until the next `decode` frees it.
    buf: Vec<u8>,
    /// How much of `buf` is known to be valid UTF-8, so each text fragment is checked once
    /// (plus at most 3 bytes of a character split across fragments): O(n) per message.
    validated: usize,
    /// The client side: frames in are unmasked, frames out (pongs, closes) masked.
    client: bool,
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// What one frame came to, before the reassembled message (which lives in `self`) is lent out.
enum Step<'s> {
    /// An event borrowing only from the input.
    Event(Event<'s>),
    /// The final fragment arrived: `buf` holds the whole message.
    Reassembled(Kind),
}

/// Longest close reason: 125 bytes of control payload minus the 2-byte code (§5.5, §5.5.1).
const MAX_REASON: usize = 123;

impl WsSession {
    /// A session in [`State::Open`] accepting messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            state: State::Open,
            max_message,
            message: None,
            buf: Vec::new(),
            validated: 0,
            client: false,
        }
    }

    /// The client side of a connection we opened, accepting messages of at most
    /// `max_message` bytes.
    pub fn client(max_message: usize) -> Self {
        Self {
            client: true,
            ..Self::new(max_message)
        }
    }

    /// Whether this is the client side.
    pub fn is_client(&self) -> bool {
        self.client
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
        if self.message.is_none() {
            // The last reassembled message has been seen: give its memory back.
            self.buf = Vec::new();
            self.validated = 0;
        }
        if self.state == State::Closed {
            return Ok(Decode::NeedMore);
        }
        let (step, consumed) = match self.advance(src, out) {
            Ok(Decode::Done { item, consumed }) => (item, consumed),
            Ok(Decode::NeedMore) => return Ok(Decode::NeedMore),
            Err(e) => return Err(self.fail(e, out)),
        };
        let item = match step {
            Step::Event(event) => event,
            Step::Reassembled(Kind::Binary) => Event::Binary(&self.buf),
            // Every fragment was validated as it arrived; this second pass only yields the
            // `&str` without `unsafe`, and cannot fail.
            Step::Reassembled(Kind::Text) => match std::str::from_utf8(&self.buf) {
                Ok(text) => Event::Text(text),
                Err(_) => {
                    fail_close(
                        &mut self.state,
                        self.client,
                        ProtocolError::InvalidUtf8,
                        out,
                    );
                    return Err(ProtocolError::InvalidUtf8);
                }
            },
        };
        Ok(Decode::Done { item, consumed })
    }

    /// Starts the closing handshake: encodes a close frame with `code` and `reason` (cut to
    /// fit the 125-byte control payload on a character boundary) into `out`. Does nothing
    /// unless the state is [`State::Open`].
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        if self.state == State::Open {
            write_close(self.client, Some(code), reason, out);
            self.state = State::ClosingByUs;
            // What the peer still sends is discarded, so a half-received message is too.
            self.drop_message();
        }
    }

    /// Reads one whole frame, if `src` holds it, and applies it to the state.
    fn advance<'s>(
        &mut self,
        src: &'s mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decode<Step<'s>>, ProtocolError> {
        let (header, head_len) = match FrameHeader::parse(src)? {
            Decode::Done { item, consumed } => (item, consumed),
            Decode::NeedMore => return Ok(Decode::NeedMore),
        };
        // "The server MUST close the connection upon receiving a frame that is not masked."
        // "A client MUST close a connection if it detects a masked frame." (§5.1)
        let mask = match (self.client, header.mask) {
            (false, None) => return Err(ProtocolError::UnmaskedFrame),
            (true, Some(_)) => return Err(ProtocolError::MaskedFrame),
            (_, mask) => mask,
        };
        // Everything the header alone can tell is checked before waiting for the payload,
        // so an announced 2^63 - 1 bytes fails now and nothing is ever reserved for it.
        let len = self.check_header(&header)?;
        let end = head_len.checked_add(len).ok_or(ProtocolError::TooBig)?;
        let Some(payload) = src.get_mut(head_len..end) else {
            return Ok(Decode::NeedMore);
        };
        // "A server MUST remove masking for data frames received from a client" (§5.1)
        if let Some(mask) = mask {
            apply_mask(payload, mask);
        }
        let step = self.on_frame(header, payload, out)?;
        Ok(Decode::Done {
            item: step,
            consumed: end,
        })
    }

    /// The size limit and fragment sequencing (§5.4), from the header alone; returns the
    /// payload length.
    fn check_header(&self, header: &FrameHeader) -> Result<usize, ProtocolError> {
        let len = usize::try_from(header.payload_len).map_err(|_| ProtocolError::TooBig)?;
        let total = match (self.state, header.opcode, self.message) {
            // Data the peer sent before it saw our close is discarded, not reassembled.
            (State::ClosingByUs, _, _) => len,
            (_, OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (_, OpCode::Continuation, Some(_)) => self
                .buf
                .len()
                .checked_add(len)
                .ok_or(ProtocolError::TooBig)?,
            (_, OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => len,
        };
        if total > self.max_message {
            return Err(ProtocolError::TooBig);
        }
        Ok(len)
    }

    /// The state-machine transition for one whole, unmasked frame.
    fn on_frame<'s>(
        &mut self,
        header: FrameHeader,
        payload: &'s mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Step<'s>, ProtocolError> {
        let payload: &'s [u8] = payload;
        let event = match (self.state, header.opcode, header.fin) {
            (_, OpCode::Close, _) => {
                let (code, reason) = parse_close(payload)?;
                // "If an endpoint receives a Close frame and did not previously send a Close
                // frame, the endpoint MUST send a Close frame in response. [...] it typically
                // echos the status code it received." (§5.5.1)
                if self.state == State::Open {
                    write_close(self.client, code, "", out);
                }
                self.state = State::Closed;
                self.drop_message();
                Event::Close { code, reason }
            }
            // "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response
            // [...] The Pong frame sent in response to a Ping frame must have identical
            // "Application data"" (§5.5.2, §5.5.3)
            (State::Open, OpCode::Ping, _) => {
                encode(self.client, OpCode::Pong, payload, out);
                Event::Control
            }
            (_, OpCode::Ping | OpCode::Pong, _) | (State::ClosingByUs, _, _) => Event::Control,
            (_, OpCode::Text, true) => Event::Text(utf8(payload)?),
            (_, OpCode::Binary, true) => Event::Binary(payload),
            (_, OpCode::Text | OpCode::Binary, false) => {
                let kind = if header.opcode == OpCode::Text {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                self.message = Some(kind);
                self.extend(payload, false)?;
                Event::Control
            }
            (_, OpCode::Continuation, fin) => {
                self.extend(payload, fin)?;
                if let (true, Some(kind)) = (fin, self.message) {
                    self.message = None;
                    return Ok(Step::Reassembled(kind));
                }
                Event::Control
            }
        };
        Ok(Step::Event(event))
    }

    /// Appends a fragment to the message in progress; a text message's new bytes are
    /// validated now, so bad UTF-8 fails on the fragment where it becomes certain.
    fn extend(&mut self, payload: &[u8], fin: bool) -> Result<(), ProtocolError> {
        self.buf.extend_from_slice(payload);
        if self.message != Some(Kind::Text) {
            return Ok(());
        }
        let tail = self.buf.get(self.validated..).unwrap_or_default();
        match std::str::from_utf8(tail) {
            Ok(_) => self.validated = self.buf.len(),
            // A character cut at the end of a non-final fragment may still be completed.
            Err(e) if e.error_len().is_none() && !fin => self.validated += e.valid_up_to(),
            Err(_) => return Err(ProtocolError::InvalidUtf8),
        }
        Ok(())
    }

    /// Forgets the fragmented message in progress and frees its memory.
    fn drop_message(&mut self) {
        self.message = None;
        self.buf = Vec::new();
        self.validated = 0;
    }

    /// Ends the session for `e`: a close frame if we had not sent one, then `Closed`.
    fn fail(&mut self, e: ProtocolError, out: &mut Vec<u8>) -> ProtocolError {
        fail_close(&mut self.state, self.client, e, out);
        self.drop_message();
        e
    }
}

/// Writes the close frame for `e` unless one was already sent, and moves to `Closed`.
/// Takes the state alone so it can run while the session's buffer is lent out.
fn fail_close(state: &mut State, client: bool, e: ProtocolError, out: &mut Vec<u8>) {
    if *state == State::Open {
        // "_Fail the WebSocket Connection_ [...] the endpoint MAY send a Close frame with an
        // appropriate status code" (§7.1.7)
        write_close(client, Some(e.close_code().0), &e.to_string(), out);
    }
    *state = State::Closed;
}

/// `payload` as text. "When an endpoint is to interpret a byte stream as UTF-8 but finds that
/// the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the
/// WebSocket Connection_." (§8.1)
fn utf8(payload: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)
}

/// Splits a close payload into its code and reason (§5.5.1).
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), ProtocolError> {
    match *payload {
        [] => Ok((None, "")),
        // "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
        // integer (in network byte order) representing a status code" (§5.5.1)
        [_] => Err(ProtocolError::CloseTooShort),
        [hi, lo, ref reason @ ..] => {
            let code = u16::from_be_bytes([hi, lo]);
            if !CloseCode(code).is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            Ok((Some(code), utf8(reason)?))
        }
    }
}

/// Appends a close frame: `code` in network byte order, then `reason` cut to
/// [`MAX_REASON`] bytes on a character boundary; no code means an empty payload.
fn write_close(client: bool, code: Option<u16>, reason: &str, out: &mut Vec<u8>) {
    let mut payload = [0u8; 2 + MAX_REASON];
    let len = match code {
        None => 0,
        Some(code) => {
            let reason = cut(reason, MAX_REASON).as_bytes();
            payload[..2].copy_from_slice(&code.to_be_bytes());
            payload[2..2 + reason.len()].copy_from_slice(reason);
            2 + reason.len()
        }
    };
    encode(client, OpCode::Close, &payload[..len], out);
}

/// Appends one frame as this side sends it: masked with a fresh key by a client (§5.3),
/// plain by a server.
fn encode(client: bool, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    if client {
        encode_masked_frame(opcode, payload, super::client::masking_key(), out);
    } else {
        encode_frame(opcode, payload, out);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;

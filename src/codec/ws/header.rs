//! Frame headers (RFC 6455 §5.2): parsing what clients send, encoding what the server sends.

use super::close::ProtocolError;
use crate::codec::Decode;

/// Longest header a server frame needs: 2 bytes plus a 64-bit length (servers never mask).
pub const MAX_SERVER_HEADER: usize = 10;

/// Frame opcodes (RFC 6455 §5.2); the others are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: a text message (UTF-8).
    Text,
    /// `0x2`: a binary message.
    Binary,
    /// `0x8`: starts or answers the closing handshake.
    Close,
    /// `0x9`: a ping, to be answered with a pong.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl OpCode {
    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        todo!()
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final fragment of its message.
    pub fin: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key; every client frame must have one (RFC 6455 §5.1).
    pub mask: Option<[u8; 4]>,
    /// The payload length as announced (high bit checked to be zero).
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the front of `src`; `consumed` is the header's length (2 to 14).
    ///
    /// # Errors
    /// [`ProtocolError`] for reserved bits (no extension is negotiated), reserved opcodes,
    /// a 64-bit length with its high bit set, and control frames that are fragmented or
    /// longer than 125 bytes.
    pub fn parse(src: &[u8]) -> Result<Decode<FrameHeader>, ProtocolError> {
        let _ = src;
        todo!()
    }
}

/// Encodes an unmasked server frame header into `buf`; returns its length (2, 4 or 10).
pub fn encode_header(
    fin: bool,
    opcode: OpCode,
    payload_len: usize,
    buf: &mut [u8; MAX_SERVER_HEADER],
) -> usize {
    let _ = (fin, opcode, payload_len, buf);
    todo!()
}

/// Appends a complete unmasked, unfragmented server frame to `out`.
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    let _ = (opcode, payload, out);
    todo!()
}

//! Close codes (RFC 6455 §7.4) and the protocol violations that end a session.

use std::fmt;

/// A close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the server is going down.
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: Self = Self(1003);
    /// 1007: a text message was not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL: Self = Self(1011);

    /// Whether a peer may send this code in a close frame (RFC 6455 §7.4.1 and §7.4.2):
    /// 1000–1003, 1007–1014, and 3000–4999. 1004–1006 and 1015 are reserved and must never
    /// appear on the wire.
    pub fn is_allowed_on_wire(self) -> bool {
        todo!()
    }
}

/// A violation of RFC 6455 by the peer. Final for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// RSV1–3 must be 0 unless an extension defines them (§5.2); none is negotiated.
    ReservedBits,
    /// Opcodes 0x3–0x7 and 0xB–0xF are reserved (§5.2).
    ReservedOpcode(u8),
    /// A client must mask every frame it sends (§5.1).
    UnmaskedFrame,
    /// The most significant bit of a 64-bit length must be 0 (§5.2).
    LengthHighBit,
    /// Control frames must not be fragmented (§5.5).
    FragmentedControl,
    /// Control frames carry at most 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A continuation frame arrived with no fragmented message in progress (§5.4).
    UnexpectedContinuation,
    /// A new data frame arrived while a fragmented message was in progress (§5.4).
    ExpectedContinuation,
    /// Text messages and close reasons must be valid UTF-8 (§5.6, §8.1).
    InvalidUtf8,
    /// A close frame's payload is 1 byte, too short for a status code (§5.5.1).
    CloseTooShort,
    /// A close frame carried a code that must not appear on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A message or frame is larger than the configured limit.
    TooBig,
}

impl ProtocolError {
    /// The close code RFC 6455 §7.4.1 prescribes for this violation: 1007 for bad UTF-8,
    /// 1009 for a message too big, 1002 for everything else.
    pub fn close_code(self) -> CloseCode {
        todo!()
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::error::Error for ProtocolError {}

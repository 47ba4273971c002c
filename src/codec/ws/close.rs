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
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
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
    /// A server must not mask any frame it sends (§5.1).
    MaskedFrame,
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
        match self {
            // "1007 indicates that an endpoint is terminating the connection because it has
            // received data within a message that was not consistent with the type of the
            // message (e.g., non-UTF-8 [RFC3629] data within a text message)."
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            // "1009 indicates that an endpoint is terminating the connection because it has
            // received a message that is too big for it to process."
            Self::TooBig => CloseCode::TOO_BIG,
            // "1002 indicates that an endpoint is terminating the connection due to a
            // protocol error."
            _ => CloseCode::PROTOCOL,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ReservedBits => f.write_str("reserved bits set without an extension"),
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::UnmaskedFrame => f.write_str("client frame not masked"),
            Self::MaskedFrame => f.write_str("server frame masked"),
            Self::LengthHighBit => f.write_str("64-bit length has its high bit set"),
            Self::FragmentedControl => f.write_str("control frame is fragmented"),
            Self::ControlTooLong => f.write_str("control frame longer than 125 bytes"),
            Self::UnexpectedContinuation => f.write_str("continuation with no message in progress"),
            Self::ExpectedContinuation => {
                f.write_str("new message while a fragmented one is in progress")
            }
            Self::InvalidUtf8 => f.write_str("invalid utf-8 in text or close reason"),
            Self::CloseTooShort => f.write_str("close payload of 1 byte"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} not allowed on the wire"),
            Self::TooBig => f.write_str("message too big"),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4000, 4999,
        ] {
            assert!(CloseCode(code).is_allowed_on_wire(), "{code}");
        }
        for code in [
            0,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ] {
            assert!(!CloseCode(code).is_allowed_on_wire(), "{code}");
        }
    }

    #[test]
    fn close_code_mapping() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode(1007));
        assert_eq!(ProtocolError::TooBig.close_code(), CloseCode(1009));
        assert_eq!(ProtocolError::UnmaskedFrame.close_code(), CloseCode(1002));
        assert_eq!(
            ProtocolError::ReservedOpcode(3).close_code(),
            CloseCode(1002)
        );
        assert_eq!(
            ProtocolError::InvalidCloseCode(1005).close_code(),
            CloseCode(1002)
        );
    }

    #[test]
    fn display_is_short_and_fits_a_close_reason() {
        let all = [
            ProtocolError::ReservedBits,
            ProtocolError::ReservedOpcode(0xf),
            ProtocolError::UnmaskedFrame,
            ProtocolError::MaskedFrame,
            ProtocolError::LengthHighBit,
            ProtocolError::FragmentedControl,
            ProtocolError::ControlTooLong,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::InvalidUtf8,
            ProtocolError::CloseTooShort,
            ProtocolError::InvalidCloseCode(u16::MAX),
            ProtocolError::TooBig,
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && s.len() <= 123, "{s}");
            assert!(!s.ends_with('.'), "{s}");
        }
        assert_eq!(
            ProtocolError::ReservedOpcode(3).to_string(),
            "reserved opcode 0x3"
        );
    }
}

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
        // "Control frames are identified by opcodes where the most significant bit of the
        // opcode is 1." (§5.5)
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// The opcode's 4 bits on the wire.
    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// The opcode for 4 wire bits; `None` for the reserved ones.
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
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
        let [b0, b1, ..] = *src else {
            return Ok(Decode::NeedMore);
        };
        // "RSV1, RSV2, RSV3: 1 bit each. MUST be 0 unless an extension is negotiated that
        // defines meanings for non-zero values." (§5.2)
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let fin = b0 & 0x80 != 0;
        let op_bits = b0 & 0x0F;
        // "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket
        // Connection_." (§5.2)
        let opcode = OpCode::from_bits(op_bits).ok_or(ProtocolError::ReservedOpcode(op_bits))?;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            // "All control frames MUST have a payload length of 125 bytes or less and MUST
            // NOT be fragmented." (§5.5)
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if len7 > 125 {
                return Err(ProtocolError::ControlTooLong);
            }
        }
        let (payload_len, len_end) = match len7 {
            126 => match src.get(2..4) {
                Some(&[hi, lo]) => (u64::from(u16::from_be_bytes([hi, lo])), 4),
                _ => return Ok(Decode::NeedMore),
            },
            127 => {
                let Some(bytes) = src.get(2..10) else {
                    return Ok(Decode::NeedMore);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                // "If 127, the following 8 bytes interpreted as a 64-bit unsigned integer
                // (the most significant bit MUST be 0) are the payload length." (§5.2)
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthHighBit);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let (mask, consumed) = if b1 & 0x80 == 0 {
            (None, len_end)
        } else {
            let Some(&[k0, k1, k2, k3]) = src.get(len_end..len_end + 4) else {
                return Ok(Decode::NeedMore);
            };
            (Some([k0, k1, k2, k3]), len_end + 4)
        };
        let item = FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
        };
        Ok(Decode::Done { item, consumed })
    }
}

/// Encodes an unmasked server frame header into `buf`; returns its length (2, 4 or 10).
pub fn encode_header(
    fin: bool,
    opcode: OpCode,
    payload_len: usize,
    buf: &mut [u8; MAX_SERVER_HEADER],
) -> usize {
    buf[0] = (u8::from(fin) << 7) | opcode.bits();
    // "The length of the "Payload data", in bytes: if 0-125, that is the payload length. If
    // 126, the following 2 bytes interpreted as a 16-bit unsigned integer are the payload
    // length. If 127, the following 8 bytes [...]" (§5.2). Bit 7 (MASK) stays 0: "A server
    // MUST NOT mask any frames that it sends to the client." (§5.1)
    if let Ok(len7 @ 0..=125) = u8::try_from(payload_len) {
        buf[1] = len7;
        2
    } else if let Ok(len16) = u16::try_from(payload_len) {
        buf[1] = 126;
        buf[2..4].copy_from_slice(&len16.to_be_bytes());
        4
    } else {
        buf[1] = 127;
        buf[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    }
}

/// Appends a complete unmasked, unfragmented server frame to `out`.
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    let mut head = [0u8; MAX_SERVER_HEADER];
    let n = encode_header(true, opcode, payload.len(), &mut head);
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// Appends a complete masked, unfragmented client frame to `out`: the header with the MASK
/// bit and `mask`, then the payload XORed with it (§5.3).
pub fn encode_masked_frame(opcode: OpCode, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let mut head = [0u8; MAX_SERVER_HEADER];
    let n = encode_header(true, opcode, payload.len(), &mut head);
    head[1] |= 0x80;
    out.reserve(n + 4 + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    super::mask::apply_mask(&mut out[start..], mask);
}

#[cfg(test)]
mod tests;

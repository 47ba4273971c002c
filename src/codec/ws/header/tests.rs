//! Unit tests for frame header parsing and encoding.

use super::*;

fn done(src: &[u8]) -> (FrameHeader, usize) {
    match FrameHeader::parse(src) {
        Ok(Decode::Done { item, consumed }) => (item, consumed),
        other => panic!("expected a header, got {other:?}"),
    }
}

#[test]
fn rfc_unmasked_hello_parses() {
    // RFC 6455 §5.7: a single-frame unmasked text message.
    let (h, n) = done(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(n, 2);
    assert_eq!(
        h,
        FrameHeader {
            fin: true,
            opcode: OpCode::Text,
            mask: None,
            payload_len: 5
        }
    );
}

#[test]
fn rfc_masked_hello_parses() {
    let (h, n) = done(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    assert_eq!(n, 6);
    assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    assert_eq!(h.payload_len, 5);
}

#[test]
fn rfc_fragmented_and_ping() {
    let (h, _) = done(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
    assert_eq!((h.fin, h.opcode, h.payload_len), (false, OpCode::Text, 3));
    let (h, _) = done(&[0x80, 0x02, 0x6c, 0x6f]);
    assert_eq!(
        (h.fin, h.opcode, h.payload_len),
        (true, OpCode::Continuation, 2)
    );
    let (h, _) = done(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!((h.opcode, h.payload_len), (OpCode::Ping, 5));
}

#[test]
fn rfc_extended_lengths() {
    // 256 bytes binary in a single unmasked message: 0x82 0x7E 0x0100.
    let (h, n) = done(&[0x82, 0x7E, 0x01, 0x00]);
    assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
    // 64 KiB: 0x82 0x7F 0x0000000000010000.
    let (h, n) = done(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!((h.payload_len, n), (65536, 10));
    let (h, n) = done(&[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]);
    assert_eq!((h.payload_len, n, h.mask), (65536, 14, Some([1, 2, 3, 4])));
}

#[test]
fn every_prefix_needs_more() {
    let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
    for i in 0..full.len() {
        assert_eq!(
            FrameHeader::parse(&full[..i]),
            Ok(Decode::NeedMore),
            "prefix {i}"
        );
    }
    let short = [0x81, 0xFE, 0x01, 0x00, 9, 9, 9, 9];
    for i in 0..short.len() {
        assert_eq!(
            FrameHeader::parse(&short[..i]),
            Ok(Decode::NeedMore),
            "prefix {i}"
        );
    }
}

#[test]
fn errors() {
    use ProtocolError::*;
    assert_eq!(FrameHeader::parse(&[0xC1, 0x80]), Err(ReservedBits));
    assert_eq!(FrameHeader::parse(&[0x91, 0x80]), Err(ReservedBits));
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        assert_eq!(
            FrameHeader::parse(&[0x80 | op, 0x80]),
            Err(ReservedOpcode(op))
        );
    }
    assert_eq!(FrameHeader::parse(&[0x09, 0x80]), Err(FragmentedControl));
    assert_eq!(FrameHeader::parse(&[0x88, 0xFE]), Err(ControlTooLong));
    assert_eq!(FrameHeader::parse(&[0x8A, 0xFF]), Err(ControlTooLong));
    let high = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(FrameHeader::parse(&high), Err(LengthHighBit));
}

#[test]
fn control_with_125_bytes_is_fine() {
    let (h, _) = done(&[0x89, 0x80 | 125, 0, 0, 0, 0]);
    assert_eq!(h.payload_len, 125);
}

#[test]
fn encode_lengths() {
    let mut buf = [0u8; MAX_SERVER_HEADER];
    assert_eq!(encode_header(true, OpCode::Text, 5, &mut buf), 2);
    assert_eq!(&buf[..2], &[0x81, 0x05]);
    assert_eq!(encode_header(true, OpCode::Binary, 125, &mut buf), 2);
    assert_eq!(&buf[..2], &[0x82, 125]);
    assert_eq!(encode_header(true, OpCode::Binary, 256, &mut buf), 4);
    assert_eq!(&buf[..4], &[0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(encode_header(true, OpCode::Binary, 65535, &mut buf), 4);
    assert_eq!(&buf[..4], &[0x82, 0x7E, 0xFF, 0xFF]);
    assert_eq!(encode_header(true, OpCode::Binary, 65536, &mut buf), 10);
    assert_eq!(&buf[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(encode_header(false, OpCode::Continuation, 0, &mut buf), 2);
    assert_eq!(&buf[..2], &[0x00, 0x00]);
}

#[test]
fn encode_frame_matches_rfc_and_round_trips() {
    let mut out = Vec::new();
    encode_frame(OpCode::Text, b"Hello", &mut out);
    assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    out.clear();
    encode_frame(OpCode::Pong, b"Hello", &mut out);
    assert_eq!(out, [0x8A, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
        out.clear();
        encode_frame(OpCode::Binary, &vec![7; len], &mut out);
        let (h, n) = done(&out);
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len),
            (true, OpCode::Binary, None, len as u64)
        );
        assert_eq!(out.len(), n + len);
    }
}

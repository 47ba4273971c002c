//! Test helpers: client frames built from server encodings, and a driver that feeds a
//! session in chunks and records owned events.

use super::header::{encode_frame, encode_header, FrameHeader, OpCode, MAX_SERVER_HEADER};
use super::mask::apply_mask;
use super::{Event, ProtocolError, WsSession};
use crate::codec::Decode;

/// The masking key of the RFC 6455 §5.7 examples.
pub(super) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Turns a server-encoded (unmasked) frame into the client frame a browser would send.
pub(super) fn client(server_frame: &[u8]) -> Vec<u8> {
    let Ok(Decode::Done { item, consumed }) = FrameHeader::parse(server_frame) else {
        panic!("not a whole frame: {server_frame:?}");
    };
    assert_eq!(item.mask, None);
    let mut out = vec![server_frame[0], server_frame[1] | 0x80];
    out.extend_from_slice(&server_frame[2..consumed]);
    out.extend_from_slice(&KEY);
    let mut payload = server_frame[consumed..].to_vec();
    apply_mask(&mut payload, KEY);
    out.extend_from_slice(&payload);
    out
}

/// A masked client frame, possibly a fragment.
pub(super) fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut head = [0u8; MAX_SERVER_HEADER];
    let n = encode_header(fin, opcode, payload.len(), &mut head);
    let mut server = head[..n].to_vec();
    server.extend_from_slice(payload);
    client(&server)
}

/// A server frame, as `out` should hold it.
pub(super) fn server(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(opcode, payload, &mut out);
    out
}

/// An owned [`Event`], so results outlive the buffers they borrowed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Control,
    Close(Option<u16>, String),
}

impl From<Event<'_>> for Ev {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Text(t) => Self::Text(t.to_owned()),
            Event::Binary(b) => Self::Binary(b.to_vec()),
            Event::Control => Self::Control,
            Event::Close { code, reason } => Self::Close(code, reason.to_owned()),
        }
    }
}

/// What a session made of a whole stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) events: Vec<Ev>,
    pub(super) out: Vec<u8>,
    pub(super) error: Option<ProtocolError>,
    /// Bytes never consumed.
    pub(super) left: usize,
}

/// Feeds `stream` to `ws` `chunk` bytes at a time, draining what each call consumes,
/// the way the reactor does.
pub(super) fn feed(ws: &mut WsSession, stream: &[u8], chunk: usize) -> Run {
    let (mut buf, mut out, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let len = buf.len();
            match ws.decode(&mut buf, &mut out) {
                Ok(Decode::Done { item, consumed }) => {
                    assert!(
                        consumed >= 1 && consumed <= len,
                        "consumed {consumed} of {len}"
                    );
                    events.push(Ev::from(item));
                    buf.drain(..consumed);
                }
                Ok(Decode::NeedMore) => break,
                Err(e) => {
                    return Run {
                        events,
                        out,
                        error: Some(e),
                        left: buf.len(),
                    }
                }
            }
        }
    }
    Run {
        events,
        out,
        error: None,
        left: buf.len(),
    }
}

/// Feeds `stream` whole to a fresh session with a 1 MiB limit.
pub(super) fn feed_new(stream: &[u8]) -> Run {
    feed(&mut WsSession::new(1 << 20), stream, usize::MAX)
}

/// The close frame a protocol error with `code` writes, reason included.
pub(super) fn error_close(e: ProtocolError) -> Vec<u8> {
    let mut payload = e.close_code().0.to_be_bytes().to_vec();
    payload.extend_from_slice(e.to_string().as_bytes());
    server(OpCode::Close, &payload)
}

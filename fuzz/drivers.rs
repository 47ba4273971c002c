//! Fuzz drivers: one function per target, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the stable seed replay (`tests/fuzz_seeds.rs`), so a crash
//! the fuzzer finds stays fixed without nightly.
//!
//! Each driver asserts invariants, not just "no panic": every `Done` consumes between 1 and
//! the buffer's length, and decoding the input whole gives the same items and error as
//! decoding it in chunks whose sizes come from the input's first byte.

// Each fuzz target uses one driver; the replay test uses them all.
#![allow(dead_code, unreachable_pub)]

use pushman::codec::frame::{self, FrameCodec};
use pushman::codec::http::{HttpCodec, Request};
use pushman::codec::resp::{self, RespDecoder, RespLimits, Value};
use pushman::codec::text::{self, TextCodec};
use pushman::codec::ws::{client::ClientHandshake, handshake, Event, State, WsSession};
use pushman::codec::Decode;
use std::fmt::Debug;

/// What one decode step produced: an item and the bytes it used, or `None` for `NeedMore`.
type Step<T, E> = Result<Option<(T, usize)>, E>;

/// Chunk sizes in 1..=16 from a xorshift seeded by the input's first byte.
fn chunk_sizes(data: &[u8]) -> impl Iterator<Item = usize> {
    let mut x = u32::from(data.first().copied().unwrap_or(0)) | 0x100;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        Some(1 + (x % 16) as usize)
    })
}

/// Feeds `data` to `step` in pieces of `sizes`, as a reactor would: append, then decode and
/// drain until `NeedMore`. Stops at the first error.
fn feed<D, T, E>(
    data: &[u8],
    mut sizes: impl Iterator<Item = usize>,
    dec: &mut D,
    step: &impl Fn(&mut D, &mut [u8]) -> Step<T, E>,
) -> (Vec<T>, Option<E>) {
    let (mut buf, mut items, mut rest) = (Vec::new(), Vec::new(), data);
    loop {
        loop {
            match step(dec, &mut buf) {
                Ok(Some((item, consumed))) => {
                    assert!(
                        consumed > 0 && consumed <= buf.len(),
                        "consumed {consumed} of {}",
                        buf.len()
                    );
                    buf.drain(..consumed);
                    items.push(item);
                }
                Ok(None) => break,
                Err(e) => return (items, Some(e)),
            }
        }
        if rest.is_empty() {
            return (items, None);
        }
        let n = sizes.next().unwrap_or(usize::MAX).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

/// Decodes `data` whole and in chunks with fresh decoders from `make`; asserts both give the
/// same outcome and returns it with both decoders.
fn whole_vs_chunked<D, T: PartialEq + Debug, E: PartialEq + Debug>(
    data: &[u8],
    make: impl Fn() -> D,
    step: impl Fn(&mut D, &mut [u8]) -> Step<T, E>,
) -> ((Vec<T>, Option<E>), D, D) {
    let (mut whole_dec, mut chunked_dec) = (make(), make());
    let whole = feed(data, std::iter::repeat(usize::MAX), &mut whole_dec, &step);
    let chunked = feed(data, chunk_sizes(data), &mut chunked_dec, &step);
    assert_eq!(whole, chunked, "whole vs chunked");
    (whole, whole_dec, chunked_dec)
}

/// Turns a decoder result into a [`Step`], copying the item out of the buffer.
fn own<T, U, E>(r: Result<Decode<T>, E>, f: impl FnOnce(T) -> U) -> Step<U, E> {
    r.map(|d| match d {
        Decode::Done { item, consumed } => Some((f(item), consumed)),
        Decode::NeedMore => None,
    })
}

/// Text lines: limit honoured, no `\n` inside, and encode → decode round-trips.
pub fn text(data: &[u8]) {
    const MAX: usize = 32;
    let step = |c: &mut TextCodec, buf: &mut [u8]| own(c.decode(buf), <[u8]>::to_vec);
    let ((lines, _), ..) = whole_vs_chunked(data, || TextCodec::new(MAX), step);
    for line in lines {
        assert!(line.len() <= MAX && !line.contains(&b'\n'));
        if line.last() != Some(&b'\r') {
            let mut out = Vec::new();
            text::encode(&line, &mut out);
            let again = TextCodec::new(MAX).decode(&out);
            assert_eq!(
                again,
                Ok(Decode::Done {
                    item: &line[..],
                    consumed: out.len()
                })
            );
        }
    }
}

/// Length-prefixed frames: limit honoured and encode → decode round-trips.
pub fn frame(data: &[u8]) {
    const MAX: usize = 64;
    let step = |c: &mut FrameCodec, buf: &mut [u8]| own(c.decode(buf), <[u8]>::to_vec);
    let ((payloads, _), ..) = whole_vs_chunked(data, || FrameCodec::new(MAX), step);
    for payload in payloads {
        let mut out = Vec::new();
        frame::encode(&payload, &mut out).expect("a small payload always encodes");
        let again = FrameCodec::new(MAX).decode(&out);
        assert_eq!(
            again,
            Ok(Decode::Done {
                item: &payload[..],
                consumed: out.len()
            })
        );
    }
}

/// HTTP requests with small limits: the body is what `Content-Length` announced.
pub fn http(data: &[u8]) {
    const MAX_BODY: usize = 64;
    let step = |c: &mut HttpCodec, buf: &mut [u8]| own(c.decode(buf), |r| r);
    let ((reqs, _), ..) = whole_vs_chunked(data, || HttpCodec::new(512, MAX_BODY), step);
    for req in reqs {
        let announced = req.header("content-length").map_or(Ok(0), |v| {
            std::str::from_utf8(v)
                .map_err(drop)?
                .trim()
                .parse::<usize>()
                .map_err(drop)
        });
        assert_eq!(announced, Ok(req.body.len()));
        assert!(req.body.len() <= MAX_BODY && !req.method.is_empty());
        let _ = (
            req.path(),
            req.query(),
            req.query_param("uid"),
            req.keep_alive(),
        );
    }
}

/// WebSocket upgrade heads: validation either yields a 28-byte accept key and a 101, or a
/// refusal with 400 or 426.
pub fn ws_handshake(data: &[u8]) {
    let step = |c: &mut HttpCodec, buf: &mut [u8]| own(c.decode_head(buf), |r: Request| r);
    let ((reqs, _), ..) = whole_vs_chunked(data, || HttpCodec::new(1024, 0), step);
    for req in reqs {
        let mut out = Vec::new();
        match handshake::validate(&req) {
            Ok(accept) => {
                assert_eq!(accept.len(), 28);
                handshake::write_accept(&accept, &[], &mut out);
                assert!(out.starts_with(b"HTTP/1.1 101 ") && out.ends_with(b"\r\n\r\n"));
            }
            Err(e) => {
                assert!(matches!(e.status(), 400 | 426), "{e}");
                handshake::write_refusal(e.status(), &e.to_string(), &mut out);
                assert!(out.starts_with(b"HTTP/1.1 4"));
            }
        }
    }
    // The same bytes as a server's answer to our upgrade: a verdict or a wait, whatever
    // the split; a 101 is accepted only with the right Sec-WebSocket-Accept.
    let client = ClientHandshake::new(*b"the sample nonce");
    let whole = client.decode_response(data);
    if let Ok(Decode::Done { consumed, .. }) = whole {
        assert!(consumed <= data.len());
        let head = String::from_utf8_lossy(&data[..consumed]);
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    }
    for cut in 0..data.len().min(64) {
        if let Ok(Decode::Done { .. }) = client.decode_response(&data[..cut]) {
            assert!(whole.is_ok(), "a prefix accepted, the whole refused");
        }
    }
}

/// An [`Event`] copied out of the buffer it borrows.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Control,
    Close(Option<u16>, String),
}

/// Client frames into a session: after an error or a close the session is `Closed`, and the
/// bytes it wrote back (pongs, close echoes) do not depend on how the input was split.
pub fn ws_frames(data: &[u8]) {
    let step = |(ws, out): &mut (WsSession, Vec<u8>), buf: &mut [u8]| {
        let step = own(ws.decode(buf, out), |e| match e {
            Event::Text(s) => Owned::Text(s.to_owned()),
            Event::Binary(b) => Owned::Binary(b.to_vec()),
            Event::Control => Owned::Control,
            Event::Close { code, reason } => Owned::Close(code, reason.to_owned()),
        });
        if matches!(step, Err(_) | Ok(Some((Owned::Close(..), _)))) {
            assert_eq!(ws.state(), State::Closed);
        }
        step
    };
    let (_, whole, chunked) =
        whole_vs_chunked(data, || (WsSession::new(1 << 20), Vec::new()), step);
    assert_eq!(whole.1, chunked.1, "bytes written back");
    assert_eq!(whole.0.state(), chunked.0.state());
    // The client side reads the same bytes as a server's frames: the same invariants,
    // except that what it writes back is masked with fresh keys (so only its size is
    // the same).
    let (_, whole, chunked) =
        whole_vs_chunked(data, || (WsSession::client(1 << 20), Vec::new()), step);
    assert_eq!(whole.1.len(), chunked.1.len(), "bytes written back");
    assert_eq!(whole.0.state(), chunked.0.state());
}

/// RESP replies with small limits: nesting and sizes within them, and every decoded
/// array of bulk strings re-encodes as a command that decodes back to itself.
pub fn resp(data: &[u8]) {
    let limits = RespLimits {
        max_bulk: 64,
        max_elements: 16,
        max_depth: 4,
        max_line: 32,
    };
    let step = |d: &mut RespDecoder, buf: &mut [u8]| own(d.decode(buf), |v| v);
    let ((values, _), ..) = whole_vs_chunked(data, || RespDecoder::new(limits), step);
    for value in values {
        assert!(depth(&value) <= limits.max_depth + 1);
        let Value::Array(items) = &value else {
            continue;
        };
        let args: Option<Vec<&[u8]>> = items
            .iter()
            .map(|v| match v {
                Value::Bulk(b) => Some(&b[..]),
                _ => None,
            })
            .collect();
        if let Some(args) = args {
            let mut out = Vec::new();
            resp::encode_command(&args, &mut out);
            let again = RespDecoder::new(limits).decode(&out);
            assert_eq!(
                again,
                Ok(Decode::Done {
                    item: value.clone(),
                    consumed: out.len()
                })
            );
        }
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

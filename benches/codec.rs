//! Codec micro-benchmarks over in-memory buffers: no sockets, no allocator in the hot loop
//! where the codec allows it. Prints MB/s and messages/s for each case.
//!
//! ```text
//! cargo bench --bench codec
//! ```

use pushman::codec::{
    http::HttpCodec,
    text::TextCodec,
    ws::{handshake, header, OpCode, WsSession},
    Decode,
};
use std::{
    hint::black_box,
    time::{Duration, Instant},
};

/// How long each case runs (after one warm-up pass of the same length / 4).
const RUN: Duration = Duration::from_millis(700);

fn main() {
    println!("{:<40} {:>12} {:>14}", "case", "MB/s", "msgs/s");
    for size in [16, 1024, 64 << 10] {
        ws_decode(size);
    }
    for size in [16, 1024, 64 << 10] {
        ws_encode(size);
    }
    text_decode(64);
    text_decode(1024);
    http_head();
    ws_handshake();
}

/// Runs `batch` (which handles `msgs` messages of `bytes` bytes in total) until `RUN` is up.
fn measure(name: &str, msgs: u64, bytes: u64, mut batch: impl FnMut()) {
    let warm = Instant::now();
    while warm.elapsed() < RUN / 4 {
        batch();
    }
    let (start, mut rounds) = (Instant::now(), 0u64);
    while start.elapsed() < RUN {
        batch();
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (bytes * rounds) as f64 / secs / 1e6;
    let rate = (msgs * rounds) as f64 / secs;
    println!("{name:<40} {mb:>12.1} {rate:>14.0}");
}

/// A masked, final client text frame carrying `payload`.
fn client_frame(payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x81);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// `WsSession::decode` of masked client frames (unmask in place + UTF-8 check).
fn ws_decode(size: usize) {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let count = ((256 << 10) / (size + 14)).max(4);
    let mut wire = Vec::new();
    for i in 0..count {
        client_frame(
            &payload,
            (i as u32).wrapping_mul(0x9E37_79B1).to_be_bytes(),
            &mut wire,
        );
    }
    let mut buf = wire.clone();
    let mut out = Vec::new();
    let mut session = WsSession::new(1 << 20);
    measure(
        &format!("ws decode {size} B (masked)"),
        count as u64,
        wire.len() as u64,
        || {
            // Decoding unmasks in place: restore the masked bytes each round.
            buf.copy_from_slice(&wire);
            let mut at = 0;
            while let Ok(Decode::Done { item, consumed }) = session.decode(&mut buf[at..], &mut out)
            {
                black_box(item);
                at += consumed;
            }
            assert_eq!(at, wire.len());
        },
    );
}

/// `encode_header` alone and `encode_frame` (header + payload copy) of server frames.
fn ws_encode(size: usize) {
    let payload = vec![b'x'; size];
    let count = ((256 << 10) / (size + 10)).max(4) as u64;
    let total = count * size as u64;
    let mut head = [0u8; header::MAX_SERVER_HEADER];
    measure(&format!("ws encode_header {size} B"), count, total, || {
        for _ in 0..count {
            black_box(header::encode_header(
                true,
                OpCode::Text,
                black_box(size),
                &mut head,
            ));
        }
    });
    let mut out = Vec::with_capacity((count as usize) * (size + 10));
    measure(&format!("ws encode_frame {size} B"), count, total, || {
        out.clear();
        for _ in 0..count {
            header::encode_frame(OpCode::Text, &payload, &mut out);
        }
        black_box(&out);
    });
}

/// `TextCodec::decode` of push lines of `len` bytes.
fn text_decode(len: usize) {
    let mut line = br#"{"uid":"u1234","seq":1,"pad":""#.to_vec();
    line.resize(len - 3, b'p');
    line.extend_from_slice(b"\"}\n");
    let count = (256 << 10) / len;
    let wire: Vec<u8> = line.iter().copied().cycle().take(count * len).collect();
    let mut codec = TextCodec::new(1 << 20);
    measure(
        &format!("text line decode {len} B"),
        count as u64,
        wire.len() as u64,
        || {
            let mut at = 0;
            while let Ok(Decode::Done { item, consumed }) = codec.decode(&wire[at..]) {
                black_box(item);
                at += consumed;
            }
            assert_eq!(at, wire.len());
        },
    );
}

/// A browser-like WebSocket upgrade request.
const UPGRADE: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:1234\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n\
Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Connection: keep-alive, Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
Upgrade: websocket\r\n\r\n";

/// `HttpCodec::decode_head` of a browser's upgrade request (httparse + owned `Request`).
fn http_head() {
    let mut codec = HttpCodec::new(16 << 10, 0);
    measure(
        "http decode_head (upgrade, 12 headers)",
        1,
        UPGRADE.len() as u64,
        || match codec.decode_head(black_box(UPGRADE)) {
            Ok(Decode::Done { item, .. }) => {
                black_box(item);
            }
            other => panic!("unexpected {other:?}"),
        },
    );
}

/// The whole server side of a handshake: parse, `validate` (SHA-1 + base64), `write_accept`.
fn ws_handshake() {
    let mut codec = HttpCodec::new(16 << 10, 0);
    let mut out = Vec::with_capacity(256);
    measure(
        "ws handshake (parse+validate+101)",
        1,
        UPGRADE.len() as u64,
        || {
            let Ok(Decode::Done { item, .. }) = codec.decode_head(black_box(UPGRADE)) else {
                panic!("incomplete");
            };
            let accept = handshake::validate(&item).expect("valid upgrade");
            out.clear();
            handshake::write_accept(&accept, &[], &mut out);
            black_box(&out);
        },
    );
    let Ok(Decode::Done { item, .. }) = codec.decode_head(UPGRADE) else {
        unreachable!()
    };
    measure(
        "ws handshake validate+101 only",
        1,
        UPGRADE.len() as u64,
        || {
            let accept = handshake::validate(black_box(&item)).expect("valid upgrade");
            out.clear();
            handshake::write_accept(&accept, &[], &mut out);
            black_box(&out);
        },
    );
}

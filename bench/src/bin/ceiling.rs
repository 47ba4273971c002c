//! The kernel's ceiling for the push.php protocol on this machine: the least a server can do
//! per push (one read per batch of lines, one `writev` per frame, one reply write per batch),
//! with none of a real server's duties (limits, closes, timers, UTF-8, control frames).
//! `pushman-bench` against it shows what the kernel allows; against pushman, how far pushman is
//! from that. Not a server to deploy: it trusts its peers.
//!
//! ```text
//! taskset -c 0 target/release/ceiling 127.0.0.1:1234 127.0.0.1:5678
//! ```

use mio::{
    net::{TcpListener, TcpStream},
    Events, Interest, Poll, Token,
};
use std::{
    collections::HashMap,
    io::{self, IoSlice, Read, Write},
};

const WS_LISTENER: Token = Token(usize::MAX - 1);
const TEXT_LISTENER: Token = Token(usize::MAX - 2);

/// One accepted socket: a browser (until its uid arrives, then idle) or a backend.
struct Peer {
    sock: TcpStream,
    backend: bool,
    /// Bytes of an incomplete handshake, frame or line.
    partial: Vec<u8>,
    handshaken: bool,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ws_addr = args.first().map_or("127.0.0.1:1234", String::as_str);
    let text_addr = args.get(1).map_or("127.0.0.1:5678", String::as_str);
    let mut poll = Poll::new()?;
    let mut ws = TcpListener::bind(ws_addr.parse().expect("WS address"))?;
    let mut text = TcpListener::bind(text_addr.parse().expect("text address"))?;
    poll.registry()
        .register(&mut ws, WS_LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut text, TEXT_LISTENER, Interest::READABLE)?;
    let mut peers: slab::Slab<Peer> = slab::Slab::new();
    let mut uids: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut rbuf = vec![0u8; 64 << 10];
    let mut reply = Vec::new();
    loop {
        match poll.poll(&mut events, None) {
            // A tracer attaching (strace, perf) interrupts the wait: not an error.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in &events {
            let (listener, backend) = match event.token() {
                WS_LISTENER => (&ws, false),
                TEXT_LISTENER => (&text, true),
                Token(key) => {
                    serve(key, &mut peers, &mut uids, &mut rbuf, &mut reply);
                    continue;
                }
            };
            while let Ok((mut sock, _)) = listener.accept() {
                sock.set_nodelay(true)?;
                let entry = peers.vacant_entry();
                poll.registry()
                    .register(&mut sock, Token(entry.key()), Interest::READABLE)?;
                entry.insert(Peer {
                    sock,
                    backend,
                    partial: Vec::new(),
                    handshaken: backend,
                });
            }
        }
    }
}

/// Reads everything peer `key` sent and acts on it; drops the peer on EOF or error.
fn serve(
    key: usize,
    peers: &mut slab::Slab<Peer>,
    uids: &mut HashMap<Vec<u8>, usize>,
    rbuf: &mut [u8],
    reply: &mut Vec<u8>,
) {
    let mut input = std::mem::take(&mut peers[key].partial);
    let mut gone = false;
    loop {
        match peers[key].sock.read(rbuf) {
            Ok(0) => {
                gone = true;
                break;
            }
            Ok(n) => input.extend_from_slice(&rbuf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                gone = true;
                break;
            }
        }
    }
    let used = if peers[key].backend {
        let used = backend_lines(&input, peers, uids, reply);
        let _ = peers[key].sock.write_all(reply);
        reply.clear();
        used
    } else {
        browser_bytes(key, &input, peers, uids)
    };
    input.drain(..used);
    if gone {
        let peer = peers.remove(key);
        // A scan, so that a peer need not keep its uid: closes come at teardown, not
        // while anything is measured, and the idle-memory figure stays the kernel's.
        uids.retain(|_, &mut k| k != key || peer.backend);
    } else {
        peers[key].partial = input;
    }
}

/// Pushes every complete line to its uid; appends `ok`/`fail` per line to `reply`.
/// Returns how many bytes of `input` the complete lines took.
fn backend_lines(
    input: &[u8],
    peers: &mut slab::Slab<Peer>,
    uids: &HashMap<Vec<u8>, usize>,
    reply: &mut Vec<u8>,
) -> usize {
    let complete = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for line in input[..complete]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let sent = if contains(line, b"\"broadcast\":true") {
            // Every recipient gets the same bytes, as in a real broadcast.
            let mut any = false;
            for &k in uids.values() {
                any |= send_frame(&mut peers[k].sock, line);
            }
            any
        } else {
            let target = uid_of(line).and_then(|uid| uids.get(uid)).copied();
            target.is_some_and(|k| send_frame(&mut peers[k].sock, line))
        };
        reply.extend_from_slice(if sent { b"ok\n" } else { b"fail\n" });
    }
    complete
}

/// Writes `payload` as one unmasked text frame (payloads < 64 KiB); true if all went out.
fn send_frame(sock: &mut TcpStream, payload: &[u8]) -> bool {
    let long = [0x81, 126, (payload.len() >> 8) as u8, payload.len() as u8];
    let header = if payload.len() < 126 {
        &[0x81, payload.len() as u8][..]
    } else {
        &long[..]
    };
    let parts = [IoSlice::new(header), IoSlice::new(payload)];
    sock.write_vectored(&parts).unwrap_or(0) == header.len() + payload.len()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Answers the handshake, then binds the uid carried by the first (masked, short) frame.
/// Returns how many bytes of `input` were used.
fn browser_bytes(
    key: usize,
    input: &[u8],
    peers: &mut slab::Slab<Peer>,
    uids: &mut HashMap<Vec<u8>, usize>,
) -> usize {
    let mut used = 0;
    if !peers[key].handshaken {
        let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
            return 0;
        };
        let head = String::from_utf8_lossy(&input[..end]);
        let client_key = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
            .map_or("", |(_, v)| v.trim());
        let accept = pushman::codec::ws::handshake::accept_key(client_key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let _ = peers[key].sock.write_all(response.as_bytes());
        peers[key].handshaken = true;
        used = end + 4;
    }
    let frame = &input[used..];
    if frame.len() < 6 {
        return used;
    }
    let len = usize::from(frame[1] & 0x7f);
    if len >= 126 || frame.len() < 6 + len {
        return used;
    }
    let mask = [frame[2], frame[3], frame[4], frame[5]];
    let uid: Vec<u8> = frame[6..6 + len]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    uids.insert(uid, key);
    used + 6 + len
}

/// The value of the line's `"uid":"..."` field (no JSON parser: a ceiling, not a server).
fn uid_of(line: &[u8]) -> Option<&[u8]> {
    const FIELD: &[u8] = b"\"uid\":\"";
    let start = line.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = line[start..].iter().position(|&b| b == b'"')?;
    Some(&line[start..start + len])
}

//! The client side (outbound connections): the mirror of the server's masking rules.

use super::*;

/// Decodes every event of `src` with `ws`, owned.
fn events(ws: &mut WsSession, src: &[u8], out: &mut Vec<u8>) -> Vec<Ev> {
    let mut src = src.to_vec();
    let mut at = 0;
    let mut events = Vec::new();
    while let Ok(Decode::Done { item, consumed }) = ws.decode(&mut src[at..], out) {
        events.push(Ev::from(item));
        at += consumed;
    }
    events
}

#[test]
fn unmasked_server_frames_are_read_and_masked_ones_refused() {
    // §5.7: "A single-frame unmasked text message".
    let mut ws = WsSession::client(1024);
    let mut out = Vec::new();
    let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        events(&mut ws, &hello, &mut out),
        [Ev::Text("Hello".into())]
    );
    assert!(out.is_empty());

    let mut ws = WsSession::client(1024);
    let mut src = MASKED_HELLO.to_vec();
    assert_eq!(
        ws.decode(&mut src, &mut out),
        Err(ProtocolError::MaskedFrame)
    );
    assert_eq!(ws.state(), State::Closed);
    // Our close frame (1002) is masked, as everything a client sends: a server reads it.
    let mut server_side = WsSession::new(1024);
    assert_eq!(
        events(&mut server_side, &out, &mut Vec::new()),
        [Ev::Close(Some(1002), "server frame masked".into())]
    );
}

#[test]
fn pongs_and_closes_from_a_client_are_masked_with_fresh_keys() {
    let mut ws = WsSession::client(1024);
    let mut out = Vec::new();
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut twice = ping.to_vec();
    twice.extend_from_slice(&ping);
    assert_eq!(
        events(&mut ws, &twice, &mut out),
        [Ev::Control, Ev::Control]
    );
    // Two masked pongs, 2 + 4 + 5 bytes each, with different keys.
    assert_eq!(out.len(), 22);
    assert_eq!(&out[..2], &[0x8a, 0x85]);
    assert_ne!(out[2..6], out[13..17], "a fresh key per frame");
    let mut server_side = WsSession::new(1024);
    assert_eq!(
        events(&mut server_side, &out, &mut Vec::new()),
        [Ev::Control, Ev::Control]
    );

    let mut out = Vec::new();
    ws.close(1000, "bye", &mut out);
    assert_eq!(
        events(&mut WsSession::new(1024), &out, &mut Vec::new()),
        [Ev::Close(Some(1000), "bye".into())]
    );
    // The server's unmasked echo ends the handshake.
    let echo = server(OpCode::Close, &[0x03, 0xe8]);
    assert_eq!(
        events(&mut ws, &echo, &mut out),
        [Ev::Close(Some(1000), String::new())]
    );
    assert_eq!(ws.state(), State::Closed);
}

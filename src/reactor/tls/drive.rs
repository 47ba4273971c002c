//! The rustls side of a connection's TLS: [`drive`] runs an `UnbufferedServerConnection`
//! over received bytes until it waits, collecting plaintext and TLS output into the
//! caller's buffers, and seals application data when it may be written.

use rustls::{
    server::{ServerConnectionData, UnbufferedServerConnection},
    unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic},
};

/// rustls' means to write application data, while the session allows it.
pub(super) type Writer<'c> = WriteTraffic<'c, ServerConnectionData>;

/// Where rustls stands once it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quiet {
    /// Handshake done: application data may be written.
    Writable,
    /// The handshake waits for more bytes from the peer.
    Blocked,
    /// The peer sent close_notify.
    PeerClosed,
}

/// Appends what `encode` writes to `out`, growing it as rustls asks.
pub(super) fn encode_with(
    out: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), rustls::Error> {
    let mut room = 64;
    loop {
        let at = out.len();
        out.resize(at + room, 0);
        match encode(&mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(e)) => {
                out.truncate(at);
                room = e.required_size;
            }
            Err(EncryptError::EncryptExhausted) => {
                out.truncate(at);
                return Err(rustls::Error::EncryptError);
            }
        }
    }
}

/// Seals `data` into `out` (rustls splits it into records).
pub(super) fn seal(
    w: &mut Writer<'_>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    if data.is_empty() {
        return Ok(());
    }
    let mut room = data.len() + (data.len() / (16 << 10) + 1) * 64;
    loop {
        let at = out.len();
        out.resize(at + room, 0);
        match w.encrypt(data, &mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(e)) => {
                out.truncate(at);
                room = e.required_size;
            }
            Err(_) => {
                out.truncate(at);
                return Err(rustls::Error::EncryptError);
            }
        }
    }
}

/// Runs rustls over `incoming` until it waits: decrypted data is appended to `plain`,
/// handshake messages and alerts to `out`, and once application data may be written,
/// `write` runs with the means to. Returns how many bytes of `incoming` rustls is done
/// with, and where it stands.
pub(super) fn drive(
    conn: &mut UnbufferedServerConnection,
    incoming: &mut [u8],
    plain: &mut Vec<u8>,
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut Writer<'_>, &mut Vec<u8>) -> Result<(), rustls::Error>,
) -> Result<(usize, Quiet), (usize, rustls::Error)> {
    let mut done = 0;
    loop {
        // Records rustls decrypted for us name their own discard (0 in rustls 0.23).
        let mut extra = 0;
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut incoming[done..]);
        let step = match state {
            Err(e) => Err(e),
            Ok(ConnectionState::ReadTraffic(mut read)) => loop {
                match read.next_record() {
                    None => break Ok(None),
                    Some(Ok(record)) => {
                        plain.extend_from_slice(record.payload);
                        extra += record.discard;
                    }
                    Some(Err(e)) => break Err(e),
                }
            },
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                let mut room = 1024;
                loop {
                    let at = out.len();
                    out.resize(at + room, 0);
                    match encode.encode(&mut out[at..]) {
                        Ok(n) => {
                            out.truncate(at + n);
                            break Ok(None);
                        }
                        Err(EncodeError::InsufficientSize(e)) => {
                            out.truncate(at);
                            room = e.required_size;
                        }
                        Err(_) => {
                            out.truncate(at);
                            break Err(rustls::Error::General("cannot encode".into()));
                        }
                    }
                }
            }
            // `out` holds it; the caller sends it.
            Ok(ConnectionState::TransmitTlsData(transmit)) => {
                transmit.done();
                Ok(None)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Some(Quiet::Blocked)),
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                write(&mut w, out).map(|()| Some(Quiet::Writable))
            }
            Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                Ok(Some(Quiet::PeerClosed))
            }
            // Early data is not enabled (`max_early_data_size` 0); any other state is new.
            Ok(_) => Err(rustls::Error::General("unexpected TLS state".into())),
        };
        done += discard + extra;
        match step {
            Ok(None) => {}
            Ok(Some(quiet)) => return Ok((done, quiet)),
            Err(e) => return Err((done, e)),
        }
    }
}

//! RFC 6455 WebSocket: the handshake (server side, and the client side in [`client`]),
//! frame headers, masking, close codes, and [`WsSession`], the per-connection state machine
//! that turns frames into messages.

pub mod client;
pub mod close;
pub mod handshake;
pub mod header;
pub mod mask;
mod session;
#[cfg(test)]
mod test_util;

pub use close::{CloseCode, ProtocolError};
pub use header::{FrameHeader, OpCode};
pub use session::{Event, State, WsSession};

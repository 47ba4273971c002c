//! Outgoing messages framed by the connection's protocol, written or queued.

use super::{
    conn::{Codec, Phase},
    ConnId, Reactor, SendError,
};
use crate::codec::{frame, http::Response, text, ws, Protocol};

type SendResult = std::result::Result<(), SendError>;

impl<T> Reactor<T> {
    /// Sends `data` as one message in the connection's protocol; `opcode` picks a WebSocket
    /// text or binary frame.
    pub(crate) fn send_message(
        &mut self,
        id: ConnId,
        data: &[u8],
        opcode: ws::OpCode,
    ) -> SendResult {
        let conn = self.open_conn(id)?;
        match conn.protocol {
            Protocol::Tcp => self.queue(id.slot(), &[data]),
            Protocol::Text => self.queue(id.slot(), &[data, text::LINE_END]),
            Protocol::Frame => {
                let head = frame::header(data.len()).map_err(|_| SendError::TooLarge)?;
                self.queue(id.slot(), &[&head, data])
            }
            Protocol::WebSocket if conn.ws_client => self.send_masked(id, opcode, data),
            Protocol::WebSocket => {
                let mut head = [0u8; ws::header::MAX_SERVER_HEADER];
                let n = ws::header::encode_header(true, opcode, data.len(), &mut head);
                self.queue(id.slot(), &[&head[..n], data])
            }
            Protocol::Http => {
                let response = Response::new(200)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .body(data);
                self.respond(id, &response)
            }
        }
    }

    /// Sends one frame of an outbound WebSocket: masked with a fresh key; held until the
    /// server's 101 if it has not come yet.
    fn send_masked(&mut self, id: ConnId, opcode: ws::OpCode, data: &[u8]) -> SendResult {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        ws::header::encode_masked_frame(opcode, data, ws::client::masking_key(), &mut frame);
        let conn = &mut self.conns[id.slot()];
        let result = match &mut conn.codec {
            Codec::Upgrading(upgrade) => upgrade.hold(&frame, conn.max_send_buffer),
            _ => self.queue(id.slot(), &[&frame]),
        };
        self.scratch = frame;
        result
    }

    /// Sends an HTTP response; closes the connection afterwards unless the request asked to
    /// keep it alive.
    pub(crate) fn respond(&mut self, id: ConnId, response: &Response) -> SendResult {
        let conn = self.open_conn(id)?;
        let close = conn.close_after_response;
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if close
            && !response
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
        {
            response
                .clone()
                .header("Connection", "close")
                .encode(&mut bytes);
        } else {
            response.encode(&mut bytes);
        }
        let result = self.queue(id.slot(), &[&bytes]);
        self.scratch = bytes;
        if result.is_ok() && close {
            self.close(id, ws::CloseCode::NORMAL.0, "");
        }
        result
    }

    /// Sends a WebSocket ping; nothing for other protocols or before the handshake.
    pub(crate) fn ping(&mut self, id: ConnId) -> SendResult {
        let conn = self.open_conn(id)?;
        if conn.protocol != Protocol::WebSocket || conn.hold_output {
            return Ok(());
        }
        if conn.ws_client {
            return self.send_masked(id, ws::OpCode::Ping, &[]);
        }
        let mut head = [0u8; ws::header::MAX_SERVER_HEADER];
        let n = ws::header::encode_header(true, ws::OpCode::Ping, 0, &mut head);
        self.queue(id.slot(), &[&head[..n]])
    }

    /// Starts a graceful close of `id` (WebSocket: with `code` and `reason`).
    pub(crate) fn close(&mut self, id: ConnId, code: u16, reason: &str) {
        if self.conn(id).is_some_and(|c| c.phase == Phase::Open) {
            self.begin_closing(id.slot(), Some((code, reason.into())));
        }
    }
}

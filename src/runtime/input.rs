//! Decoding a connection's input with its codec and delivering messages to callbacks.

use super::{
    connection::{ConnError, ConnId, Message},
    ctx::Ctx,
    Runtime,
};
use crate::{
    codec::{
        http::Request,
        ws::{self, handshake, Event, WsSession},
        Decode,
    },
    reactor::conn::{Codec, InBuf, Phase},
    ConnectError,
};

/// What one decode step asks the runtime to do next.
enum Step {
    /// `consumed` bytes were used; decode again.
    Next(usize),
    /// Wait for more input.
    Wait,
    /// The input can never become valid: report `error`, then close (the codec has queued
    /// any protocol reply, e.g. a WebSocket close frame or an HTTP error).
    Fail(ConnError),
}

impl<S: 'static> Runtime<S> {
    /// Decodes and delivers every complete message in `buf`, leaving a partial one.
    pub(super) fn process_input(&mut self, key: usize, buf: &mut InBuf) {
        loop {
            let conn = &mut self.io.reactor.conns[key];
            if !matches!(conn.phase, Phase::Open | Phase::Closing)
                || conn.recv_paused
                || conn.backlogged
                || buf.pending() == 0
            {
                return;
            }
            let (id, worker) = (conn.id, conn.worker);
            let open = conn.phase == Phase::Open;
            let mut codec = std::mem::replace(&mut conn.codec, Codec::Detached);
            let src = &mut buf.data[buf.start..buf.end];
            let step = self.decode_step(key, id, worker, open, &mut codec, src);
            if let Some(conn) = self.io.reactor.conns.get_mut(key) {
                conn.codec = codec;
            }
            match step {
                Step::Next(consumed) => {
                    buf.consume(consumed);
                    if let Some(conn) = self.io.reactor.conns.get_mut(key) {
                        conn.partial_since = None;
                    }
                }
                Step::Wait => return,
                Step::Fail(error) => {
                    self.fail(key, error);
                    return;
                }
            }
            self.after_callback();
        }
    }

    /// One decode step with the detached `codec`; runs `on_message` for a message.
    fn decode_step(
        &mut self,
        key: usize,
        id: ConnId,
        worker: usize,
        open: bool,
        codec: &mut Codec,
        src: &mut [u8],
    ) -> Step {
        match codec {
            Codec::Tcp => {
                let n = src.len();
                self.deliver(worker, id, open, Message::Bytes(src));
                Step::Next(n)
            }
            Codec::Text(text) => match text.decode(src) {
                Ok(Decode::Done { item, consumed }) => {
                    self.deliver(worker, id, open, Message::Bytes(item));
                    Step::Next(consumed)
                }
                Ok(Decode::NeedMore) => Step::Wait,
                Err(e) => Step::Fail(ConnError::Line(e)),
            },
            Codec::Frame(frame) => match frame.decode(src) {
                Ok(Decode::Done { item, consumed }) => {
                    self.deliver(worker, id, open, Message::Bytes(item));
                    Step::Next(consumed)
                }
                Ok(Decode::NeedMore) => Step::Wait,
                Err(e) => Step::Fail(ConnError::Frame(e)),
            },
            Codec::Http(http) => match http.decode(src) {
                Ok(Decode::Done { item, consumed }) => {
                    self.io.reactor.conns[key].close_after_response = !item.keep_alive();
                    self.deliver(worker, id, open, Message::Request(&item));
                    Step::Next(consumed)
                }
                Ok(Decode::NeedMore) => Step::Wait,
                Err(e) => {
                    let response =
                        (self.io.reactor.workers[worker].http_error)(e.status(), &e.to_string());
                    self.write_raw(key, |out| {
                        response.header("Connection", "close").encode(out)
                    });
                    Step::Fail(ConnError::Http(e))
                }
            },
            Codec::Handshake(http) => match http.decode_head(src) {
                Ok(Decode::Done { item, consumed }) => {
                    match self.handshake(key, id, worker, &item) {
                        Ok(()) => {
                            let max = self.io.reactor.workers[worker].limits.max_package_size;
                            *codec = Codec::Ws(Box::new(WsSession::new(max)));
                            Step::Next(consumed)
                        }
                        Err(error) => Step::Fail(error),
                    }
                }
                Ok(Decode::NeedMore) => Step::Wait,
                Err(e) => {
                    self.write_raw(key, |out| {
                        handshake::write_refusal(e.status(), &e.to_string(), out)
                    });
                    Step::Fail(ConnError::Http(e))
                }
            },
            Codec::Upgrading(upgrade) => match upgrade.handshake.decode_response(src) {
                Ok(Decode::Done { consumed, .. }) => {
                    let max = self.io.reactor.workers[worker].limits.max_package_size;
                    let session = Codec::Ws(Box::new(WsSession::client(max)));
                    if let Codec::Upgrading(upgrade) = std::mem::replace(codec, session) {
                        self.io.reactor.upgraded(key, *upgrade);
                    }
                    Step::Next(consumed)
                }
                Ok(Decode::NeedMore) => Step::Wait,
                Err(e) => Step::Fail(ConnError::Connect(ConnectError::Upgrade(e))),
            },
            Codec::Ws(session) => self.ws_step(key, id, worker, open, session, src),
            Codec::Detached => Step::Wait,
        }
    }

    fn ws_step(
        &mut self,
        key: usize,
        id: ConnId,
        worker: usize,
        open: bool,
        session: &mut WsSession,
        src: &mut [u8],
    ) -> Step {
        let mut out = std::mem::take(&mut self.io.reactor.scratch);
        out.clear();
        let result = session.decode(src, &mut out);
        let step = match result {
            Ok(Decode::Done { item, consumed }) => {
                match item {
                    Event::Text(text) => self.deliver(worker, id, open, Message::Text(text)),
                    Event::Binary(bytes) => self.deliver(worker, id, open, Message::Binary(bytes)),
                    Event::Control => {}
                    // The session queued its echo; flush it, then close.
                    Event::Close { .. } => self.io.reactor.begin_closing(key, None),
                }
                Step::Next(consumed)
            }
            Ok(Decode::NeedMore) => Step::Wait,
            Err(e) => {
                let error = match e {
                    ws::ProtocolError::TooBig => ConnError::PackageTooBig,
                    other => ConnError::WebSocket(other),
                };
                Step::Fail(error)
            }
        };
        if !out.is_empty() {
            let conn = &mut self.io.reactor.conns[key];
            if matches!(conn.phase, Phase::Open | Phase::Closing) {
                let _ = self.io.reactor.write_parts(key, &[&out]);
                self.io.reactor.update_interest(key);
            }
        }
        self.io.reactor.scratch = out;
        step
    }

    /// Validates an upgrade, asks the handshake hook, and writes 101 (or a refusal).
    fn handshake(
        &mut self,
        key: usize,
        id: ConnId,
        worker: usize,
        request: &Request,
    ) -> Result<(), ConnError> {
        let accept = match handshake::validate(request) {
            Ok(accept) => accept,
            Err(handshake::HandshakeError::NotUpgrade) => {
                self.plain_http(key, id, worker, request);
                return Err(ConnError::Handshake(handshake::HandshakeError::NotUpgrade));
            }
            Err(e) => {
                self.write_raw(key, |out| {
                    handshake::write_refusal(e.status(), &e.to_string(), out)
                });
                return Err(ConnError::Handshake(e));
            }
        };
        // Called without delivering what the hook caused: a `close_with` must wait until
        // the session replaces the detached codec, so its close frame follows the 101.
        let mut ctx = Ctx {
            state: &mut self.state,
            io: &mut self.io,
        };
        let verdict = match self.handlers[worker].ws_handshake.as_mut() {
            Some(f) => f(&mut ctx, id, request),
            None => Ok(()),
        };
        let conn = &mut self.io.reactor.conns[key];
        if matches!(conn.phase, Phase::Dead | Phase::Linger) {
            return Ok(());
        }
        match verdict {
            // Also when the hook closed the connection (`close_with`): the upgrade completes
            // and the close frame, already queued, follows the 101, so the client learns
            // the code and reason, which an HTTP refusal cannot tell a browser.
            Ok(()) => {
                let mut head = Vec::new();
                handshake::write_accept(&accept, &[], &mut head);
                conn.output.prepend(&head);
                conn.hold_output = false;
                if conn.phase == Phase::Open {
                    self.io.reactor.flush_output(key);
                }
                Ok(())
            }
            Err(refusal) => {
                log::debug!(
                    "connection {id}: upgrade refused: {} {}",
                    refusal.status,
                    refusal.reason
                );
                self.write_raw(key, |out| {
                    handshake::write_refusal(refusal.status, &refusal.reason, out)
                });
                self.io.close(id);
                Ok(())
            }
        }
    }

    /// A plain HTTP request on a WebSocket port: the worker's page, or 400.
    fn plain_http(&mut self, key: usize, id: ConnId, worker: usize, request: &Request) {
        let response = self.call(worker, |h, ctx| {
            h.ws_http.as_mut().map(|f| f(ctx, id, request))
        });
        match response {
            Some(response) => self.write_raw(key, |out| {
                response.clone().header("Connection", "close").encode(out)
            }),
            None => self.write_raw(key, |out| {
                handshake::write_refusal(
                    400,
                    "this port speaks WebSocket; connect with a WebSocket client",
                    out,
                )
            }),
        }
    }

    /// Writes bytes produced by `encode` ahead of everything the application queued, even
    /// while closing: protocol replies and refusals.
    fn write_raw(&mut self, key: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut out = std::mem::take(&mut self.io.reactor.scratch);
        out.clear();
        encode(&mut out);
        if let Some(conn) = self
            .io
            .reactor
            .conns
            .get_mut(key)
            .filter(|c| matches!(c.phase, Phase::Open | Phase::Closing))
        {
            conn.hold_output = false;
            let _ = self.io.reactor.write_parts(key, &[&out]);
            self.io.reactor.update_interest(key);
        }
        self.io.reactor.scratch = out;
    }

    fn deliver(&mut self, worker: usize, id: ConnId, open: bool, message: Message<'_>) {
        if !open {
            return;
        }
        let mut ctx = Ctx {
            state: &mut self.state,
            io: &mut self.io,
        };
        if let Some(f) = self.handlers[worker].message.as_mut() {
            f(&mut ctx, id, message);
        }
    }

    /// Reports `error`, then closes (flushing the protocol's reply), with 1009/1002/1007 for
    /// WebSocket peers as the codec chose.
    ///
    /// Except on WebSocket, whose close frame is already queued, `on_error` runs while the
    /// connection is still open, so it may send a last answer (a `fail` line, say) that is
    /// flushed before the close.
    fn fail(&mut self, key: usize, error: ConnError) {
        let conn = &mut self.io.reactor.conns[key];
        let (id, worker, protocol) = (conn.id, conn.worker, conn.protocol);
        if !matches!(
            error,
            ConnError::Handshake(handshake::HandshakeError::NotUpgrade)
        ) {
            log::debug!("connection {id} ({}): {error}", conn.peer);
            if protocol == crate::codec::Protocol::WebSocket {
                self.io
                    .reactor
                    .deferred
                    .push_back(crate::reactor::Deferred::Error(id, worker, error));
            } else {
                self.call(worker, |h, ctx| {
                    if let Some(f) = h.error.as_mut() {
                        f(ctx, id, &error);
                    }
                });
            }
        }
        // No close request: the codec has already queued its protocol reply.
        self.io.reactor.begin_closing(key, None);
        self.after_callback();
    }
}

//! Closing: the WebSocket close frame, the flush, the half-close and the linger.

use super::{
    conn::{Codec, Phase, Progress},
    ConnError, Deferred, Reactor,
};

impl<T> Reactor<T> {
    /// Carries out `close` on slot `key`: the WebSocket close frame, then the flush.
    pub(crate) fn apply_close(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Closing {
            return;
        }
        if let (Some((code, reason)), Codec::Ws(session)) =
            (conn.close_request.take(), &mut conn.codec)
        {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            session.close(code, &reason, &mut out);
            let _ = self.write_parts(key, &[&out]);
            self.scratch = out;
        }
        self.finish_close_if_flushed(key);
    }

    /// A closing connection whose output is flushed shuts down its write side and lingers
    /// (or, if the peer already closed, is done).
    pub(crate) fn finish_close_if_flushed(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Closing && conn.batched.is_some() {
            // Its last messages are still in the write batch: write them first (this comes
            // back here once they are out).
            self.flush_batched(key);
            return;
        }
        if conn.phase != Phase::Closing || !conn.output.is_empty() || conn.tls_pending() {
            self.update_interest(key);
            return;
        }
        if conn.peer_eof {
            self.kill(key, None);
            return;
        }
        if let Some(tls) = conn.tls.as_mut().filter(|t| !t.close_sent) {
            // TLS ends with our `close_notify` (RFC 8446 §6.1) before the FIN.
            tls.close_sent = true;
            tls.session.send_close_notify();
            let flushed = conn.flush();
            self.after_write(key, flushed);
            return;
        }
        let _ = conn.socket.shutdown(std::net::Shutdown::Write);
        conn.phase = Phase::Linger;
        // Input may already be waiting; linger reads it on the next turn.
        self.ready.push(key);
        self.update_interest(key);
    }

    /// Writes what `key` has queued, if it may write: on an error the connection dies; once
    /// drained, `on_buffer_drain` is owed if the buffer had been full, and a close asked for
    /// can finish. Returns whether it was drained.
    pub(crate) fn flush_output(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if matches!(conn.phase, Phase::Dead | Phase::Linger) {
            return false;
        }
        if conn.hold_output {
            // Plaintext waits for the WebSocket 101; TLS handshake output does not.
            if let Err(e) = conn.wire().send_held() {
                self.kill(key, Some(ConnError::Io(e)));
            } else {
                self.update_interest(key);
            }
            return false;
        }
        if self.sealed {
            self.held.push(key);
            return false;
        }
        let flushed = conn.flush();
        self.after_write(key, flushed)
    }

    /// Settles slot `key` after a write that made `flushed` progress: see [`Self::flush_output`].
    pub(crate) fn after_write(&mut self, key: usize, flushed: Progress) -> bool {
        let conn = &mut self.conns[key];
        if conn.backlogged && conn.queued() < conn.max_send_buffer / 2 {
            // Backpressure lifts: decode what waits, then read again.
            conn.backlogged = false;
            self.ready.push(key);
        }
        match flushed {
            Progress::Error(e) => {
                self.kill(key, Some(ConnError::Io(e)));
                false
            }
            Progress::Drained => {
                if std::mem::take(&mut conn.buffer_full) {
                    let (id, worker) = (conn.id, conn.worker);
                    self.deferred.push_back(Deferred::BufferDrain(id, worker));
                }
                self.finish_close_if_flushed(key);
                true
            }
            Progress::Moved | Progress::Eof => {
                // Output remains: WRITABLE interest carries it on.
                self.update_interest(key);
                false
            }
        }
    }

    /// Ends a held turn (see `sealed`): what would have been written during it is written
    /// now, in the same shape: the read batches' replies (their chains) and what waited in
    /// connections' own buffers. The rest of the batch is the runtime's to flush or defer,
    /// as after any turn.
    pub(crate) fn unseal(&mut self) {
        self.sealed = false;
        for key in std::mem::take(&mut self.held) {
            if self.conns.contains(key) {
                self.flush_batched(key);
                self.flush_output(key);
            }
        }
    }

    /// Ends a read batch: writes the replies it gathered in one go (other connections'
    /// output waits for the end of the turn).
    pub(crate) fn uncork(&mut self, key: usize) {
        if self.sealed {
            self.held.push(key);
        } else if self.conns.contains(key) {
            self.flush_batched(key);
        }
    }

    /// The peer will send nothing more: answer what it sent, then close.
    pub(crate) fn peer_closed(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.peer_eof = true;
        match conn.phase {
            Phase::Open => {
                let id = conn.id;
                // A WebSocket peer that vanishes without a close frame gets none either.
                if let Codec::Ws(_) = conn.codec {
                    self.kill(key, None);
                } else if let Codec::Upgrading(_) = conn.codec {
                    // Our upgrade was never answered: the connect failed.
                    let eof = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection before answering the upgrade",
                    );
                    self.kill(key, Some(ConnError::Connect(eof.into())));
                } else {
                    self.close(id, crate::codec::ws::CloseCode::NORMAL.0, "");
                }
            }
            Phase::Closing => self.finish_close_if_flushed(key),
            Phase::Linger | Phase::Dead => {}
        }
    }
}

//! The graceful stop: no more accepting, `on_worker_stop`, every connection closed.

use super::Runtime;
use crate::{codec::ws::CloseCode, reactor::ConnId};
use std::time::Duration;

/// How long a graceful stop waits for connections to close before dropping them.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl<S: 'static> Runtime<S> {
    /// Stops accepting, runs `on_worker_stop`, and closes every connection (WebSockets with
    /// 1001). `run` returns once all are closed or [`STOP_TIMEOUT`] has passed.
    pub(super) fn begin_stop(&mut self) {
        let reactor = &mut self.io.reactor;
        let n = reactor.conns.len();
        log::info!(
            "stopping: closing {n} connection{}",
            if n == 1 { "" } else { "s" }
        );
        self.stop_deadline = Some(reactor.now + STOP_TIMEOUT);
        reactor.close_listeners();
        for worker in 0..self.handlers.len() {
            self.call(worker, |h, ctx| {
                if let Some(f) = h.worker_stop.as_mut() {
                    f(ctx);
                }
            });
        }
        let ids: Vec<ConnId> = self.io.reactor.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.io
                .close_with(id, CloseCode::GOING_AWAY.0, "server shutting down");
        }
        self.after_callback();
    }
}

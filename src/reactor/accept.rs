//! Accepting connections, and pausing a listener while accepts fail (out of file
//! descriptors) instead of spinning on it and logging every failure.

use super::{conn::Conn, tls::Tls, token, AcceptPause, ConnId, Reactor, Task};
use mio::Interest;
use rustls::ServerConnection;
use std::io;

impl<T> Reactor<T> {
    /// Accepts one connection on listener `index` and returns it with its worker's index;
    /// `None` once the backlog is empty, a failure paused the listener, or the listener is
    /// gone (stopping). Connections refused by a cap are answered and closed here.
    pub(crate) fn accept(&mut self, index: usize) -> Option<(ConnId, usize)> {
        loop {
            let listener = self.listeners[index].socket.as_ref()?;
            let worker = self.listeners[index].worker;
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Typically EMFILE/ENFILE: the connection stays in the backlog.
                    self.pause_accepting(index, &e);
                    return None;
                }
            };
            if self.listeners[index].paused.is_some() {
                self.resume_accepting(index);
            }
            if self.conns.len() >= ConnId::MAX_SLOTS
                || self.refuse_over_cap(worker, &mut socket, peer)
            {
                continue;
            }
            let _ = socket.set_nodelay(true);
            let tls = match self.workers[worker]
                .tls
                .as_ref()
                .map(|c| ServerConnection::new(c.clone()))
            {
                None => None,
                Some(Ok(session)) => Some(Tls::new(session)),
                Some(Err(e)) => {
                    log::warn!("cannot start TLS for {peer}: {e}");
                    continue;
                }
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, token::conn(key), Interest::READABLE)
            {
                log::warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            self.next_seq += 1;
            let id = ConnId::new(self.next_seq, key);
            let meta = &self.workers[worker];
            let conn = entry.insert(Conn::new(
                id,
                socket,
                peer,
                worker,
                meta.protocol,
                &meta.limits,
                self.now,
            ));
            // The TLS handshake is a request from the first byte on: `request_timeout`
            // bounds it even if the client never sends one.
            if tls.is_some() {
                conn.partial_since = Some(self.now);
            }
            conn.tls = tls;
            self.workers[worker].open += 1;
            self.arm_deadline(key);
            return Some((id, worker));
        }
    }

    /// An accept failed: deregister the listener and retry after a backoff. The first
    /// failure of an episode is logged; later ones only by a reminder every
    /// [`AcceptPause::REMIND`], so running out of descriptors costs neither a core nor the
    /// log.
    fn pause_accepting(&mut self, index: usize, error: &io::Error) {
        let now = self.now;
        let listener = &mut self.listeners[index];
        let name = &self.workers[listener.worker].name;
        let pause = match listener.paused.as_mut() {
            None => {
                log::warn!(
                    "accept on {name}: {error}; pausing accepts (retrying every {} ms to 1 s); waiting connections stay in the backlog",
                    AcceptPause::MIN_BACKOFF.as_millis()
                );
                if let Some(socket) = listener.socket.as_mut() {
                    let _ = self.poll.registry().deregister(socket);
                }
                listener.paused.insert(AcceptPause {
                    since: now,
                    failures: 1,
                    reported: 1,
                    logged: now,
                    backoff: AcceptPause::MIN_BACKOFF,
                })
            }
            Some(pause) => {
                pause.failures += 1;
                pause.backoff = (pause.backoff * 2).min(AcceptPause::MAX_BACKOFF);
                if now.saturating_duration_since(pause.logged) >= AcceptPause::REMIND {
                    log::warn!(
                        "accept on {name} still paused: {error}; {} accepts failed in the last {} s",
                        pause.failures - pause.reported,
                        now.saturating_duration_since(pause.logged).as_secs()
                    );
                    pause.reported = pause.failures;
                    pause.logged = now;
                }
                pause
            }
        };
        let backoff = pause.backoff;
        self.timers
            .add(now, backoff, false, Task::AcceptRetry(index));
    }

    /// An accept succeeded after a pause: register the listener again and log the episode.
    fn resume_accepting(&mut self, index: usize) {
        let listener = &mut self.listeners[index];
        let Some(pause) = listener.paused.take() else {
            return;
        };
        let name = &self.workers[listener.worker].name;
        log::info!(
            "accept on {name} resumed after {:.1} s paused; {} accepts failed",
            self.now
                .saturating_duration_since(pause.since)
                .as_secs_f64(),
            pause.failures
        );
        if let Some(socket) = listener.socket.as_mut() {
            // Registering reports the backlog's readiness at once (epoll checks on ADD),
            // and this loop drains it anyway.
            if let Err(e) =
                self.poll
                    .registry()
                    .register(socket, token::listener(index), Interest::READABLE)
            {
                log::error!("accept on {name}: cannot register the listener again: {e}");
            }
        }
    }
}

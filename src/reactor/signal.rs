//! SIGINT/SIGTERM (stop) and SIGHUP/SIGUSR1 (reload) delivered as readiness on a
//! self-pipe, following signal-hook's advice: the handler only writes a byte; the reactor
//! drains the pipe and acts.

use mio::{net::UnixStream, Interest, Registry};
use signal_hook::{
    consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1},
    low_level::pipe,
    SigId,
};
use std::io::{self, Read};

use super::token;

/// What the process was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGINT or SIGTERM: stop gracefully.
    Stop,
    /// SIGHUP or SIGUSR1: reload.
    Reload,
}

/// The registered handlers and the read ends of their pipes.
#[derive(Debug)]
pub(crate) struct Signals {
    stop_rx: UnixStream,
    reload_rx: UnixStream,
    ids: Vec<SigId>,
}

impl Signals {
    /// Registers the handlers and the pipes' read ends with `registry`.
    pub(crate) fn install(registry: &Registry) -> io::Result<Self> {
        let (mut stop_rx, stop_tx) = std::os::unix::net::UnixStream::pair()?;
        let (mut reload_rx, reload_tx) = std::os::unix::net::UnixStream::pair()?;
        let mut ids = Vec::new();
        for sig in [SIGINT, SIGTERM] {
            ids.push(pipe::register(sig, stop_tx.try_clone()?)?);
        }
        for sig in [SIGHUP, SIGUSR1] {
            ids.push(pipe::register(sig, reload_tx.try_clone()?)?);
        }
        for rx in [&mut stop_rx, &mut reload_rx] {
            rx.set_nonblocking(true)?;
        }
        let mut stop_rx = UnixStream::from_std(stop_rx);
        let mut reload_rx = UnixStream::from_std(reload_rx);
        registry.register(&mut stop_rx, token::SIGNALS, Interest::READABLE)?;
        registry.register(&mut reload_rx, token::SIGNALS, Interest::READABLE)?;
        Ok(Self {
            stop_rx,
            reload_rx,
            ids,
        })
    }

    /// Drains both pipes; returns what was asked, stop winning over reload.
    pub(crate) fn drain(&mut self) -> Option<Request> {
        if drain(&mut self.stop_rx) {
            Some(Request::Stop)
        } else if drain(&mut self.reload_rx) {
            Some(Request::Reload)
        } else {
            None
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Reads everything queued in `rx`; returns whether anything was.
fn drain(rx: &mut UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut any = false;
    loop {
        match rx.read(&mut buf) {
            Ok(0) => return any,
            Ok(_) => any = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return any,
        }
    }
}

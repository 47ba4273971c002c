//! systemd's readiness protocol (`sd_notify(3)`): one datagram per state change to the
//! socket named by `$NOTIFY_SOCKET`, so a `Type=notify` unit is "active" only once every
//! listener is bound, shows "reloading" during `reload`, and "deactivating" while
//! connections drain. Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
//!
//! A few lines over a Unix datagram socket, as systemd documents it, rather than a crate
//! that wraps the same `sendto`.

use std::{
    os::unix::net::{SocketAddr, UnixDatagram},
    path::Path,
};

/// The unit is up: every listener is bound.
pub(crate) const READY: &str = "READY=1";
/// Graceful stop began.
pub(crate) const STOPPING: &str = "STOPPING=1";

/// Sends `state` (`KEY=VALUE` lines) to systemd; failures are logged, never fatal: a
/// server that cannot tell systemd it is ready must still serve.
pub(crate) fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = address(Path::new(&target)).and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        log::warn!("cannot notify systemd ({state:?} to {target:?}): {e}");
    }
}

/// `RELOADING=1` with the monotonic timestamp systemd (253+) pairs with the `READY=1`
/// that ends the reload.
pub(crate) fn reloading() -> String {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0);
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// A path, or `@name` for a socket in the abstract namespace.
fn address(target: &Path) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match target.as_os_str().as_bytes() {
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        _ => SocketAddr::from_pathname(target),
    }
}

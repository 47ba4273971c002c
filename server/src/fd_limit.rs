//! The open-files limit (`RLIMIT_NOFILE`): every connection is a file descriptor, so
//! `limits.max_connections` means nothing above it.
//!
//! Most systems start processes with a soft limit of 1,024 and a hard limit far above it;
//! the soft one exists for old `select(2)` programs, which pushman is not. So `start`
//! raises the soft limit to the hard one, and says once, naming both figures, when the
//! configuration still asks for more than that.

use super::config::Config;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// File descriptors besides the browsers' connections: stdio, the three listeners, the
/// poller, its waker, the signal pipe, the store, the log, the pid file, and the internal
/// APIs' connections (backends and monitoring), with room to spare.
pub(crate) const RESERVE: u64 = 64;

/// The limit Linux puts on a soft limit of "infinity" (`fs.nr_open`, 1,048,576 by default).
const NR_OPEN: &str = "/proc/sys/fs/nr_open";

/// The soft and hard open-files limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdLimit {
    /// What the kernel enforces now.
    pub(crate) soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub(crate) hard: u64,
}

/// The limits now, or `None` if they cannot be read.
pub(crate) fn current() -> Option<FdLimit> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, hard)| FdLimit { soft, hard })
}

/// Raises the soft limit to the hard one (capped by `fs.nr_open` when the hard limit is
/// infinite) and logs the change. Returns the limits in force afterwards.
pub(crate) fn raise() -> Option<FdLimit> {
    let before = current()?;
    let mut target = before.hard;
    if target == RLIM_INFINITY {
        target = std::fs::read_to_string(NR_OPEN)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20);
    }
    if target > before.soft {
        match setrlimit(Resource::RLIMIT_NOFILE, target, before.hard) {
            Ok(()) => log::info!(
                "open files limit raised from {} to {} (the hard limit)",
                before.soft,
                target
            ),
            Err(e) => log::warn!(
                "cannot raise the open files limit from {} to {target}: {e}",
                before.soft
            ),
        }
    }
    current()
}

/// File descriptors `config` may need at its limits: every browser, every API connection
/// its caps allow, and [`RESERVE`] for listeners and files.
pub(crate) fn needed(config: &Config) -> u64 {
    let apis = [config.listen.text, config.listen.http]
        .iter()
        .flatten()
        .count() as u64;
    (config.limits.max_connections as u64)
        .saturating_add(apis.saturating_mul(config.limits.max_api_connections as u64))
        .saturating_add(RESERVE)
}

/// Warns when `config` may need more descriptors than the soft limit allows; a no-op
/// otherwise. Called at start and at each reload.
pub(crate) fn warn_if_short(config: &Config, limit: Option<FdLimit>) {
    let Some(limit) = limit else { return };
    let need = needed(config);
    if need > limit.soft {
        log::warn!(
            "limits.max_connections = {} needs about {need} open files (with limits.max_api_connections per API and {RESERVE} for listeners and files) but the open files limit is {} (hard limit {}): connections past it are refused. Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower limits.max_connections",
            config.limits.max_connections,
            limit.soft,
            limit.hard
        );
    }
}

/// The descriptors this process has open, or `None` where `/proc` cannot tell.
pub(crate) fn open_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .ok()
}

//! The readers' side: what a pid file says, trusted only while its lock is held.

use super::{file::*, PidFileError, LOCK_RETRY, LOCK_TRIES};
use nix::{errno::Errno, fcntl::FlockArg};
use std::{io, net::SocketAddr, path::Path};

/// What a pid file says, for `stop`, `status` and `reload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    /// There is no pid file: not running.
    Absent,
    /// Nobody holds the file's lock: no pushman owns it (a crash left it, or someone else
    /// wrote it). `pid` is the number it names, if any; `alive` says whether a process with
    /// that number exists (it is then *not* a pushman, and must not be signalled).
    Stale {
        /// The pid named in the file.
        pid: Option<u32>,
        /// Whether that process exists.
        alive: bool,
    },
    /// A running pushman holds the lock.
    Running {
        /// Its pid.
        pid: u32,
    },
}

/// Reads what `path` says about the daemon.
///
/// # Errors
/// [`PidFileError`] when the file exists but cannot be read or is not a pid file.
pub(crate) fn inspect(path: &Path) -> Result<PidState, PidFileError> {
    let fail = |op, source| PidFileError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let file = match open(path, false) {
        Ok(file) => file,
        // ENOTDIR: a file where a directory should be, so no pid file can be there either.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.raw_os_error() == Some(Errno::ENOTDIR as i32) =>
        {
            return Ok(PidState::Absent)
        }
        Err(e) => return Err(open_error("read", path, e)),
    };
    let not_pid_file = |what| PidFileError::NotAPidFile {
        path: path.to_path_buf(),
        what,
    };
    let text = read_text(&file)
        .map_err(|e| fail("read", e))?
        .ok_or(not_pid_file("a file over 4 KiB"))?;
    let pid = parse_pid(&text);
    if pid.is_none() && !text.is_empty() {
        return Err(not_pid_file("a file with other contents"));
    }
    let mut file = file;
    let mut holder = None;
    for _ in 0..LOCK_TRIES {
        match lock(file, FlockArg::LockSharedNonblock) {
            // We got it, so no daemon holds it. Dropping the guard unlocks.
            Ok(_unlocked) => {
                return Ok(PidState::Stale {
                    pid,
                    alive: pid.is_some_and(alive),
                })
            }
            Err((held, Errno::EWOULDBLOCK)) => {
                // The pid is trusted only if the kernel says that process holds the lock: a
                // daemon that has just locked a stale file has not yet written its own pid.
                // Where /proc/locks is unreadable or does not list the inode (its inode
                // numbers can differ from stat's on some file systems), the lock is enough.
                let named = read_pid(&held).ok().flatten().filter(|&pid| alive(pid));
                let holders = flock_holders(&held).unwrap_or_default();
                match named {
                    Some(pid) if holders.is_empty() || holders.contains(&pid) => {
                        return Ok(PidState::Running { pid })
                    }
                    _ => holder = holders.first().copied(),
                }
                file = held;
            }
            Err((_, errno)) => return Err(fail("lock", errno.into())),
        }
        std::thread::sleep(LOCK_RETRY);
    }
    let why = match holder {
        Some(h) => format!("it is locked by pid {h} but names another; not trusting it"),
        None => "it is locked but names no live process; is a pushman starting?".into(),
    };
    Err(fail("read", io::Error::other(why)))
}

/// The listener address recorded as `name addr` in the pid file.
pub(crate) fn recorded_addr(path: &Path, name: &str) -> Option<SocketAddr> {
    let file = open(path, false).ok()?;
    read_text(&file)
        .ok()??
        .lines()
        .skip(1)
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

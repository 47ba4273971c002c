//! The pid file: which process is the running pushman, proved by a lock it holds.
//!
//! A pid alone proves nothing: after a crash or a reboot the number can belong to any
//! program (`sleep 600 & echo $! > pushman.pid`). So the daemon holds an exclusive
//! `flock(2)` on the file from before it listens until it exits, and the kernel drops the
//! lock when the process dies, however it dies. A reader trusts the pid only while the
//! lock is held; an unlocked file is stale, whatever it names.
//!
//! The file is rewritten in place, never renamed over: a rename would make a new inode that
//! nobody locks. Its first line is the pid; `name addr` lines for each listener follow once
//! they are bound (so `status` finds an HTTP API bound to port 0).

mod file;
mod inspect;

pub(crate) use file::alive;
pub(crate) use file::create_parent;
pub(crate) use inspect::{inspect, recorded_addr, PidState};

use file::{lock, open, open_error, parse_pid, read_pid, read_text, same_file};
use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};
use std::{
    fmt,
    fs::{self, File},
    io,
    net::SocketAddr,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    time::Duration,
};

/// A pid file is a pid and a few listener lines; anything longer is not one, and a reader
/// never reads more (`--pid-file /dev/zero` must not eat memory).
const MAX_LEN: u64 = 4096;

/// How often a lock that looks held is tried again before believing it: a `status` that
/// holds a shared lock for a moment must not make a `start` say "already running".
const LOCK_TRIES: u32 = 5;
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// The pid file of this process: locked from [`PidFile::acquire`] until drop, which
/// removes it.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    /// The open, exclusively locked file; the lock lives as long as this value.
    file: Flock<File>,
    /// The pid a stale file named when it was taken over, for the log.
    replaced: Option<u32>,
}

/// Why the pid file cannot be taken.
#[derive(Debug)]
pub(crate) enum PidFileError {
    /// A live process holds the lock: pushman is already running.
    Running {
        /// The pid file.
        path: PathBuf,
        /// The pid it names.
        pid: u32,
    },
    /// The path exists and is not a pid file (a symlink, a directory, a device, or a regular
    /// file with other contents); it is left alone rather than overwritten.
    NotAPidFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The file (or its directory) cannot be created, locked, read or written.
    Io {
        /// What was being done: `write`, `read` or `lock`.
        op: &'static str,
        /// The path that failed.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
}

impl fmt::Display for PidFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running { path, pid } => {
                write!(f, "already running (pid {pid}, pid file {})", path.display())
            }
            Self::NotAPidFile { path, what } => write!(
                f,
                "pid file {} is {what}, not a pid file; not overwriting it (choose another files.pid or --pid-file)",
                path.display()
            ),
            Self::Io { op, path, source } => {
                write!(f, "cannot {op} pid file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for PidFileError {}

impl PidFile {
    /// Creates or takes over `path`, locks it and writes this process's pid into it.
    /// A stale file (unlocked) is taken over; [`PidFile::replaced`] names what it said.
    ///
    /// # Errors
    /// [`PidFileError`]: running already, not a pid file, or cannot be written.
    pub(crate) fn acquire(path: &Path) -> Result<Self, PidFileError> {
        let io_err = |path: &Path, source| PidFileError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        };
        create_parent(path).map_err(|e| io_err(path, e))?;
        // The daemon removes its file at exit; a starter that opened it just before may lock
        // the removed inode, so check the lock is on what the path names, and try again.
        let mut busy = None;
        for _ in 0..LOCK_TRIES {
            let file = open(path, true).map_err(|e| open_error("write", path, e))?;
            let file = match lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                // Held: by a daemon, or for a moment by a reader's shared lock or a daemon
                // that is exiting; only a lock that stays held means "running".
                Err((file, Errno::EWOULDBLOCK)) => {
                    busy = Some(file);
                    std::thread::sleep(LOCK_RETRY);
                    continue;
                }
                Err((_, errno)) => return Err(io_err(path, errno.into())),
            };
            if !same_file(&file, path) {
                continue;
            }
            let text = read_text(&file).map_err(|e| io_err(path, e))?;
            let replaced = match text.as_deref() {
                Some("") => None,
                Some(text) => Some(parse_pid(text).ok_or(PidFileError::NotAPidFile {
                    path: path.to_path_buf(),
                    what: "a file with other contents",
                })?),
                None => {
                    return Err(PidFileError::NotAPidFile {
                        path: path.to_path_buf(),
                        what: "a file over 4 KiB",
                    })
                }
            };
            let mut pid_file = Self {
                path: path.to_path_buf(),
                file,
                replaced,
            };
            pid_file.record(&[]).map_err(|e| io_err(path, e))?;
            return Ok(pid_file);
        }
        let holder = busy.as_ref().and_then(|f| {
            let named = read_pid(f).ok().flatten();
            match file::flock_holders(f).as_deref() {
                Some([]) | None => named.filter(|&pid| alive(pid)),
                Some(h) => named.filter(|pid| h.contains(pid)).or(h.first().copied()),
            }
        });
        match holder {
            Some(pid) => Err(PidFileError::Running {
                path: path.to_path_buf(),
                pid,
            }),
            None => Err(io_err(
                path,
                io::Error::new(io::ErrorKind::WouldBlock, "its lock stayed busy; try again"),
            )),
        }
    }

    /// The pid a stale file named when [`acquire`](Self::acquire) took it over.
    pub(crate) fn replaced(&self) -> Option<u32> {
        self.replaced
    }

    /// The path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file: this pid, then one `name addr` line per listener. Written over
    /// the old contents from offset 0 before truncating, so a reader never sees it empty.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub(crate) fn record(&mut self, listeners: &[(String, SocketAddr)]) -> io::Result<()> {
        let mut text = format!("{}\n", std::process::id());
        for (name, addr) in listeners {
            text.push_str(&format!("{name} {addr}\n"));
        }
        self.file.write_all_at(text.as_bytes(), 0)?;
        self.file.set_len(text.len() as u64)?;
        self.file.sync_data()
    }
}

impl Drop for PidFile {
    /// Removes the file while still holding the lock, if the path still names it.
    fn drop(&mut self) {
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

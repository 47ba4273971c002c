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

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg, OFlag},
};
use std::{
    fmt,
    fs::{self, File, OpenOptions},
    io,
    net::SocketAddr,
    os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt},
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
pub struct PidFile {
    path: PathBuf,
    /// The open, exclusively locked file; the lock lives as long as this value.
    file: Flock<File>,
    /// The pid a stale file named when it was taken over, for the log.
    replaced: Option<u32>,
}

/// Why the pid file cannot be taken.
#[derive(Debug)]
pub enum PidFileError {
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

/// What a pid file says, for `stop`, `status` and `reload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
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

impl PidFile {
    /// Creates or takes over `path`, locks it and writes this process's pid into it.
    /// A stale file (unlocked) is taken over; [`PidFile::replaced`] names what it said.
    ///
    /// # Errors
    /// [`PidFileError`]: running already, not a pid file, or cannot be written.
    pub fn acquire(path: &Path) -> Result<Self, PidFileError> {
        let io_err = |path: &Path, source| PidFileError::Io {
            op: "write",
            path: path.to_path_buf(),
            source,
        };
        create_parent(path).map_err(|e| io_err(path, e))?;
        // The daemon removes its file at exit; a starter that opened it just before may lock
        // the removed inode, so check the lock is on what the path names, and try again.
        for _ in 0..LOCK_TRIES {
            let file = open(path, true).map_err(|e| open_error("write", path, e))?;
            let file = match lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((file, Errno::EWOULDBLOCK)) => {
                    let pid = read_pid(&file).map_err(|e| io_err(path, e))?;
                    match pid.filter(|&pid| alive(pid)) {
                        Some(pid) => {
                            return Err(PidFileError::Running {
                                path: path.to_path_buf(),
                                pid,
                            })
                        }
                        // A reader's brief shared lock, or a holder that is exiting.
                        None => {
                            std::thread::sleep(LOCK_RETRY);
                            continue;
                        }
                    }
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
        Err(io_err(
            path,
            io::Error::new(io::ErrorKind::WouldBlock, "its lock stayed busy; try again"),
        ))
    }

    /// The pid a stale file named when [`acquire`](Self::acquire) took it over.
    pub fn replaced(&self) -> Option<u32> {
        self.replaced
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file: this pid, then one `name addr` line per listener. Written over
    /// the old contents from offset 0 before truncating, so a reader never sees it empty.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn record(&mut self, listeners: &[(String, SocketAddr)]) -> io::Result<()> {
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

/// Reads what `path` says about the daemon.
///
/// # Errors
/// [`PidFileError`] when the file exists but cannot be read or is not a pid file.
pub fn inspect(path: &Path) -> Result<PidState, PidFileError> {
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
                // A daemon writes its pid right after locking; give it that moment.
                match read_pid(&held).ok().flatten() {
                    Some(pid) if alive(pid) => return Ok(PidState::Running { pid }),
                    _ => file = held,
                }
            }
            Err((_, errno)) => return Err(fail("lock", errno.into())),
        }
        std::thread::sleep(LOCK_RETRY);
    }
    Err(fail(
        "read",
        io::Error::other("it is locked but names no live process; is a pushman starting?"),
    ))
}

/// The listener address recorded as `name addr` in the pid file.
pub fn recorded_addr(path: &Path, name: &str) -> Option<SocketAddr> {
    let file = open(path, false).ok()?;
    read_text(&file)
        .ok()??
        .lines()
        .skip(1)
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: Z is a zombie, X is dead.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Creates the directories above `path`. The error names the one that failed and says
/// why in plain words (`create_dir_all` reports a file in the way as "File exists").
pub(crate) fn create_parent(path: &Path) -> io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    fs::create_dir_all(dir).map_err(|e| {
        let blocker = dir
            .ancestors()
            .find(|a| fs::symlink_metadata(a).is_ok_and(|m| !m.is_dir()));
        let reason = match blocker {
            Some(file) => format!("{} is a file, not a directory", file.display()),
            None => format!("cannot create directory {}: {e}", dir.display()),
        };
        io::Error::new(e.kind(), reason)
    })
}

/// Opens `path` without following a final symlink (a planted `pushman.pid → /etc/passwd`
/// must not be written through) and without blocking (a FIFO must not hang `status`);
/// only regular files are accepted.
fn open(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .create(write)
        .mode(0o644)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Maps an open failure to the error that says what the path is.
fn open_error(op: &'static str, path: &Path, e: io::Error) -> PidFileError {
    let what = match e.raw_os_error() {
        Some(code) if code == Errno::ELOOP as i32 => Some("a symlink"),
        Some(code) if code == Errno::EISDIR as i32 => Some("a directory"),
        _ if e.kind() == io::ErrorKind::InvalidInput => Some("not a regular file"),
        _ => None,
    };
    match what {
        Some(what) => PidFileError::NotAPidFile {
            path: path.to_path_buf(),
            what,
        },
        None => PidFileError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// `flock` that hands the file back on failure.
#[allow(clippy::result_large_err)]
fn lock(file: File, how: FlockArg) -> Result<Flock<File>, (File, Errno)> {
    Flock::lock(file, how)
}

/// Whether `file` is what `path` names now (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The whole file from offset 0, or `None` if it is longer than [`MAX_LEN`].
fn read_text(file: &File) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = file.read_at(&mut buf, bytes.len() as u64)?;
        if n == 0 {
            return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
        bytes.extend_from_slice(&buf[..n]);
        if bytes.len() as u64 > MAX_LEN {
            return Ok(None);
        }
    }
}

fn read_pid(file: &File) -> io::Result<Option<u32>> {
    Ok(read_text(file)?.as_deref().and_then(parse_pid))
}

/// The first line as a pid: decimal digits only, not 0.
fn parse_pid(text: &str) -> Option<u32> {
    let line = text.lines().next()?.trim();
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    line.parse().ok().filter(|&pid| pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_digits_only_and_never_zero() {
        assert_eq!(parse_pid("123\nwebsocket 1.2.3.4:5\n"), Some(123));
        for bad in ["", "\n", "0\n", "-1\n", "+5\n", "12a\n", "[listen]\n"] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }
}

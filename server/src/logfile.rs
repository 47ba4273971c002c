//! The log file of `start -d`: stdout and stderr lead to it, and `reload` (SIGHUP or
//! SIGUSR1) reopens it, so logrotate's `mv` followed by `pushman reload` moves the daemon
//! onto a fresh file instead of writing into the rotated one forever.

use std::{fs::OpenOptions, io, path::PathBuf, sync::OnceLock};

/// Set once by a detached daemon; a foreground one logs to the terminal or journal and
/// has nothing to reopen.
static PATH: OnceLock<PathBuf> = OnceLock::new();

/// Records that stdout and stderr lead to `path`.
pub(crate) fn adopt(path: PathBuf) {
    let _ = PATH.set(path);
}

/// Reopens the log file (creating it if rotated away) onto stdout and stderr. Nothing to
/// do without a log file.
///
/// # Errors
/// When the file cannot be opened; stdout and stderr stay where they were.
pub(crate) fn reopen() -> io::Result<Option<&'static PathBuf>> {
    let Some(path) = PATH.get() else {
        return Ok(None);
    };
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    nix::unistd::dup2_stdout(&file)?;
    nix::unistd::dup2_stderr(&file)?;
    Ok(Some(path))
}

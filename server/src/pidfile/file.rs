//! File-level helpers: safe opening, bounded reads, pid parsing, process liveness.

use super::{PidFileError, MAX_LEN};
use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg, OFlag},
};
use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt},
    path::Path,
};

/// Whether process `pid` exists (and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
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
pub(super) fn open(path: &Path, write: bool) -> io::Result<File> {
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
pub(super) fn open_error(op: &'static str, path: &Path, e: io::Error) -> PidFileError {
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
pub(super) fn lock(file: File, how: FlockArg) -> Result<Flock<File>, (File, Errno)> {
    Flock::lock(file, how)
}

/// Whether `file` is what `path` names now (same device and inode).
pub(super) fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The whole file from offset 0, or `None` if it is longer than [`MAX_LEN`].
pub(super) fn read_text(file: &File) -> io::Result<Option<String>> {
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

pub(super) fn read_pid(file: &File) -> io::Result<Option<u32>> {
    Ok(read_text(file)?.as_deref().and_then(parse_pid))
}

/// The first line as a pid: decimal digits only, not 0.
pub(super) fn parse_pid(text: &str) -> Option<u32> {
    let line = text.lines().next()?.trim();
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    line.parse().ok().filter(|&pid| pid > 0)
}

/// The pids holding an exclusive `flock` on `file`, from `/proc/locks` (the kernel's own
/// record, in this pid namespace), or `None` where that cannot be read.
pub(super) fn flock_holders(file: &File) -> Option<Vec<u32>> {
    let ino = file.metadata().ok()?.ino();
    let locks = fs::read_to_string("/proc/locks").ok()?;
    // "3: FLOCK  ADVISORY  WRITE 22149 fe:00:10010727 0 EOF"; waiters read "3: -> FLOCK …".
    Some(
        locks
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let (kind, mode, pid, id) = (f.get(1)?, f.get(3)?, f.get(4)?, f.get(5)?);
                let file_ino: u64 = id.rsplit(':').next()?.parse().ok()?;
                (*kind == "FLOCK" && *mode == "WRITE" && file_ino == ino)
                    .then(|| pid.parse().ok())
                    .flatten()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_names_the_holder_of_a_flock() {
        let path = std::env::temp_dir().join(format!("pushman-flock-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let locked = lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(flock_holders(&locked), Some(vec![std::process::id()]));
        drop(locked);
        assert_eq!(flock_holders(&File::open(&path).unwrap()), Some(vec![]));
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn pids_are_digits_only_and_never_zero() {
        assert_eq!(parse_pid("123\nwebsocket 1.2.3.4:5\n"), Some(123));
        for bad in ["", "\n", "0\n", "-1\n", "+5\n", "12a\n", "[listen]\n"] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }
}

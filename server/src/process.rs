//! The command line's side of the daemon: `start -d`, and signals to a running daemon
//! (`stop`, `reload`), plus a minimal HTTP GET for `status`. The pid file is [`super::pidfile`].

use super::pidfile::alive;
pub(crate) use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::{
    fs,
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

/// Sends `signal` to `pid`. Callers check the pid file's lock first
/// ([`pidfile::inspect`](super::pidfile::inspect)): a bare pid may name any program.
///
/// # Errors
/// When the process does not exist or may not be signalled.
pub(crate) fn signal(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal).map_err(io::Error::from)
}

/// Waits until `pid` has exited, up to `limit`; returns whether it did.
pub(crate) fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Starts `exe args` in the background: stdin from /dev/null, stdout and stderr appended
/// to `log`. The child leaves the terminal's session itself ([`detach`]), so no `pre_exec`
/// (and no `unsafe`) is needed here. Returns the child's pid.
///
/// # Errors
/// When the log cannot be opened (the error names it) or the process cannot start.
pub(crate) fn spawn_detached(exe: &Path, args: &[String], log: &Path) -> io::Result<u32> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot open log file {}: {e}", log.display()),
        )
    };
    super::pidfile::create_parent(log).map_err(named)?;
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(named)?;
    let err = out.try_clone()?;
    let child = std::process::Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", exe.display())))?;
    Ok(child.id())
}

/// Called first thing in a `start -d` child: a new session, so the terminal's hangup and
/// Ctrl-C never reach the daemon.
///
/// # Errors
/// `setsid` fails only for a process group leader, which a spawned child is not.
pub(crate) fn detach() -> io::Result<()> {
    nix::unistd::setsid().map(drop).map_err(io::Error::from)
}

/// Whether stdout and stderr lead to the same place (one terminal, one log file, one
/// journal stream), where a line on each would show twice.
pub(crate) fn stdout_is_stderr() -> bool {
    use nix::sys::stat::fstat;
    match (fstat(io::stdout()), fstat(io::stderr())) {
        (Ok(out), Ok(err)) => out.st_dev == err.st_dev && out.st_ino == err.st_ino,
        _ => false,
    }
}

/// `GET path` on the HTTP API with an optional bearer secret; returns status and body.
///
/// # Errors
/// When the API cannot be reached or answers garbage.
pub(crate) fn http_get(addr: SocketAddr, path: &str, secret: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = if secret.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {secret}\r\n")
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let body_start = match response.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(bad("malformed HTTP response")),
    };
    let status = response.code.ok_or_else(|| bad("no status"))?;
    Ok((
        status,
        String::from_utf8_lossy(&raw[body_start..]).into_owned(),
    ))
}

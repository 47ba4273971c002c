//! The command line's side of the daemon: the pid file, `start -d`, and signals to a
//! running daemon (`stop`, `reload`), plus a minimal HTTP GET for `status`.

use std::{
    fs,
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

/// The pid recorded in `path` (its first line), if that process is alive.
pub fn running_pid(path: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// The listener addresses recorded in the pid file after the pid (`name addr` lines), so
/// `status` finds the HTTP API even when it was bound to port 0.
pub fn recorded_addr(path: &Path, name: &str) -> Option<SocketAddr> {
    fs::read_to_string(path)
        .ok()?
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

/// Writes this process's pid and its listeners to `path` (atomically, via a temporary
/// file).
///
/// # Errors
/// When the file cannot be written.
pub fn write_pid(path: &Path, listeners: &[(String, SocketAddr)]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut text = format!("{}\n", std::process::id());
    for (name, addr) in listeners {
        text.push_str(&format!("{name} {addr}\n"));
    }
    let tmp = path.with_extension("pid.tmp");
    fs::write(&tmp, text)?;
    fs::rename(tmp, path)
}

/// Removes `path` if it names this process.
pub fn remove_pid(path: &Path) {
    let ours = fs::read_to_string(path).is_ok_and(|s| {
        s.lines()
            .next()
            .is_some_and(|l| l.trim() == std::process::id().to_string())
    });
    if ours {
        let _ = fs::remove_file(path);
    }
}

/// Sends `signal` to `pid`.
///
/// # Errors
/// When the process does not exist or may not be signalled.
pub fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits until `pid` has exited, up to `limit`; returns whether it did.
pub fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Starts `exe args` detached: a new session, stdin from /dev/null, stdout and stderr
/// appended to `log`. Returns the child's pid.
///
/// # Errors
/// When the log cannot be opened or the process cannot start.
pub fn spawn_detached(exe: &Path, args: &[String], log: &Path) -> io::Result<u32> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut command = std::process::Command::new(exe);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok(child.id())
}

/// `GET path` on the HTTP API with an optional bearer secret; returns status and body.
///
/// # Errors
/// When the API cannot be reached or answers garbage.
pub fn http_get(addr: SocketAddr, path: &str, secret: &str) -> io::Result<(u16, String)> {
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

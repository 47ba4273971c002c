//! What the harness reads from the OS: a process's RSS and CPU time, and the open-files limit.

use std::{fs, time::Instant};

/// Resident set size of `pid` in bytes (`VmRSS` in /proc/PID/status).
pub fn rss_bytes(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime of `pid` ("self" for this process), in clock ticks (/proc/PID/stat fields 14, 15).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field k is at index k - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// CPU share of one process over a phase: ticks used / wall time, in fractions of one core.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    pid: String,
    ticks: Option<u64>,
    since: Instant,
}

impl CpuMeter {
    /// Starts measuring `pid` ("self" for this process) now.
    pub fn start(pid: &str) -> Self {
        Self {
            pid: pid.to_string(),
            ticks: cpu_ticks(pid),
            since: Instant::now(),
        }
    }

    /// The share of one core used since `start` (0.25 = 25 %); `None` if /proc was unreadable.
    pub fn share(&self) -> Option<f64> {
        let used = cpu_ticks(&self.pid)?.checked_sub(self.ticks?)?;
        let wall = self.since.elapsed().as_secs_f64();
        Some(used as f64 / clock_ticks() / wall)
    }
}

/// Starts a non-blocking TCP connect from `source` (port 0: the kernel picks one) to `dest`
/// (mio 1 has no `TcpSocket`, and std cannot bind before connecting).
pub fn connect_from(
    source: std::net::Ipv4Addr,
    dest: std::net::SocketAddrV4,
) -> std::io::Result<mio::net::TcpStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket we own; OwnedFd closes it on every error path below.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Let connect(2) choose the source port knowing the whole 4-tuple: with port 0 at bind
    // time the kernel searches for a port free on every destination, which grows with N.
    let one: libc::c_int = 1;
    // SAFETY: `one` is a c_int that outlives the call; the size passed is its size.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let src = sockaddr(source, 0);
    // SAFETY: `src` is a valid sockaddr_in of `len` bytes that outlives the call.
    if unsafe { libc::bind(fd, (&src as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let dst = sockaddr(*dest.ip(), dest.port());
    // SAFETY: as above, for `dst`.
    if unsafe { libc::connect(fd, (&dst as *const libc::sockaddr_in).cast(), len) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    let std = std::net::TcpStream::from(owned);
    std.set_nodelay(true)?;
    Ok(mio::net::TcpStream::from_std(std))
}

/// The pushman daemon's `GET /status` at `addr` (`Connection: close`: the server closes after the
/// answer), or `null` if it cannot be read: the figures it feeds are then left out.
pub fn daemon_status(addr: std::net::SocketAddr) -> serde_json::Value {
    use std::io::{Read, Write};
    let read = || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        // The Host is the address: the daemon refuses names it does not know (DNS rebinding).
        let head = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes())?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    };
    read()
        .ok()
        .and_then(|t| t.split_once("\r\n\r\n").map(|(_, body)| body.to_string()))
        .and_then(|body| serde_json::from_str(&body).ok())
        .unwrap_or(serde_json::Value::Null)
}

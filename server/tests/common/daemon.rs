//! Running the real `pushman` binary in a temporary directory, on port 0.

use super::TIMEOUT;
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_pushman");

/// A scratch directory for one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pushman-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// Writes `pushman.toml` with port-0 listeners and files in this directory, plus `extra`.
    pub fn config(&self, extra: &str) -> PathBuf {
        let path = self.path("pushman.toml");
        let text = format!(
            "log_level = \"debug\"\n{extra}\n[listen]\nws = \"127.0.0.1:0\"\ntext = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\n[files]\npid = \"{}\"\nlog = \"{}\"\nstore = \"{}\"\n",
            self.path("pushman.pid").display(),
            self.path("pushman.log").display(),
            self.path("data/schedule.redb").display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A foreground `pushman start`, killed on drop.
pub struct Pushman {
    pub child: Child,
    pub ws: SocketAddr,
    pub text: SocketAddr,
    pub http: SocketAddr,
}

impl Pushman {
    /// `pushman start --config CONFIG`, waiting for its three listeners.
    pub fn start(config: &Path) -> Self {
        Self::spawn(Command::new(BIN), config)
    }

    /// As [`Pushman::start`], with `key=value` added to its environment.
    pub fn start_env(config: &Path, key: &str, value: &std::ffi::OsStr) -> Self {
        let mut command = Command::new(BIN);
        command.env(key, value);
        Self::spawn(command, config)
    }

    /// As [`Pushman::start`], under `prlimit --nofile=NOFILE` (soft and hard limit), so the
    /// pid is the server's own.
    pub fn start_nofile(config: &Path, nofile: u32) -> Self {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={nofile}")).arg(BIN);
        Self::spawn(command, config)
    }

    fn spawn(mut command: Command, config: &Path) -> Self {
        // The daemon's log goes beside its config, not into the test output.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("stderr.log"))
            .unwrap();
        let mut child = command
            .args(["start", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("run pushman");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((name, addr)) = line
                    .strip_prefix("pushman: ")
                    .and_then(|l| l.split_once(" on "))
                {
                    if let Ok(addr) = addr.parse::<SocketAddr>() {
                        let _ = tx.send((name.to_string(), addr));
                    }
                }
            }
        });
        let addr = |want: &str| {
            let (name, addr) = rx
                .recv_timeout(TIMEOUT)
                .expect("pushman did not print its listeners");
            assert_eq!(name, want);
            addr
        };
        let (ws, text, http) = (addr("websocket"), addr("text"), addr("http"));
        Self {
            child,
            ws,
            text,
            http,
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(self) {
        signal(self.child.id(), "TERM");
        self.stop_after_signal();
    }

    /// Waits for the clean exit a stop signal already sent asks for.
    pub fn stop_after_signal(mut self) {
        let status = wait(&mut self.child, Duration::from_secs(15)).expect("pushman did not stop");
        assert!(status.success(), "pushman exited with {status}");
    }
}

impl Drop for Pushman {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs `pushman ARGS` to completion (bounded by `TIMEOUT` via the commands' own limits).
pub fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run pushman")
}

/// Whether `pid` is a live process (not a zombie), read from `/proc` as the server does.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X']))
    })
}

/// The address the pid file at `path` records for listener `name` (lines `NAME ADDR` after
/// the pid).
pub fn recorded_addr(path: &Path, name: &str) -> Option<SocketAddr> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .skip(1)
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `GET path` on the HTTP API, with an optional bearer secret; status and body.
pub fn http_get(addr: SocketAddr, path: &str, secret: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
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
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let Ok(httparse::Status::Complete(body)) = response.parse(&raw) else {
        return Err(bad());
    };
    let code = response.code.ok_or_else(bad)?;
    Ok((code, String::from_utf8_lossy(&raw[body..]).into_owned()))
}

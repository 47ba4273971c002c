//! The `pushman` command line as an operator meets it: the locked pid file (issue 9 items
//! 9 and 10), reload's restart-only warning (11), CLI polish (13), the start-up log and the
//! open-files limit (12, 14).

mod common;

use common::{daemon::*, *};
use serde_json::Value;
use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// What a finished CLI run said.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `pushman ARGS` in `dir`, failing the test (not hanging it) if it runs past 20 s:
/// a `start` that should have failed would otherwise serve forever.
#[track_caller]
fn run(args: &[&str], dir: &Path) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pushman");
    let status = wait(&mut child, Duration::from_secs(20));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("pushman {args:?} did not finish within 20 s");
    }
    let mut out = Run {
        code: status.unwrap().code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::new(),
    };
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out.stderr)
        .unwrap();
    out
}

/// Asserts a failure: exit 1, exactly one line on stderr, containing every one of `want`.
#[track_caller]
fn assert_fails_with(out: &Run, want: &[&str]) {
    assert_eq!(
        out.code, 1,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "not one line: {:?}",
        out.stderr
    );
    for w in want {
        assert!(out.stderr.contains(w), "{:?} lacks {w:?}", out.stderr);
    }
}

/// A process that is certainly not pushman, killed on drop.
struct Bystander(Child);

impl Bystander {
    fn spawn() -> Self {
        Self(Command::new("sleep").arg("600").spawn().expect("run sleep"))
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pids of live processes whose command line mentions `needle` (a test's own directory).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Waits until `file` contains `needle` `count` times.
#[track_caller]
fn wait_for_log(file: &Path, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.matches(needle).count() >= count {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} x{count} never in {}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_9_stop_status_reload_refuse_a_pid_file_naming_another_program() {
    let dir = TempDir::new("cli-not-ours");
    let mut sleep = Bystander::spawn();
    let pid = sleep.0.id().to_string();
    std::fs::write(dir.path("p.pid"), format!("{pid}\n")).unwrap();
    for command in ["stop", "status", "reload"] {
        let out = run(&[command, "--pid-file", "p.pid"], &dir.0);
        assert_fails_with(
            &out,
            &[&pid, "p.pid", "not a running pushman", "not signalling"],
        );
        assert!(out.stdout.is_empty(), "{command}: {:?}", out.stdout);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        sleep.alive(),
        "stop signalled a process that is not pushman"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path("p.pid")).unwrap(),
        format!("{pid}\n"),
        "the pid file was changed"
    );
}

#[test]
fn issue_9_a_lock_held_by_one_process_does_not_vouch_for_the_pid_of_another() {
    let dir = TempDir::new("cli-lock-mismatch");
    let mut named = Bystander::spawn();
    std::fs::write(dir.path("p.pid"), format!("{}\n", named.0.id())).unwrap();
    // flock(1) holds the lock; the file names a different process.
    let mut holder = Bystander(
        Command::new("flock")
            .args(["-x", "p.pid", "sleep", "600"])
            .current_dir(&dir.0)
            .spawn()
            .expect("flock (util-linux) is needed for this test"),
    );
    let deadline = Instant::now() + TIMEOUT;
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .contains(&format!("WRITE {} ", holder.0.id()))
    {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&["stop", "--pid-file", "p.pid"], &dir.0);
    assert_fails_with(
        &out,
        &["p.pid", &format!("locked by pid {}", holder.0.id())],
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        named.alive() && holder.alive(),
        "stop signalled a bystander"
    );
}

#[test]
fn issue_9_a_stale_pid_file_does_not_block_start_and_stop_of_a_stopped_server_succeeds() {
    let dir = TempDir::new("cli-stale");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    let pid_file = dir.path("pushman.pid");
    // Not running: no pid file is "not running", exit 0 (LSB), and signals nobody.
    let out = run(&["stop", "--config", c], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("not running"), "{:?}", out.stdout);
    // A stale file naming a live non-pushman: start takes it over, the bystander lives on.
    let mut sleep = Bystander::spawn();
    std::fs::write(&pid_file, format!("{}\n", sleep.0.id())).unwrap();
    let p = Pushman::start(&config);
    let text = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(text.lines().next(), Some(p.child.id().to_string().as_str()));
    assert!(text.contains(&format!("websocket {}", p.ws)), "{text}");
    let log = wait_for_log(&dir.path("stderr.log"), "replaced stale pid file", 1);
    assert!(log.contains(&sleep.0.id().to_string()), "{log}");
    // The real one is recognised: a second start is refused, status works.
    let again = run(&["start", "--config", c], &dir.0);
    assert_fails_with(&again, &["already running", &p.child.id().to_string()]);
    let status = run(&["status", "--config", c], &dir.0);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let out = run(&["stop", "--config", c], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("stopped"), "{:?}", out.stdout);
    assert!(!pid_file.exists(), "stop left the pid file");
    assert!(sleep.alive());
    // A stale file naming a pid that has exited: stop says so and succeeds.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pid_file, format!("{gone_pid}\n")).unwrap();
    let out = run(&["stop", "--config", c], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("stale pid file") && out.stdout.contains(&gone_pid.to_string()),
        "{:?}",
        out.stdout
    );
}

#[test]
fn issue_9_pid_file_that_is_a_symlink_or_another_file_is_never_written() {
    let dir = TempDir::new("cli-pid-planted");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    let precious = dir.path("precious.txt");
    std::fs::write(&precious, "keep me\n").unwrap();
    std::os::unix::fs::symlink(&precious, dir.path("link.pid")).unwrap();
    let out = run(&["start", "--config", c, "--pid-file", "link.pid"], &dir.0);
    assert_fails_with(&out, &["link.pid", "symlink"]);
    let out = run(
        &["start", "--config", c, "--pid-file", "precious.txt"],
        &dir.0,
    );
    assert_fails_with(&out, &["precious.txt", "not a pid file"]);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
    // `status` must not hang on a FIFO nor read a device without end.
    let fifo = dir.path("fifo.pid");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for path in [fifo.to_str().unwrap(), "/dev/zero"] {
        let out = run(&["status", "--config", c, "--pid-file", path], &dir.0);
        assert_fails_with(&out, &[path, "not a regular file"]);
    }
}

#[test]
fn issue_10_an_unwritable_pid_file_fails_before_listening() {
    let dir = TempDir::new("cli-pid-unwritable");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    std::fs::write(dir.path("plain"), "").unwrap();
    let under_file = dir.path("plain/x.pid");
    let under = under_file.to_str().unwrap();
    // Foreground: exit 1 at once, naming the path, and nothing was announced.
    for pid in [under, dir.0.to_str().unwrap()] {
        let started = Instant::now();
        let out = run(&["start", "--config", c, "--pid-file", pid], &dir.0);
        assert_fails_with(&out, &[pid]);
        assert!(out.stdout.is_empty(), "it listened: {:?}", out.stdout);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // Detached: the same, and no daemon is left behind.
    let started = Instant::now();
    let out = run(&["start", "-d", "--config", c, "--pid-file", under], &dir.0);
    assert_fails_with(&out, &["failed to start", under]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let left = processes_mentioning(dir.0.to_str().unwrap());
    assert!(left.is_empty(), "left running: {left:?}");
}

/// A config with relative `[files]` paths, for `start -d` from `dir`.
fn relative_config(dir: &TempDir, ws: &str, http: &str, level: &str) {
    std::fs::write(
        dir.path("pushman.toml"),
        format!(
            "log_level = \"{level}\"\n[listen]\nws = \"{ws}\"\ntext = \"\"\nhttp = \"{http}\"\n[files]\npid = \"run/pushman.pid\"\nlog = \"pushman.log\"\nstore = \"data/schedule.redb\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn issue_11_reload_warns_about_restart_only_keys_when_and_only_when_they_changed() {
    let dir = TempDir::new("cli-reload");
    // The file's ws is a port no test can bind; the flag overrides it, and so must reload.
    relative_config(&dir, "127.0.0.1:1", "127.0.0.1:0", "debug");
    let out = run(&["start", "-d", "--ws", "127.0.0.1:0"], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = dir.path("pushman.log");
    let reload = |n: usize| {
        let out = run(&["reload"], &dir.0);
        assert_eq!(out.code, 0, "{}", out.stderr);
        wait_for_log(&log, "reloaded", n)
    };
    let text = reload(1);
    assert!(!text.contains("take effect at restart"), "{text}");
    // A change reload applies: still no warning.
    relative_config(&dir, "127.0.0.1:1", "127.0.0.1:0", "info");
    let text = reload(2);
    assert!(!text.contains("take effect at restart"), "{text}");
    // A listener and a file changed: named, with old and new values.
    std::fs::write(
        dir.path("pushman.toml"),
        std::fs::read_to_string(dir.path("pushman.toml"))
            .unwrap()
            .replace("http = \"127.0.0.1:0\"", "http = \"127.0.0.1:9\"")
            .replace("pushman.log", "other.log"),
    )
    .unwrap();
    let text = reload(3);
    let warning = text
        .lines()
        .find(|l| l.contains("take effect at restart"))
        .unwrap_or_else(|| panic!("no warning:\n{text}"));
    assert!(
        warning.contains(r#"listen.http ("127.0.0.1:0" → "127.0.0.1:9")"#)
            && warning.contains("files.log")
            && warning.contains("other.log")
            && !warning.contains("listen.ws")
            && !warning.contains("files.pid"),
        "{warning}"
    );
    assert_eq!(text.matches("take effect at restart").count(), 1, "{text}");
    let out = run(&["stop"], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!dir.path("run/pushman.pid").exists());
}

#[test]
fn issue_13_connections_columns_line_up_under_their_headers() {
    let dir = TempDir::new("cli-columns");
    let config = dir.config("");
    let p = Pushman::start(&config);
    let long = "a-uid-much-longer-than-its-column-header-x";
    let mut tabs = Vec::new();
    for uid in [long, "b", "evil\u{1b}[2J"] {
        let mut ws = ws_connect(p.ws, "/");
        ws.send(tungstenite::Message::text(uid)).unwrap();
        ws.flush().unwrap();
        tabs.push(ws);
    }
    let c = config.to_str().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let text = loop {
        let out = run(&["connections", "--config", c], &dir.0);
        assert_eq!(out.code, 0, "{}", out.stderr);
        if out.stdout.contains(long) && out.stdout.contains("evil") {
            break out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "uids never listed:\n{}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!text.contains('\u{1b}'), "a uid reached the terminal raw");
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    // (name, left-aligned?): text starts under the header, numbers end under it.
    let columns = [
        ("id", false),
        ("peer", true),
        ("uid", true),
        ("protocol", true),
        ("bytes_in", false),
        ("bytes_out", false),
        ("sendbuf", false),
        ("age_s", false),
    ];
    let spans: Vec<(usize, usize, bool)> = columns
        .iter()
        .map(|(name, left)| {
            let start = header
                .match_indices(name)
                .map(|(i, _)| i)
                .find(|&i| {
                    header[i + name.len()..].starts_with([' ']) || i + name.len() == header.len()
                })
                .unwrap_or_else(|| panic!("no {name} in {header:?}"));
            (start, start + name.len(), *left)
        })
        .collect();
    assert_eq!(
        lines.len(),
        1 + 4,
        "3 browsers and this HTTP request:\n{text}"
    );
    for line in &lines {
        assert_eq!(line.len(), header.len(), "ragged:\n{text}");
        let b = line.as_bytes();
        for &(start, end, left) in &spans {
            if left {
                assert!(
                    b[start] != b' ' && (start == 0 || b[start - 1] == b' '),
                    "{line:?} at {start}\n{text}"
                );
            } else {
                assert!(
                    b[end - 1] != b' ' && (end == b.len() || b[end] == b' '),
                    "{line:?} at {end}\n{text}"
                );
            }
        }
    }
    let (uid_start, _, _) = spans[2];
    let uids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l[uid_start..].split(' ').next().unwrap())
        .collect();
    for want in [long, "b", "evil\\u{1b}[2J", "-"] {
        assert!(
            uids.contains(&want),
            "{want:?} not under uid: {uids:?}\n{text}"
        );
    }
}

#[test]
fn issue_13_token_refuses_what_the_server_would_refuse() {
    let dir = TempDir::new("cli-token");
    let config = dir.config("[auth]\nmode = \"token\"\nsecret = \"k3y\"\n");
    let c = config.to_str().unwrap();
    let token = |uid: &str, ttl: &str| run(&["token", uid, "--ttl", ttl, "--config", c], &dir.0);
    assert_fails_with(&token("", "60"), &["uid must not be empty"]);
    assert_fails_with(&token("alice", "0"), &["--ttl must be at least 1"]);
    assert_fails_with(
        &token("alice", &u64::MAX.to_string()),
        &["--ttl is too large"],
    );
    assert_fails_with(&token(&"u".repeat(800), "60"), &["too long", "1024"]);
    for uid in ["alice", &"u".repeat(256)] {
        let out = token(uid, "1");
        assert_eq!(out.code, 0, "{}", out.stderr);
        let minted = out.stdout.trim();
        assert!(pushman::push::token::verify(b"k3y", minted, 0).as_deref() == Ok(uid));
    }
}

#[test]
fn issue_13_log_file_under_a_regular_file_names_the_path() {
    let dir = TempDir::new("cli-logfile");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    std::fs::write(dir.path("plain"), "").unwrap();
    let log = dir.path("plain/x.log");
    let log = log.to_str().unwrap();
    let out = run(&["start", "-d", "--config", c, "--log-file", log], &dir.0);
    assert_fails_with(&out, &["cannot open log file", log]);
    assert!(processes_mentioning(dir.0.to_str().unwrap()).is_empty());
}

#[test]
fn issue_12_start_announces_each_listener_once_and_stop_counts_in_the_singular() {
    let dir = TempDir::new("cli-once");
    let config = dir.config("");
    let c = config.to_str().unwrap();
    // Foreground: one log line per listener; stdout (a pipe here) has the address lines.
    let p = Pushman::start(&config);
    let tab = ws_connect(p.ws, "/");
    let (ws, text, http) = (p.ws, p.text, p.http);
    p.stop();
    drop(tab);
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    for addr in [ws, text, http] {
        assert_eq!(log.matches(&addr.to_string()).count(), 1, "{addr}:\n{log}");
    }
    assert!(log.contains("closing 1 connection\n"), "{log}");
    // Detached: the log is stdout and stderr at once; each address appears once in it.
    let out = run(&["start", "-d", "--config", c], &dir.0);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let http = recorded_addr(&dir.path("pushman.pid"), "http").unwrap();
    let _tabs: Vec<Ws> = (0..2)
        .map(|_| {
            let ws_addr = recorded_addr(&dir.path("pushman.pid"), "websocket").unwrap();
            ws_connect(ws_addr, "/")
        })
        .collect();
    wait_until_connections(http, 2);
    assert_eq!(run(&["stop", "--config", c], &dir.0).code, 0);
    let log = std::fs::read_to_string(dir.path("pushman.log")).unwrap();
    assert_eq!(log.matches("listening on").count(), 3, "{log}");
    assert_eq!(log.matches(&http.to_string()).count(), 1, "{log}");
    assert!(log.contains("closing 2 connections"), "{log}");
}

/// Waits until the daemon counts `n` WebSocket connections.
fn wait_until_connections(http: SocketAddr, n: u64) {
    let deadline = Instant::now() + TIMEOUT;
    while status(http)["connections"] != n {
        assert!(Instant::now() < deadline, "never {n} connections");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(http: SocketAddr) -> Value {
    let (code, body) = http_get(http, "/status", "").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `prlimit --nofile=SOFT:HARD pushman start --config CONFIG`, and its HTTP address.
fn start_limited(config: &Path, nofile: &str) -> (Child, SocketAddr) {
    let log = std::fs::File::create(config.with_file_name("stderr.log")).unwrap();
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}"))
        .args([BIN, "start", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("prlimit (util-linux) is needed for this test");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let http = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("pushman: http on ")?.parse().ok())
        .expect("pushman did not announce its HTTP API");
    (child, http)
}

#[test]
fn issue_14_the_open_files_limit_is_raised_and_a_shortfall_is_named() {
    let dir = TempDir::new("cli-nofile");
    // The default max_connections (100,000) cannot fit under a hard limit of 4,096.
    let config = dir.config("");
    let (mut child, http) = start_limited(&config, "256:4096");
    let s = status(http);
    assert_eq!(s["open_files"]["limit"], 4096, "{s}");
    assert_eq!(s["open_files"]["hard_limit"], 4096, "{s}");
    assert!(
        s["open_files"]["open"]
            .as_u64()
            .is_some_and(|n| n > 3 && n < 100),
        "{s}"
    );
    let out = run(&["status", "--config", config.to_str().unwrap()], &dir.0);
    assert!(
        out.stdout.contains("of 4096 (hard limit 4096)"),
        "{}",
        out.stdout
    );
    signal(child.id(), "TERM");
    assert!(wait(&mut child, Duration::from_secs(15)).is_some_and(|s| s.success()));
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    assert!(
        log.contains("open files limit raised from 256 to 4096"),
        "{log}"
    );
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("max_connections = 100000"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("4096"), "{}", warnings[0]);

    // A configuration that fits says nothing.
    let config = dir.config("[limits]\nmax_connections = 1000\n");
    let (mut child, _) = start_limited(&config, "256:4096");
    signal(child.id(), "TERM");
    assert!(wait(&mut child, Duration::from_secs(15)).is_some_and(|s| s.success()));
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    assert!(log.contains("raised from 256 to 4096"), "{log}");
    assert!(!log.contains("max_connections ="), "{log}");
}

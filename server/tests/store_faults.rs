//! The store of scheduled pushes under faults, against the real binary: a damaged file, a
//! second instance on the same file, a full disk (a 1 MiB tmpfs), and the bounds of
//! `delay`/`at`.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Read},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

#[track_caller]
fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

fn bind(p: &Pushman, uid: &str) -> Ws {
    let mut ws = ws_connect(p.ws, "/");
    ws.send(tungstenite::Message::text(uid)).unwrap();
    ws.flush().unwrap();
    let mut api = tcp_connect(p.text);
    let deadline = Instant::now() + TIMEOUT;
    while command(&mut api, json!({"cmd":"online","uid":uid}))["connections"] == 0 {
        assert!(Instant::now() < deadline, "uid {uid} never came online");
        std::thread::sleep(Duration::from_millis(10));
    }
    ws
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `GET /status`, the store part.
fn store_status(p: &Pushman) -> Value {
    let mut resp = ureq::get(&format!("http://{}/status", p.http))
        .call()
        .expect("GET /status");
    let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    status["store"].clone()
}

/// Every text message `ws` receives until `until`, with when it arrived.
fn texts_until(ws: &mut Ws, until: Instant) -> Vec<(String, Instant)> {
    let mut got = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() else {
            unreachable!("plain TCP")
        };
        if left.is_zero() {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            return got;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => got.push((t.to_string(), Instant::now())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("WebSocket read failed: {e}"),
        }
    }
}

/// How a `pushman start` ended within [`TIMEOUT`].
enum Start {
    /// It exited: the code and what it wrote to stderr.
    Refused(Option<i32>, String),
    /// It printed its listeners (and was then killed).
    Served,
}

/// Runs `pushman start --config CONFIG` until it exits or serves.
fn try_start(config: &Path) -> Start {
    let mut child = Command::new(BIN)
        .args(["start", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pushman");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    // A server prints its listeners; a refused start closes stdout and exits.
    let served = stdout.read_line(&mut first).unwrap_or(0) > 0;
    if served {
        let _ = child.kill();
        let _ = child.wait();
        return Start::Served;
    }
    let status = wait(&mut child, TIMEOUT).expect("pushman neither served nor exited");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // Log lines (`[time LEVEL] ...`, e.g. the open-files warning) are not the refusal.
    let err: String = err
        .lines()
        .filter(|l| !l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    Start::Refused(status.code(), err)
}

/// A stopped server's store holding `n` scheduled pushes of about 1 KB (several pages).
fn stopped_store(dir: &TempDir, n: usize) -> PathBuf {
    let p = Pushman::start(&dir.config(""));
    let mut api = tcp_connect(p.text);
    for i in 0..n {
        let r = command(
            &mut api,
            json!({"cmd":"push","uid":"u","data":format!("{i:04}{}", "x".repeat(1000)),"delay":3600}),
        );
        assert_eq!(r["ok"], true, "{r}");
    }
    p.stop();
    dir.path("data/schedule.redb")
}

#[test]
fn issue_9_a_damaged_store_refuses_to_start_with_one_line_and_never_panics() {
    let dir = TempDir::new("corrupt");
    let store = stopped_store(&dir, 40);
    let config = dir.path("pushman.toml");
    let clean = std::fs::read(&store).unwrap();
    let pages = clean.len() / 4096;
    assert!(pages >= 8, "store too small to test: {pages} pages");
    let (mut refused, mut served) = (0, 0);
    for page in [2, 0, 1, 3, 4, 5, 6, 7, pages - 1] {
        let mut bytes = clean.clone();
        for b in &mut bytes[page * 4096..page * 4096 + 64] {
            *b ^= 0xa5;
        }
        std::fs::write(&store, &bytes).unwrap();
        let offset = page * 4096;
        match try_start(&config) {
            Start::Refused(code, err) => {
                refused += 1;
                assert_eq!(code, Some(1), "offset {offset}: {err}");
                assert!(!err.contains("panicked"), "offset {offset}: {err}");
                let lines: Vec<&str> = err.lines().collect();
                assert_eq!(lines.len(), 1, "offset {offset}: {err}");
                let path = store.display().to_string();
                assert!(
                    lines[0].starts_with("pushman: cannot open the schedule store: ")
                        && lines[0].contains(&path)
                        && lines[0].contains("damaged")
                        && lines[0].contains("pushman store check")
                        && lines[0].contains("move the file aside"),
                    "offset {offset}: {err}"
                );
                let check = cli(
                    &["store", "check", "--config", config.to_str().unwrap()],
                    &dir.0,
                );
                let err = String::from_utf8_lossy(&check.stderr);
                assert_eq!(check.status.code(), Some(1), "offset {offset}: {err}");
                assert!(err.contains(&path) && err.contains("damaged"), "{err}");
                assert!(!err.contains("panicked"), "{err}");
            }
            Start::Served => {
                // An unused page: the server started, and every entry is intact.
                served += 1;
                std::fs::write(&store, &bytes).unwrap();
                let check = cli(
                    &["store", "check", "--config", config.to_str().unwrap()],
                    &dir.0,
                );
                let out = String::from_utf8_lossy(&check.stdout);
                assert!(check.status.success(), "offset {offset}: {check:?}");
                assert!(
                    out.contains("ok") && out.contains(" 40 scheduled pushes"),
                    "{out}"
                );
            }
        }
    }
    // The header (offset 0) and the pages the tree uses are refused.
    assert!(refused >= 3, "{refused} refused, {served} served");
}

#[test]
fn issue_9_store_check_reports_a_healthy_store_and_a_running_owner() {
    let dir = TempDir::new("check");
    stopped_store(&dir, 3);
    let config = dir.path("pushman.toml");
    let c = config.to_str().unwrap();
    let out = cli(&["store", "check", "--config", c], &dir.0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("ok, every page verified, 3 scheduled pushes"),
        "{text}"
    );
    let _p = Pushman::start(&config);
    let out = cli(&["store", "check", "--config", c], &dir.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("is in use, by a running pushman"), "{err}");
}

#[test]
fn issue_9_a_second_instance_on_the_same_store_names_the_file() {
    let dir = TempDir::new("second");
    let _first = Pushman::start(&dir.config(""));
    // Its own pid file and ports, the same store.
    let second = dir.path("second.toml");
    let store = dir.path("data/schedule.redb");
    std::fs::write(
        &second,
        format!(
            "[listen]\nws = \"127.0.0.1:0\"\ntext = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\n[files]\npid = \"{}\"\nlog = \"{}\"\nstore = \"{}\"\n",
            dir.path("second.pid").display(),
            dir.path("second.log").display(),
            store.display()
        ),
    )
    .unwrap();
    let Start::Refused(code, err) = try_start(&second) else {
        panic!("a second pushman started on the same store");
    };
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{} (files.store) is locked", store.display()))
            && err.contains("another pushman probably uses it"),
        "{err}"
    );
}

#[test]
fn issue_9_delay_and_at_are_bounded_and_a_past_at_is_an_immediate_push() {
    let dir = TempDir::new("bounds");
    let p = Pushman::start(&dir.config(""));
    let mut tab = bind(&p, "b");
    let mut api = tcp_connect(p.text);
    let year = 365 * 24 * 3600;
    for (when, error) in [
        (
            json!({"delay": 1e12}),
            "delay must be at most 31536000 s (365 days)",
        ),
        (
            json!({"delay": year as f64 + 60.0}),
            "delay must be at most 31536000 s (365 days)",
        ),
        (
            json!({"at": (unix_ms() / 1000 + year + 60) as f64}),
            "at must be at most 365 days (31536000 s) from now",
        ),
    ] {
        let mut cmd = json!({"cmd":"push","uid":"b","data":"too late"});
        cmd.as_object_mut()
            .unwrap()
            .extend(when.as_object().unwrap().clone());
        let r = command(&mut api, cmd);
        assert_eq!(r, json!({"ok": false, "error": error}));
    }
    // Just inside the bound: scheduled.
    let r = command(
        &mut api,
        json!({"cmd":"push","uid":"b","data":"in a year","delay": year - 60}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["id"].is_u64() && r["at_ms"].is_u64(), "{r}");
    // A past `at` (and `delay: 0`) is an immediate push: a receipt, delivered now.
    for when in [json!({"at": 1.0}), json!({"delay": 0})] {
        let mut cmd = json!({"cmd":"push","uid":"b","data":"now"});
        cmd.as_object_mut()
            .unwrap()
            .extend(when.as_object().unwrap().clone());
        let r = command(&mut api, cmd);
        assert_eq!(
            r,
            json!({"ok": true, "receipt": {"sent": 1, "offline": [], "dropped": 0, "closing": 0, "queued": []}})
        );
        assert_eq!(ws_read_text(&mut tab), "now");
    }
    let pending = command(&mut api, json!({"cmd":"scheduled"}));
    assert_eq!(pending["pending"], 1, "{pending}");
}

/// A 1 MiB tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it, or fails the test: this test needs root and must not pass without running.
    fn mount(dir: PathBuf) -> Self {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
        assert_eq!(
            uid, "0",
            "this test mounts a 1 MiB tmpfs and needs root (CI runs as root); to skip it, run \
             `cargo test -- --skip issue_9_disk_full`"
        );
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (to skip this test: `cargo test -- --skip issue_9_disk_full`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir)
    }

    /// Fills the file system with `fill`; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("fill");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(e) = std::io::Write::write_all(&mut file, &chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                return path;
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Polls `/status` until the store's health is `healthy`; returns the last store object.
#[track_caller]
fn wait_health(p: &Pushman, healthy: bool, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = store_status(p);
        if s["healthy"] == healthy {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "store never became healthy={healthy}: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn issue_9_disk_full_refuses_clearly_delivers_once_and_recovers_without_restart() {
    let dir = TempDir::new("diskfull");
    let disk = Tmpfs::mount(dir.path("data"));
    let p = Pushman::start(&dir.config(""));
    let mut tab = bind(&p, "df");
    let mut api = tcp_connect(p.text);

    // The issue's scenario: a push due in 2.5 s, the disk fills, a 3 KB push is refused.
    let r = command(
        &mut api,
        json!({"cmd":"push","uid":"df","data":"due-once","delay":2.5}),
    );
    let due_at = r["at_ms"].as_u64().expect("scheduled");
    let fill = disk.fill();
    let r = command(
        &mut api,
        json!({"cmd":"push","uid":"df","data":"x".repeat(3000),"delay":60}),
    );
    assert_eq!(r["ok"], false, "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.starts_with("store unavailable: ") && error.contains("No space left"),
        "{r}"
    );
    // Down: scheduling and cancel are refused (never an ack), and status says so. The
    // store retries its file 1 s after a fault, and a reopen needs no free space, so each
    // check follows a refused push (a fresh fault, if it had reopened).
    let refused = |api: &mut TcpStream| {
        let r = command(
            api,
            json!({"cmd":"push","uid":"df","data":"x".repeat(3000),"delay":1}),
        );
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("store unavailable: "),
            "{r}"
        );
    };
    refused(&mut api);
    let r = command(&mut api, json!({"cmd":"cancel","id":999_999}));
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("store unavailable: "),
        "{r}"
    );
    let s = store_status(&p);
    assert_eq!(s["healthy"], false, "{s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("No space left"),
        "{s}"
    );
    refused(&mut api);
    let metrics = ureq::get(&format!("http://{}/metrics", p.http))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("\npushman_store_healthy 0\n"), "{metrics}");
    refused(&mut api);
    let status = cli(
        &[
            "status",
            "--config",
            dir.path("pushman.toml").to_str().unwrap(),
        ],
        &dir.0,
    );
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("store DOWN for"), "{table}");

    // Its time passes with the disk still full. The store reopens as soon as it can
    // (a reopen needs no new space), so it may be sent now or after the space is freed,
    // but exactly once either way.
    let wait = (due_at + 500).saturating_sub(unix_ms());
    let mut got = texts_until(&mut tab, Instant::now() + Duration::from_millis(wait));

    std::fs::remove_file(&fill).unwrap();
    let s = wait_health(&p, true, 2 * TIMEOUT);
    assert_eq!(s["reopen_attempts"], 0, "{s}");

    // Over the next few seconds, nothing more: the due push arrived exactly once.
    got.extend(texts_until(
        &mut tab,
        Instant::now() + Duration::from_secs(4),
    ));
    let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["due-once"]);
    assert!(unix_ms() >= due_at);

    // Scheduling and cancel work again, without a restart.
    let r = command(
        &mut api,
        json!({"cmd":"push","uid":"df","data":"after","delay":0.5}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let c = command(
        &mut api,
        json!({"cmd":"push","uid":"df","data":"cancelled","delay":30}),
    );
    let cancel = command(&mut api, json!({"cmd":"cancel","id":c["id"]}));
    assert_eq!(cancel, json!({"ok": true, "cancelled": true}));
    assert_eq!(ws_read_text(&mut tab), "after");
    assert_eq!(command(&mut api, json!({"cmd":"scheduled"}))["pending"], 0);
    let metrics = ureq::get(&format!("http://{}/metrics", p.http))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("\npushman_store_healthy 1\n"), "{metrics}");

    // A removal that fails after delivery is not reproducible here: redb reuses pages it
    // already wrote, so it needs no new space. `push::store`'s unit tests inject that fault
    // (a_failed_removal_is_never_due_again_and_is_removed_after_the_reopen).

    // Logged once per state change, not once per tick.
    drop(p);
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    let failed = log
        .matches("scheduling and cancel are refused until it reopens")
        .count();
    let reopened = log.matches("reopened after").count();
    assert!(failed >= 1 && failed == reopened && failed <= 5, "{log}");
}

/// An entry whose payload is not JSON (written by hand, or by a buggy older version) is
/// dropped once, with its id, and the entries behind it are still delivered on time.
#[test]
fn issue_9_an_unreadable_entry_is_dropped_once_and_does_not_block_the_rest() {
    use redb::{ReadableDatabase as _, ReadableTable as _};
    const PUSHES: redb::TableDefinition<'_, (u64, u64), &[u8]> =
        redb::TableDefinition::new("pushes");
    let dir = TempDir::new("unreadable");
    let config = dir.config("");
    let p = Pushman::start(&config);
    let mut api = tcp_connect(p.text);
    let bad = command(
        &mut api,
        json!({"cmd":"push","uid":"u","data":"bad","delay":4}),
    );
    let good = command(
        &mut api,
        json!({"cmd":"push","uid":"u","data":"good","delay":4.2}),
    );
    assert!(bad["ok"] == true && good["ok"] == true, "{bad} {good}");
    p.stop();
    {
        let db = redb::Database::open(dir.path("data/schedule.redb")).unwrap();
        let key = {
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(PUSHES).unwrap();
            let first = table.first().unwrap().expect("two entries").0.value();
            first
        };
        assert_eq!(key.1, bad["id"].as_u64().unwrap());
        let txn = db.begin_write().unwrap();
        txn.open_table(PUSHES)
            .unwrap()
            .insert(key, &b"not json"[..])
            .unwrap();
        txn.commit().unwrap();
    }
    let p = Pushman::start(&config);
    let mut tab = bind(&p, "u");
    let due = good["at_ms"].as_u64().unwrap();
    let got = texts_until(
        &mut tab,
        Instant::now() + Duration::from_millis(due.saturating_sub(unix_ms()) + 1500),
    );
    let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["good"]);
    let mut resp = ureq::get(&format!("http://{}/status", p.http))
        .call()
        .unwrap();
    let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status["scheduled_unreadable"], 1, "{status}");
    assert_eq!(status["scheduled_pending"], 0, "{status}");
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap_or_default();
    assert_eq!(log.matches("is unreadable").count(), 1, "{log}");
}

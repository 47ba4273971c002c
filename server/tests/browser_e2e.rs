//! The demo page and pushman.js in headless Chromium (Debian's package, driven by
//! playwright-core), against the real binary: the page's own backend snippets (run by `php`
//! and `sh`/curl) push to it on the server's real ports, it survives a `kill -9` and restart,
//! a kicked tab and a refused token stop for good, `getToken` refreshes an expired token, and
//! backoff grows while connections keep failing. Saves a screenshot.
//!
//! These tests are `#[ignore]`d so a plain `cargo test` on a machine without a browser says
//! so; the README's test command (`cargo test -- --include-ignored`, what `.ci/run` runs)
//! runs them, and they fail, naming what is missing, when a prerequisite is absent.

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a stopped client is watched for a reconnect that must not come.
const QUIET: Duration = Duration::from_secs(5);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Fails the test, naming what is missing, unless every prerequisite is there.
fn require_prerequisites() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!(
            "Chromium (nothing at {chromium}; apt-get install chromium)"
        ));
    }
    for tool in ["php", "curl", "node"] {
        if Command::new(tool).arg("--version").output().is_err() {
            missing.push(format!("{tool} (apt-get install php-cli curl nodejs npm)"));
        }
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        missing.push("playwright-core (npm ci --prefix server/tests/e2e)".into());
    }
    assert!(
        missing.is_empty(),
        "the browser test cannot run; missing: {}",
        missing.join(", ")
    );
}

/// The node driver (server/tests/e2e/driver.mjs), one command and one answer per line.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Self {
        Self::start_with("")
    }

    /// With more Chromium flags (space-separated).
    fn start_with(chromium_args: &str) -> Self {
        require_prerequisites();
        let mut child = Command::new("node")
            .arg(e2e_dir().join("driver.mjs"))
            .env("CHROMIUM_EXTRA_ARGS", chromium_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the browser driver did not start");
        Self {
            child,
            stdin,
            stdout,
        }
    }

    #[track_caller]
    fn run(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        match line.trim_end().strip_prefix("ok ") {
            Some(answer) => answer.to_string(),
            None => panic!("browser: {command:?} failed: {line}"),
        }
    }

    /// A command whose answer is JSON.
    #[track_caller]
    fn json(&mut self, command: &str) -> Value {
        let answer = self.run(command);
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{command}: {answer}: {e}"))
    }

    /// The statuses the demo page went through, in order.
    fn statuses(&mut self) -> Vec<String> {
        let events = self.json("events");
        let events = events.as_array().expect("events is an array");
        events
            .iter()
            .map(|e| e[0].as_str().unwrap().into())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        if wait(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
        }
    }
}

/// The PHP backend snippet of the original push.php article, pointed at `text`.
fn php_push(dir: &TempDir, text: SocketAddr, percent: &str) -> String {
    let script = format!(
        "<?php\n$client = stream_socket_client('tcp://{text}', $errno, $errmsg, 1);\n\
         fwrite($client, json_encode(array('uid'=>'uid1','percent'=>'{percent}')).\"\\n\");\n\
         echo fread($client, 8192);\n"
    );
    run_php(dir, &script, None)
}

fn run_php(dir: &TempDir, script: &str, api_secret: Option<&str>) -> String {
    let path = dir.path("push.php");
    std::fs::write(&path, script).unwrap();
    let mut php = Command::new("php");
    php.arg(&path);
    if let Some(secret) = api_secret {
        php.env("PUSHMAN_API_SECRET", secret);
    }
    let out = php.output().expect("run php");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell snippet from the page (the curl one), as a user pasting it would.
fn run_sh(snippet: &str, api_secret: Option<&str>) -> String {
    let mut sh = Command::new("sh");
    sh.args(["-c", &format!("{snippet} --max-time 10")]);
    if let Some(secret) = api_secret {
        sh.env("PUSHMAN_API_SECRET", secret);
    }
    let out = sh.output().expect("run sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the page's element `id`.
#[track_caller]
fn page_text(browser: &mut Browser, id: &str) -> String {
    browser
        .json(&format!("text {id}"))
        .as_str()
        .unwrap()
        .to_string()
}

fn status_json(p: &Pushman) -> Value {
    status_at(p.http)
}

fn status_at(http: SocketAddr) -> Value {
    let mut resp = ureq::get(&format!("http://{http}/status"))
        .call()
        .expect("GET /status");
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

fn online(p: &Pushman, uid: &str) -> Value {
    let mut api = tcp_connect(p.text);
    let line = json!({"cmd": "online", "uid": uid}).to_string();
    serde_json::from_str(&request_line(&mut api, &line)).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn demo_page_receives_pushes_from_its_own_snippets_and_reconnects_after_a_restart() {
    let dir = TempDir::new("browser");
    let server = Pushman::start(&dir.config(""));
    let (ws, text, http) = (server.ws, server.text, server.http);
    let mut browser = Browser::start();
    browser.run(&format!("open http://{ws}/?uid=uid1&autoconnect=1"));
    assert_eq!(browser.run("status open"), "open (uid uid1)");

    // The page's snippets name the real ports (port 0 here, not 5678/2121), and `open`
    // means bound: the first push reaches the tab, no retry.
    let php = page_text(&mut browser, "snippet-php");
    assert!(php.contains(&format!("tcp://{text}")), "{php}");
    assert_eq!(run_php(&dir, &php, None), "ok\n", "{php}");
    browser.run(r#"see {"uid":"uid1","percent":"88%"}"#);
    let curl = page_text(&mut browser, "snippet-curl");
    assert!(
        curl.contains(&format!("http://{http}/push"))
            && curl.contains("Content-Type: application/json")
            && !curl.contains("Authorization"),
        "{curl}"
    );
    let receipt = run_sh(&curl, None);
    assert!(receipt.contains(r#""sent":1"#), "{curl}: {receipt}");
    browser.run("see hello from curl");

    // Kill the server; the page shows why it closed while it retries.
    server.kill9();
    let reconnecting = browser.run("status reconnecting");
    assert!(reconnecting.contains("(closed: 1006"), "{reconnecting}");
    let fixed = dir.path("fixed.toml");
    let config = std::fs::read_to_string(dir.path("pushman.toml")).unwrap();
    let config = config
        .replace("ws = \"127.0.0.1:0\"", &format!("ws = \"{ws}\""))
        .replace("text = \"127.0.0.1:0\"", &format!("text = \"{text}\""))
        .replace("http = \"127.0.0.1:0\"", &format!("http = \"{http}\""));
    std::fs::write(&fixed, config).unwrap();
    let _restarted = Pushman::start(&fixed);
    browser.run("status open");
    // Reconnected and bound again: the article's own snippet reaches it at once.
    assert_eq!(php_push(&dir, text, "99%"), "ok\n");
    browser.run(r#"see {"uid":"uid1","percent":"99%"}"#);
    assert_eq!(browser.run("count"), "3");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pushman-demo.png");
    browser.run(&format!("screenshot {}", shot.display()));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 1000,
        "empty screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn demo_page_snippets_carry_the_api_secret_and_push_to_the_tokens_uid() {
    let dir = TempDir::new("browser-token");
    let secret = "s3cret-api";
    let p = Pushman::start(&dir.config(&format!(
        "[auth]\nmode = \"token\"\nsecret = \"k3y\"\napi_secret = \"{secret}\"\n"
    )));
    let token = pushman::push::token::mint(b"k3y", "alice", unix_now() + 600);
    let mut browser = Browser::start();
    // The uid field still says uid1: the snippets must use the token's uid instead.
    browser.run(&format!(
        "open http://{}/?token={token}&autoconnect=1",
        p.ws
    ));
    assert_eq!(browser.run("status open"), "open (uid alice)");
    let html = browser.json("eval document.documentElement.outerHTML");
    assert!(
        !html.as_str().unwrap().contains(secret),
        "the page leaks api_secret"
    );

    let php = page_text(&mut browser, "snippet-php");
    assert!(
        php.contains("'uid'=>'alice'") && php.contains("'cmd'=>'auth'"),
        "{php}"
    );
    assert_eq!(run_php(&dir, &php, Some(secret)), "ok\n", "{php}");
    browser.run(r#"see {"uid":"alice","percent":"88%"}"#);
    let curl = page_text(&mut browser, "snippet-curl");
    assert!(
        curl.contains(r#"-H "Authorization: Bearer $PUSHMAN_API_SECRET""#),
        "{curl}"
    );
    let receipt = run_sh(&curl, Some(secret));
    assert!(receipt.contains(r#""sent":1"#), "{curl}: {receipt}");
    browser.run("see hello from curl");
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn a_kicked_tab_stops_with_4000_and_does_not_come_back() {
    let dir = TempDir::new("browser-kick");
    let p = Pushman::start(&dir.config(""));
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/?uid=kid&autoconnect=1", p.ws));
    browser.run("status open");
    let mut api = tcp_connect(p.text);
    let reply = request_line(&mut api, r#"{"cmd":"kick","uid":"kid","reason":"go away"}"#);
    assert_eq!(
        serde_json::from_str::<Value>(&reply).unwrap()["closed"],
        1,
        "{reply}"
    );
    assert_eq!(browser.run("status stopped"), "stopped (4000 go away)");
    std::thread::sleep(QUIET);
    assert_eq!(online(&p, "kid")["connections"], 0);
    assert_eq!(status_json(&p)["connections"], 0, "the tab reconnected");
    assert_eq!(
        browser.statuses(),
        ["connecting", "open", "closed", "stopped"],
        "{}",
        browser.run("events")
    );
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn an_invalid_token_stops_with_1008_after_one_attempt_and_never_shows_open() {
    let dir = TempDir::new("browser-badtoken");
    let p = Pushman::start(&dir.config("[auth]\nmode = \"token\"\nsecret = \"k3y\"\n"));
    let mut browser = Browser::start();
    browser.run(&format!(
        "open http://{}/?token=garbage&autoconnect=1",
        p.ws
    ));
    assert_eq!(
        browser.run("status stopped"),
        "stopped (1008 invalid token)"
    );
    std::thread::sleep(QUIET);
    assert_eq!(status_json(&p)["auth_failures"], 1, "more than one attempt");
    assert_eq!(
        browser.statuses(),
        ["connecting", "closed", "stopped"],
        "{}",
        browser.run("events")
    );
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn get_token_replaces_an_expired_token_and_gives_up_after_repeated_refusals() {
    let dir = TempDir::new("browser-gettoken");
    let p = Pushman::start(&dir.config("[auth]\nmode = \"token\"\nsecret = \"k3y\"\n"));
    let expired = pushman::push::token::mint(b"k3y", "alice", unix_now() - 10);
    let good = pushman::push::token::mint(b"k3y", "alice", unix_now() + 600);
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/", p.ws));
    // getToken is asked first (no token given), gets the expired one, is refused with
    // 1008 "token expired", asks again, binds as alice.
    browser.run(&format!(
        "eval window.fetched = 0, window.tokens = ['{expired}', '{good}'], \
         window.t = new Pushman('ws://' + location.host + '/', {{ minDelay: 50, \
         getToken: function () {{ return Promise.resolve(window.tokens[window.fetched++]); }} }}), \
         window.t.connect(), 1"
    ));
    browser.run("until window.t.status === 'open'");
    assert_eq!(
        browser.json("eval [window.fetched, window.t.boundUid]"),
        json!([2, "alice"])
    );
    assert_eq!(online(&p, "alice")["connections"], 1);

    // A getToken that only ever gets refused tokens: tokenRetries refetches, then stop.
    browser.run(
        "eval window.bad = 0, window.b = new Pushman('ws://' + location.host + '/', \
         { minDelay: 50, tokenRetries: 2, getToken: function () { window.bad++; return 'garbage'; } }), \
         window.b.connect(), 1",
    );
    browser.run("until window.b.status === 'stopped'");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        browser.json("eval [window.bad, window.b.status]"),
        json!([3, "stopped"])
    );
    // One refusal of the expired token, three of garbage.
    assert_eq!(status_json(&p)["auth_failures"], 4);
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn backoff_keeps_growing_while_connections_close_before_they_are_bound() {
    let dir = TempDir::new("browser-backoff");
    // A client that never sends a uid is closed with 1008 "no uid in time", which is
    // worth retrying; each retry opens a socket, and that must not reset the backoff.
    let p = Pushman::start(&dir.config("[heartbeat]\nhandshake_timeout = 0.2\n"));
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/", p.ws));
    browser.run(
        "eval window.seen = [], window.n = new Pushman('ws://' + location.host + '/', \
         { uid: null, minDelay: 40, maxDelay: 100000, onstatus: function (s, d) { \
         if (s === 'reconnecting') window.seen.push([d.attempt, d.delay, d.cause.code, d.cause.reason]); } }), \
         window.n.connect(), 1",
    );
    browser.run("until window.seen.length >= 4");
    browser.run("eval window.n.close(), 1");
    let seen = browser.json("eval window.seen");
    let seen = seen.as_array().unwrap();
    for (i, s) in seen.iter().take(4).enumerate() {
        let attempt = i as u64 + 1;
        let base = 40 << i;
        assert_eq!(s[0], attempt, "{seen:?}");
        let delay = s[1].as_u64().unwrap();
        assert!(
            (base / 2..=base).contains(&delay),
            "attempt {attempt}: delay {delay} ms not in [{}, {base}]: {seen:?}",
            base / 2
        );
        assert_eq!(s[2], 1008, "{seen:?}");
        assert_eq!(s[3], "no uid in time", "{seen:?}");
    }
    drop(p);
}

/// Pushes `{"uid":UID,"n":N}` for N in `range` over the text port, one every `every`;
/// returns the replies.
fn push_series(
    text: SocketAddr,
    uid: &str,
    range: std::ops::RangeInclusive<u32>,
    every: Duration,
) -> Vec<String> {
    let mut api = tcp_connect(text);
    range
        .map(|n| {
            let reply = request_line(&mut api, &format!(r#"{{"uid":"{uid}","n":{n}}}"#));
            std::thread::sleep(every);
            reply
        })
        .collect()
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn pushman_js_resumes_after_socket_drops_with_every_push_once_and_in_order() {
    let dir = TempDir::new("browser-resume");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\n"));
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/", p.ws));
    browser.run(
        "eval window.got = [], window.r = new Pushman('ws://' + location.host + '/', \
         { uid: 'res', minDelay: 400, maxDelay: 800, \
           onmessage: function (d) { window.got.push(d); } }), window.r.connect(), 1",
    );
    browser.run("until window.r.status === 'open'");
    let text = p.text;
    let pusher =
        std::thread::spawn(move || push_series(text, "res", 1..=40, Duration::from_millis(100)));
    // Drop the tab's socket twice while pushes keep coming; it reconnects after 200-800 ms.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        browser.run("eval window.r.ws.close(3000, 'test drops the socket'), 1");
    }
    let replies = pusher.join().unwrap();
    assert!(
        replies.iter().any(|r| r == "fail"),
        "some pushes must have found the tab away: {replies:?}"
    );
    browser.run("until window.got.length >= 40");
    std::thread::sleep(Duration::from_millis(300));
    let got = browser.json("eval window.got");
    let want: Vec<String> = (1..=40)
        .map(|n| format!(r#"{{"uid":"res","n":{n}}}"#))
        .collect();
    assert_eq!(got, json!(want), "every push exactly once, in order");
    let position = browser.json("eval window.r.position");
    assert_eq!(position["key"], "res");
    assert!(position["o"].as_u64().unwrap() >= 40, "{position}");
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn pushman_js_reports_a_gap_when_what_it_missed_is_no_longer_kept() {
    let dir = TempDir::new("browser-gap");
    let p = Pushman::start(&dir.config("[inbox]\nenabled = true\nmax_per_uid = 2\n"));
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/", p.ws));
    browser.run(
        "eval window.got = [], window.seen = [], window.g = new Pushman('ws://' + location.host + '/', \
         { uid: 'gap', minDelay: 1500, maxDelay: 1500, \
           onmessage: function (d) { window.got.push(d); }, \
           onstatus: function (s, d) { window.seen.push([s, d && d.reason || null]); } }), \
         window.g.connect(), 1",
    );
    browser.run("until window.g.status === 'open'");
    browser.run("eval window.g.ws.close(3000, 'away'), 1");
    browser.run("until window.g.status === 'reconnecting'");
    // Five pushes while it is away (its reconnect waits 750-1500 ms); two are kept.
    let replies = push_series(p.text, "gap", 1..=5, Duration::ZERO);
    assert_eq!(replies, vec!["fail"; 5]);
    browser.run("until window.seen.some(function (s) { return s[0] === 'gap'; })");
    let seen = browser.json("eval window.seen");
    assert!(
        seen.as_array()
            .unwrap()
            .contains(&json!(["gap", "evicted"])),
        "{seen}"
    );
    assert_eq!(
        browser.json("eval window.got"),
        json!([]),
        "nothing replayed after a gap"
    );
    assert_eq!(
        browser.json("eval window.g.status"),
        json!("open"),
        "a gap is an event"
    );
    assert_eq!(
        push_series(p.text, "gap", 6..=6, Duration::ZERO),
        vec!["ok"]
    );
    browser.run("until window.got.length === 1");
    assert_eq!(
        browser.json("eval window.got"),
        json!([r#"{"uid":"gap","n":6}"#])
    );
}

/// Three ports free now, for a server that must keep its addresses across a restart.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// `dir`'s config with `extra`, on the fixed ports `ports` (ws, text, http).
fn fixed_config(dir: &TempDir, extra: &str, ports: [u16; 3]) -> PathBuf {
    let path = dir.config(extra);
    let config = std::fs::read_to_string(&path).unwrap();
    let config = config
        .replace(
            "ws = \"127.0.0.1:0\"",
            &format!("ws = \"127.0.0.1:{}\"", ports[0]),
        )
        .replace(
            "text = \"127.0.0.1:0\"",
            &format!("text = \"127.0.0.1:{}\"", ports[1]),
        )
        .replace(
            "http = \"127.0.0.1:0\"",
            &format!("http = \"127.0.0.1:{}\"", ports[2]),
        );
    std::fs::write(&path, config).unwrap();
    path
}

/// A backend that does not give up: sends `line` until the server acknowledges it
/// (`"ok":true`), reconnecting while the server is down. Returns how many tries it took.
fn push_until_acknowledged(text: SocketAddr, line: &str) -> u32 {
    for attempt in 1.. {
        let reply = std::net::TcpStream::connect_timeout(&text, Duration::from_millis(200))
            .ok()
            .and_then(|mut api| {
                api.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                api.write_all(format!("{line}\n").as_bytes()).ok()?;
                let mut reply = String::new();
                BufReader::new(api).read_line(&mut reply).ok()?;
                Some(reply)
            });
        match reply {
            Some(r) if r.contains(r#""ok":true"#) => return attempt,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
        assert!(attempt < 400, "{line} never acknowledged");
    }
    unreachable!()
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn pushman_js_keeps_every_push_across_pushman_restart_with_a_durable_inbox() {
    const N: u32 = 50;
    let dir = TempDir::new("browser-durable");
    let ports = free_ports();
    let config = fixed_config(&dir, "[inbox]\nenabled = true\ndurable = true\n", ports);
    let c = config.to_str().unwrap();
    let start = cli(&["start", "-d", "--config", c], &dir.0);
    assert!(start.status.success(), "{start:?}");
    let [ws, text, http] = ports.map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    let pid = |http| status_at(http)["pid"].as_u64().unwrap();
    let pid_before = pid(http);
    let mut browser = Browser::start();
    browser.run(&format!("open http://{ws}/"));
    // Each push becomes an item of a list in the page, with its offset.
    browser.run(
        "eval (function () { var ul = document.createElement('ul'); ul.id = 'durable'; \
         document.body.appendChild(ul); \
         window.reconnects = 0; \
         window.r = new Pushman('ws://' + location.host + '/', { uid: 'dur', \
           minDelay: 200, maxDelay: 600, \
           onstatus: function (s) { if (s === 'reconnecting') window.reconnects++; }, \
           onmessage: function (d) { \
             var li = document.createElement('li'); li.dataset.o = window.r.position.o; \
             li.textContent = d; ul.appendChild(li); } }); \
         window.r.connect(); return 1; })()",
    );
    browser.run("until window.r.status === 'open'");
    let epoch = browser.json("eval window.r.position.e");
    let pusher = std::thread::spawn(move || {
        (1..=N)
            .map(|n| {
                let line = json!({"cmd": "push", "uid": "dur", "data": format!("m{n}")});
                let tries = push_until_acknowledged(text, &line.to_string());
                std::thread::sleep(Duration::from_millis(100));
                tries
            })
            .collect::<Vec<u32>>()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let restart = cli(&["restart", "--config", c], &dir.0);
    assert!(restart.status.success(), "{restart:?}");
    let tries = pusher.join().unwrap();
    browser.run(&format!(
        "until document.querySelectorAll('#durable li').length >= {N}"
    ));
    std::thread::sleep(Duration::from_millis(500));
    let items = browser.json(
        "eval [...document.querySelectorAll('#durable li')].map(function (li) { \
         return [Number(li.dataset.o), li.textContent]; })",
    );
    let items = items.as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i[1].as_str().unwrap()).collect();
    let want: Vec<String> = (1..=N).map(|n| format!("m{n}")).collect();
    assert_eq!(texts, want, "every push exactly once, in order");
    let offsets: Vec<u64> = items.iter().map(|i| i[0].as_u64().unwrap()).collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive offsets: {offsets:?}"
    );
    assert_eq!(
        browser.json("eval window.r.position.e"),
        epoch,
        "same epoch after the restart"
    );
    // It was another process: the offsets went on from the log, not from 1 in a new epoch.
    let pid_after = pid(http);
    assert_ne!(pid_before, pid_after, "pushman restart made a new process");
    assert!(
        browser.json("eval window.reconnects").as_u64().unwrap() >= 1,
        "the tab's socket was closed by the restart"
    );
    // `pushman restart` may be quick enough that no push found the server down.
    eprintln!("tries per push: {tries:?}");
    let stop = cli(&["stop", "--config", c], &dir.0);
    assert!(stop.status.success(), "{stop:?}");
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn the_seed_snippets_get_pushes_queued_while_offline_in_order_even_across_kill9() {
    let dir = TempDir::new("browser-offline");
    let ports = free_ports();
    let config = fixed_config(
        &dir,
        "[inbox]\nenabled = true\noffline = true\ndurable = true\n",
        ports,
    );
    let server = Pushman::start(&config);
    let text = server.text;
    // The article's PHP snippet, for a uid nobody is connected as: push.php's truth is
    // `fail`, but the push is kept.
    for percent in ["10%", "20%", "30%"] {
        assert_eq!(php_push(&dir, text, percent), "fail\n");
    }
    server.kill9();
    let server = Pushman::start(&config);
    assert_eq!(php_push(&dir, text, "40%"), "fail\n");
    let mut browser = Browser::start();
    browser.run(&format!("open http://{}/", server.ws));
    // The article's plain JS snippet (alert replaced by a list in the page).
    browser.run(
        "eval (function () { var ul = document.createElement('ul'); ul.id = 'plain'; \
         document.body.appendChild(ul); \
         var ws = new WebSocket('ws://' + document.domain + ':' + location.port); \
         ws.onopen = function () { var uid = 'uid1'; ws.send(uid); }; \
         ws.onmessage = function (e) { var li = document.createElement('li'); \
           li.textContent = e.data; ul.appendChild(li); }; \
         return 1; })()",
    );
    browser.run("until document.querySelectorAll('#plain li').length >= 4");
    // Live again: the next one is `ok` and follows the queue.
    assert_eq!(php_push(&dir, text, "50%"), "ok\n");
    browser.run("until document.querySelectorAll('#plain li').length >= 5");
    std::thread::sleep(Duration::from_millis(300));
    let got = browser.json("eval [...document.querySelectorAll('#plain li')].map(function (li) { return li.textContent; })");
    let want: Vec<String> = ["10%", "20%", "30%", "40%", "50%"]
        .iter()
        .map(|p| format!(r#"{{"uid":"uid1","percent":"{p}"}}"#))
        .collect();
    assert_eq!(got, json!(want), "byte-exact, in order, once");
}

#[test]
#[ignore = "needs chromium, php, curl, node and npm ci --prefix server/tests/e2e; .ci/run runs it"]
fn demo_page_over_https_and_pushman_js_over_wss_receive_a_push() {
    let dir = TempDir::new("browser-tls");
    let ca = tls::TestCa::new();
    let cert = ca.server_cert("chromium");
    std::fs::write(dir.path("chain.pem"), &cert.chain_pem).unwrap();
    std::fs::write(dir.path("key.pem"), &cert.key_pem).unwrap();
    let config = dir.config(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.path("chain.pem").display(),
        dir.path("key.pem").display()
    ));
    let server = Pushman::start(&config);
    // Chromium trusts the test certificate by its key's hash, nothing else.
    let mut browser = Browser::start_with(&format!(
        "--ignore-certificate-errors-spki-list={}",
        cert.spki_sha256
    ));
    let port = server.ws.port();
    browser.run(&format!(
        "open https://localhost:{port}/?uid=uid1&autoconnect=1"
    ));
    assert_eq!(browser.run("status open"), "open (uid uid1)");
    assert_eq!(browser.json("eval location.protocol"), json!("https:"));
    assert_eq!(php_push(&dir, server.text, "42%"), "ok\n");
    browser.run(r#"see {"uid":"uid1","percent":"42%"}"#);
    // pushman.js on its own, as an application page would use it, over wss://.
    browser.run(&format!(
        "eval (window.__got = [], window.__p = new Pushman('wss://localhost:{port}/', \
         {{ uid: 'uid2', onmessage: function (d) {{ window.__got.push(String(d)); }}, \
         onstatus: function (s) {{ window.__st = s; }} }}), window.__p.connect(), 'started')"
    ));
    browser.run("until window.__st === 'open'");
    let line = json!({"uid": "uid2", "percent": "7%"}).to_string();
    assert_eq!(request_line(&mut tcp_connect(server.text), &line), "ok");
    browser.run("until window.__got.length > 0");
    assert_eq!(browser.json("eval window.__got[0]"), json!(line));
    let status = status_json(&server);
    assert_eq!(status["connections"], 2, "{status}");
    assert!(
        status["tls"]["expires_in_days"].as_u64().is_some(),
        "{status}"
    );
}

//! The demo page in headless Chromium (Debian's package, driven by playwright-core): the page
//! connects as a uid, the original push.php PHP snippet (run by `php`) and curl on the HTTP
//! API push to it, the messages appear in the DOM; the server is killed and restarted and the
//! page reconnects and receives again. Saves a screenshot.
//!
//! Skipped, with a message, only when Chromium, php, curl, node or playwright-core is missing;
//! `.ci/run` installs them and sets `PUSHMAN_REQUIRE_E2E=1`, which turns a skip into a failure.

mod common;

use common::{daemon::*, *};
use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

const CHROMIUM: &str = "/usr/bin/chromium";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn missing_prerequisite() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    for tool in ["php", "curl", "node"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (npm ci --prefix server/tests/e2e)".into());
    }
    None
}

/// The node driver (tests/e2e/driver.mjs), one command and one answer per line.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Self {
        let mut child = Command::new("node")
            .arg(e2e_dir().join("driver.mjs"))
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
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        if wait(&mut self.child, std::time::Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
        }
    }
}

/// The PHP backend snippet of the original push.php article, pointed at `text`.
fn php_push(dir: &TempDir, text: std::net::SocketAddr, percent: &str) -> String {
    let script = dir.path("push.php");
    std::fs::write(
        &script,
        format!(
            "<?php\n$client = stream_socket_client('tcp://{text}', $errno, $errmsg, 1);\n\
             fwrite($client, json_encode(array('uid'=>'uid1','percent'=>'{percent}')).\"\\n\");\n\
             echo fread($client, 8192);\n"
        ),
    )
    .unwrap();
    let out = Command::new("php").arg(&script).output().expect("run php");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn curl_push(http: std::net::SocketAddr, data: &str) -> String {
    let body = serde_json::json!({"uid": "uid1", "data": data}).to_string();
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            &format!("http://{http}/push"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_page_receives_pushes_from_php_and_curl_and_reconnects_after_a_restart() {
    if let Some(reason) = missing_prerequisite() {
        assert!(
            std::env::var_os("PUSHMAN_REQUIRE_E2E").is_none(),
            "browser test required but {reason}"
        );
        eprintln!("SKIPPED browser end-to-end test: {reason}");
        return;
    }
    let dir = TempDir::new("browser");
    let server = Pushman::start(&dir.config(""));
    let (ws, text, http) = (server.ws, server.text, server.http);
    let mut browser = Browser::start();
    browser.run(&format!("open http://{ws}/?uid=uid1&autoconnect=1"));
    browser.run("status open");

    assert_eq!(php_push(&dir, text, "88%"), "ok\n");
    browser.run(r#"see {"uid":"uid1","percent":"88%"}"#);
    let receipt = curl_push(http, "hello from curl");
    assert!(receipt.contains(r#""sent":1"#), "{receipt}");
    browser.run("see hello from curl");

    // Kill the server; the page notices, then reconnects to the restarted one.
    server.kill9();
    browser.run("status reconnecting");
    let fixed = dir.path("fixed.toml");
    let config = std::fs::read_to_string(dir.path("pushman.toml")).unwrap();
    let config = config
        .replace("ws = \"127.0.0.1:0\"", &format!("ws = \"{ws}\""))
        .replace("text = \"127.0.0.1:0\"", &format!("text = \"{text}\""))
        .replace("http = \"127.0.0.1:0\"", &format!("http = \"{http}\""));
    std::fs::write(&fixed, config).unwrap();
    let _restarted = Pushman::start(&fixed);
    browser.run("status open");
    // The page sends its uid again on reconnect; wait until it is bound, then push.
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if php_push(&dir, text, "99%") == "ok\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never re-bound uid1"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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

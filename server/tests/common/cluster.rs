//! The cluster tests' real parts: a `redis-server` of their own on a free loopback port
//! (its own temp dir, no persistence, killed on drop) and `pushman` nodes on it.

use super::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` of our own, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` on `port` (0: a free one) and waits until it answers PING.
    pub fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, &[])
    }

    /// As [`Redis::start`], with more `redis-server` arguments.
    pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for the cluster tests (.ci/run installs it: apt-get install -y redis-server)");
        let redis = Self { child, port };
        let deadline = Instant::now() + TIMEOUT;
        // With requirepass, an unauthenticated PING answers NOAUTH: up all the same.
        while !redis
            .cmd(&["PING"])
            .is_some_and(|r| r == "+PONG" || r.starts_with("-NOAUTH"))
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One command; the first line of the reply (None if Redis is not there).
    pub fn cmd(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// SIGKILL, as a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node of the cluster in its own directory.
pub struct Node {
    pub p: Pushman,
    pub dir: TempDir,
}

pub fn node(name: &str, redis: &Redis, extra: &str) -> Node {
    node_at(name, &redis.url(), extra, "up")
}

/// A node on Redis `url`, once its link is in state `link`.
pub fn node_at(name: &str, url: &str, extra: &str, link: &str) -> Node {
    let dir = TempDir::new(&format!("cluster-{name}"));
    let config = dir.config(&format!(
        "[cluster]\nredis = \"{url}\"\nnode_id = \"{name}\"\nlease = 2.0\n{extra}\n"
    ));
    let p = Pushman::start(&config);
    let node = Node { p, dir };
    // Up means routed too: its lease is written (a tick after the link came up).
    node.wait_for(
        |s| s["cluster"]["link"] == link && (link != "up" || s["cluster"]["lease_age_s"].is_f64()),
        "its Redis link in that state",
    );
    node
}

impl Node {
    pub fn status(&self) -> Value {
        let mut backend = tcp_connect(self.p.text);
        command(&mut backend, json!({"cmd":"totals"}));
        let body = ureq::get(&format!("http://{}/status", self.p.http))
            .call()
            .expect("GET /status")
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    #[track_caller]
    pub fn wait_for(&self, ok: impl Fn(&Value) -> bool, what: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.status();
            if ok(&status) {
                return;
            }
            assert!(Instant::now() < deadline, "node never had {what}: {status}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn backend(&self) -> TcpStream {
        tcp_connect(self.p.text)
    }

    /// A browser bound to `uid`, once the whole cluster (asked through `via`) sees it.
    pub fn browser(&self, uid: &str, via: &Node) -> Ws {
        let before = online(via, uid);
        let mut ws = ws_connect(self.p.ws, "/?pushman=1");
        ws.send(tungstenite::Message::text(uid)).unwrap();
        ws.flush().unwrap();
        assert!(ws_read_text(&mut ws).contains("bound"));
        let deadline = Instant::now() + TIMEOUT;
        while online(via, uid) <= before && before == 0 {
            assert!(Instant::now() < deadline, "uid {uid} never came online");
            std::thread::sleep(Duration::from_millis(10));
        }
        ws
    }
}

pub fn online(via: &Node, uid: &str) -> u64 {
    let reply = command(&mut via.backend(), json!({"cmd":"online","uid":uid}));
    reply["connections"].as_u64().unwrap_or(0)
}

#[track_caller]
pub fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

/// Expects no text frame within `wait`.
#[track_caller]
pub fn silent(ws: &mut Ws, wait: Duration) {
    if let MaybeTls(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(wait)).unwrap();
    }
    // A timeout (or any non-text frame) is the silence expected.
    if let Ok(tungstenite::Message::Text(t)) = ws.read() {
        panic!("unexpected frame {t}");
    }
    if let MaybeTls(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
}

pub use tungstenite::stream::MaybeTlsStream::Plain as MaybeTls;

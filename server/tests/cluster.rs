//! Cluster mode with real parts: a real `redis-server` on a free loopback port (its own
//! temp dir, no persistence, stopped by pid) and several real `pushman` nodes; browsers
//! (tungstenite) on one node, backends (text port, HTTP API) on another.
//!
//! Without `redis-server` on PATH these tests fail loudly (`.ci/run` installs it).

mod common;

use common::{daemon::*, *};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` of our own, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts `redis-server` on `port` (0: a free one) and waits until it answers PING.
    fn start(dir: &Path, port: u16) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for the cluster tests (.ci/run installs it: apt-get install -y redis-server)");
        let redis = Self { child, port };
        let deadline = Instant::now() + TIMEOUT;
        while redis.cmd(&["PING"]).as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One command; the first line of the reply (None if Redis is not there).
    fn cmd(&self, args: &[&str]) -> Option<String> {
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
    fn kill(mut self) {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node of the cluster in its own directory.
struct Node {
    p: Pushman,
    _dir: TempDir,
}

fn node(name: &str, redis: &Redis, extra: &str) -> Node {
    let dir = TempDir::new(&format!("cluster-{name}"));
    let config = dir.config(&format!(
        "[cluster]\nredis = \"{}\"\nnode_id = \"{name}\"\nlease = 2.0\n{extra}\n",
        redis.url()
    ));
    let p = Pushman::start(&config);
    let node = Node { p, _dir: dir };
    node.wait_for(|s| s["cluster"]["link"] == "up", "its Redis links up");
    node
}

impl Node {
    fn status(&self) -> Value {
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
    fn wait_for(&self, ok: impl Fn(&Value) -> bool, what: &str) {
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

    fn backend(&self) -> TcpStream {
        tcp_connect(self.p.text)
    }

    /// A browser bound to `uid`, once the whole cluster (asked through `via`) sees it.
    fn browser(&self, uid: &str, via: &Node) -> Ws {
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

fn online(via: &Node, uid: &str) -> u64 {
    let reply = command(&mut via.backend(), json!({"cmd":"online","uid":uid}));
    reply["connections"].as_u64().unwrap_or(0)
}

#[track_caller]
fn command(backend: &mut TcpStream, cmd: Value) -> Value {
    serde_json::from_str(&request_line(backend, &cmd.to_string())).expect("JSON reply")
}

/// Expects no text frame within `wait`.
#[track_caller]
fn silent(ws: &mut Ws, wait: Duration) {
    if let MaybeTls(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(wait)).unwrap();
    }
    match ws.read() {
        Ok(tungstenite::Message::Text(t)) => panic!("unexpected frame {t}"),
        Ok(_) | Err(_) => {}
    }
    if let MaybeTls(stream) = ws.get_mut() {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
}

use tungstenite::stream::MaybeTlsStream::Plain as MaybeTls;

const SEED_LINE: &str = r#"{"uid":"u-a","content":"hello from B","type":"publish"}"#;

#[test]
fn compat_push_crosses_nodes_byte_exact_and_fails_for_nobody() {
    let dir = TempDir::new("cluster-redis-1");
    let redis = Redis::start(&dir.0, 0);
    let (a, b) = (node("a1", &redis, ""), node("b1", &redis, ""));
    let mut tab = a.browser("u-a", &b);
    let mut backend = b.backend();
    assert_eq!(request_line(&mut backend, SEED_LINE), "ok");
    assert_eq!(ws_read_text(&mut tab), SEED_LINE);
    assert_eq!(
        request_line(&mut backend, r#"{"uid":"nobody","content":"x"}"#),
        "fail"
    );
    // Two tabs of one uid on two nodes both receive; pipelined lines are answered in order.
    let mut tab_b = b.browser("u-a", &a);
    let line2 = r#"{"uid":"u-a","content":"both"}"#;
    backend
        .write_all(format!("{line2}\n{{\"uid\":\"nobody\"}}\n{line2}\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(backend.try_clone().unwrap());
    for want in ["ok", "fail", "ok"] {
        assert_eq!(read_line(&mut reader), want);
    }
    for _ in 0..2 {
        assert_eq!(ws_read_text(&mut tab), line2);
        assert_eq!(ws_read_text(&mut tab_b), line2);
    }
}

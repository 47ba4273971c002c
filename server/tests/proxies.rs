//! pushman behind the reverse proxies docs/DEPLOY.md recommends, run for real: the shipped
//! `contrib/nginx/pushman.conf` and `contrib/caddy/Caddyfile` in front of the real binary.
//! Checks that the WebSocket upgrade passes through, that the client's address comes from
//! a trusted proxy's headers (and from nobody else's), and that the per-IP limit counts
//! clients, not the proxy. Clients connect from distinct loopback addresses (127.0.0.2..);
//! through nginx over wss:// (it terminates TLS with a test CA's certificate), through
//! Caddy over ws:// (its automatic HTTPS needs a public name).

mod common;

use common::tls::TestCa;
use common::{
    daemon::{http_get, Pushman, TempDir},
    request_line, tcp_connect, ws_read_text, Ws, TIMEOUT,
};
use std::{
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tungstenite::{handshake::client::generate_key, http, stream::MaybeTlsStream, Connector};

/// A reverse proxy process, killed on drop.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Waits until the proxy accepts connections.
    fn wait_listening(self, name: &str, log: &Path) -> Self {
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {}; its log:\n{}",
                self.addr,
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn contrib(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces `from` with `to` in the shipped file, insisting that `from` is there: the test
/// must fail if the file changes under it, not quietly test something else.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the shipped config no longer says {from:?}"
    );
    text.replace(from, to)
}

/// nginx with `contrib/nginx/pushman.conf` as shipped, but for ports and paths: it
/// terminates TLS with a certificate of `ca` (clients speak wss://) and proxies to `ws`.
fn nginx(dir: &TempDir, ws: SocketAddr, ca: &TestCa) -> Proxy {
    let port = free_port();
    let cert = ca.server_cert("nginx");
    std::fs::write(dir.path("chain.pem"), &cert.chain_pem).unwrap();
    std::fs::write(dir.path("key.pem"), &cert.key_pem).unwrap();
    let site = contrib("nginx/pushman.conf");
    let site = edit(
        &site,
        "    listen 443 ssl;\n",
        &format!("    listen 127.0.0.1:{port} ssl;\n"),
    );
    let site = edit(&site, "    listen [::]:443 ssl;\n", "");
    let site = edit(
        &site,
        "/etc/letsencrypt/live/push.example.com/fullchain.pem",
        &dir.path("chain.pem").display().to_string(),
    );
    let site = edit(
        &site,
        "/etc/letsencrypt/live/push.example.com/privkey.pem",
        &dir.path("key.pem").display().to_string(),
    );
    let site = edit(&site, "http://127.0.0.1:1234", &format!("http://{ws}"));
    std::fs::write(dir.path("pushman-site.conf"), site).unwrap();
    let root = dir.0.display();
    let main = format!(
        "pid {root}/nginx.pid;\nerror_log {root}/nginx-error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {root}/nginx-access.log;\n\
           client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
           fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n\
           scgi_temp_path {root}/scgi;\n  include {root}/pushman-site.conf;\n}}\n"
    );
    std::fs::write(dir.path("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(dir.path("nginx.conf"))
        .args(["-e", "stderr", "-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is needed for this test (.ci/run installs it: apt-get install -y nginx)");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Proxy { child, addr }.wait_listening("nginx", &dir.path("nginx-error.log"))
}

/// Caddy with `contrib/caddy/Caddyfile`, served over plain HTTP on a free port.
fn caddy(dir: &TempDir, ws: SocketAddr) -> Proxy {
    let port = free_port();
    let file = contrib("caddy/Caddyfile");
    let file = edit(
        &file,
        "push.example.com {",
        &format!("http://127.0.0.1:{port} {{"),
    );
    let file = edit(
        &file,
        "reverse_proxy 127.0.0.1:1234",
        &format!("reverse_proxy {ws}"),
    );
    let file = format!("{{\n\tadmin off\n}}\n{file}");
    std::fs::write(dir.path("Caddyfile"), file).unwrap();
    let log = std::fs::File::create(dir.path("caddy.log")).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.path("Caddyfile"))
        .env("HOME", &dir.0)
        .env("XDG_DATA_HOME", dir.path("caddy-data"))
        .env("XDG_CONFIG_HOME", dir.path("caddy-config"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("caddy is needed for this test (.ci/run installs it: apt-get install -y caddy)");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Proxy { child, addr }.wait_listening("caddy", &dir.path("caddy.log"))
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    socket.connect_timeout(&to.into(), TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// A WebSocket upgrade to `to` from `from` (over TLS, trusting `tls`'s root, if given),
/// with `forged` as the client's own X-Forwarded-For if given; the handshake's error (e.g.
/// a 429) if it was refused.
fn ws_from(
    from: IpAddr,
    to: SocketAddr,
    forged: Option<&str>,
    tls: Option<&TestCa>,
) -> Result<Ws, tungstenite::Error> {
    let stream = connect_from(from, to);
    // The certificate names localhost; Caddy's site is 127.0.0.1:PORT.
    let (scheme, host) = match tls {
        Some(_) => ("wss", format!("localhost:{}", to.port())),
        None => ("ws", to.to_string()),
    };
    let mut request = http::Request::builder()
        .uri(format!("{scheme}://{host}/"))
        .header("Host", host)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key());
    if let Some(forged) = forged {
        request = request.header("X-Forwarded-For", forged);
    }
    let request = request.body(()).unwrap();
    let result = match tls {
        Some(ca) => tungstenite::client_tls_with_config(
            request,
            stream,
            None,
            Some(Connector::Rustls(ca.client_config())),
        ),
        None => tungstenite::client::client(request, MaybeTlsStream::Plain(stream)),
    };
    match result {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("blocking handshake interrupted")
        }
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Binds `uid` and proves it with a push through the text API.
fn bind_and_push(ws: &mut Ws, uid: &str, p: &Pushman) {
    ws.send(tungstenite::Message::text(uid)).unwrap();
    let mut backend = tcp_connect(p.text);
    let line = format!("{{\"uid\":\"{uid}\",\"percent\":\"88%\"}}");
    // The bind races the push: retry until pushman knows the uid.
    let deadline = Instant::now() + TIMEOUT;
    while request_line(&mut backend, &line) != "ok" {
        assert!(Instant::now() < deadline, "{uid} never bound");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ws_read_text(ws), line);
}

/// `(peer ip, forwarded_for)` of the connection bound to `uid`, from `/connections`.
fn addresses_of(p: &Pushman, uid: &str) -> (IpAddr, Option<IpAddr>) {
    let (code, body) = http_get(p.http, "/connections", "").unwrap();
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let conn = list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uid"] == uid)
        .unwrap_or_else(|| panic!("no connection for {uid} in {body}"));
    let peer: SocketAddr = conn["peer"].as_str().unwrap().parse().unwrap();
    let forwarded = conn["forwarded_for"].as_str().map(ip);
    (peer.ip(), forwarded)
}

fn refused_with(result: Result<Ws, tungstenite::Error>, status: u16) {
    match result {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), status),
        Err(e) => panic!("expected an HTTP {status}, got {e}"),
        Ok(_) => panic!("expected an HTTP {status}, got a WebSocket"),
    }
}

/// pushman trusting 127.0.0.1 (where the proxies connect from), two connections per IP.
fn pushman_behind_proxy(dir: &TempDir) -> Pushman {
    let config = dir.config(
        "[auth]\ntrusted_proxies = [\"127.0.0.1\"]\n[limits]\nmax_connections_per_ip = 2\n",
    );
    Pushman::start(&config)
}

/// Through `proxy`: pushes arrive, the client's address is the one the proxy saw (a forged
/// X-Forwarded-For changes nothing), the per-IP limit refuses the third tab from one
/// address with 429 and serves another address.
fn check_through(p: &Pushman, proxy: SocketAddr, tls: Option<&TestCa>) {
    let mut first = ws_from(ip("127.0.0.2"), proxy, Some("198.51.100.1"), tls).expect("upgrade");
    bind_and_push(&mut first, "alice", p);
    assert_eq!(
        addresses_of(p, "alice"),
        (ip("127.0.0.1"), Some(ip("127.0.0.2")))
    );
    let mut second = ws_from(ip("127.0.0.2"), proxy, None, tls).expect("upgrade");
    bind_and_push(&mut second, "alice2", p);
    refused_with(ws_from(ip("127.0.0.2"), proxy, None, tls), 429);
    let mut other = ws_from(ip("127.0.0.3"), proxy, None, tls).expect("another address is served");
    bind_and_push(&mut other, "bob", p);
    assert_eq!(addresses_of(p, "bob").1, Some(ip("127.0.0.3")));
    // A tab closing frees its address's slot.
    second.close(None).unwrap();
    while second.read().is_ok() {}
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match ws_from(ip("127.0.0.2"), proxy, None, tls) {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the freed slot was not given back: {e}"),
        }
    }
}

#[test]
#[ignore = "needs nginx; .ci/run installs it"]
fn nginx_passes_the_upgrade_and_the_client_address() {
    let dir = TempDir::new("proxy-nginx");
    let p = pushman_behind_proxy(&dir);
    let ca = TestCa::new();
    let proxy = nginx(&dir, p.ws, &ca);
    check_through(&p, proxy.addr, Some(&ca));
    p.stop();
}

#[test]
#[ignore = "needs caddy; .ci/run installs it"]
fn caddy_passes_the_upgrade_and_the_client_address() {
    let dir = TempDir::new("proxy-caddy");
    let p = pushman_behind_proxy(&dir);
    let proxy = caddy(&dir, p.ws);
    check_through(&p, proxy.addr, None);
    p.stop();
}

/// Direct connections: X-Forwarded-For from a peer that is not a trusted proxy is ignored,
/// so a client cannot dodge the per-IP limit or pose as another address.
#[test]
fn an_untrusted_peer_cannot_name_its_address() {
    let dir = TempDir::new("proxy-untrusted");
    let p = pushman_behind_proxy(&dir);
    let mut a = ws_from(ip("127.0.0.4"), p.ws, Some("203.0.113.1"), None).expect("upgrade");
    bind_and_push(&mut a, "carol", &p);
    assert_eq!(addresses_of(&p, "carol"), (ip("127.0.0.4"), None));
    let _b = ws_from(ip("127.0.0.4"), p.ws, Some("203.0.113.2"), None).expect("upgrade");
    // Refused at accept (not at the handshake): the third from 127.0.0.4, whatever it says.
    assert!(ws_from(ip("127.0.0.4"), p.ws, Some("203.0.113.3"), None).is_err());
    let mut other = ws_from(ip("127.0.0.5"), p.ws, None, None).expect("another address is served");
    bind_and_push(&mut other, "dave", &p);
    p.stop();
}

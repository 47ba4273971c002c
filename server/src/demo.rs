//! Plain HTTP on the WebSocket port: the demo page and the `pushman.js` client.

use super::{http_api, state::Daemon, text_api};
use pushman::{
    codec::http::{Request, Response},
    ConnId, Ctx,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The demo page: connect as a uid or with a token, watch pushes arrive.
const DEMO_HTML: &str = include_str!("../../web/demo.html");
/// Where the page expects its settings (a JSON object inside a `<script>` element).
const SETTINGS_SLOT: &str = "/*PUSHMAN_DEMO_SETTINGS*/null";
/// The dependency-free browser client.
const PUSHMAN_JS: &str = include_str!("../../web/pushman.js");

/// Answers a plain `GET` on the WebSocket port.
pub(super) fn page(ctx: &mut Ctx<'_, Daemon>, _conn: ConnId, req: &Request) -> Response {
    if !ctx.state.config.demo_page {
        return not_found();
    }
    match (req.method.as_str(), req.path()) {
        ("GET" | "HEAD", "/") => Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .body(DEMO_HTML.replace(SETTINGS_SLOT, &settings(ctx))),
        ("GET" | "HEAD", "/pushman.js") => Response::new(200)
            .header("Content-Type", "text/javascript; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .body(PUSHMAN_JS),
        _ => not_found(),
    }
}

/// What the page's backend snippets need: the APIs' bound addresses (as a backend on this
/// host reaches them; `null` when off), whether they need the API secret (never the secret
/// itself) and the auth mode.
fn settings(ctx: &mut Ctx<'_, Daemon>) -> String {
    let addr = |name: &str| {
        ctx.io
            .listeners()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| reachable(a).to_string())
    };
    let settings = serde_json::json!({
        "text": addr(text_api::NAME),
        "http": addr(http_api::NAME),
        "api_secret": !ctx.state.config.auth.api_secret.is_empty(),
        "auth": format!("{:?}", ctx.state.config.auth.mode).to_lowercase(),
    });
    // Inside <script>: no `<` may close the element early.
    settings.to_string().replace('<', "\\u003c")
}

/// A wildcard listener (`0.0.0.0`, `::`) is reached on loopback from the same host.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

fn not_found() -> Response {
    Response::new(404)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("not found; this port speaks WebSocket\n")
}

#[cfg(test)]
mod tests {
    use super::reachable;

    #[test]
    fn wildcard_listeners_are_shown_as_loopback() {
        for (bound, shown) in [
            ("0.0.0.0:5678", "127.0.0.1:5678"),
            ("[::]:2121", "[::1]:2121"),
            ("10.1.2.3:5678", "10.1.2.3:5678"),
            ("127.0.0.1:40000", "127.0.0.1:40000"),
        ] {
            assert_eq!(reachable(bound.parse().unwrap()).to_string(), shown);
        }
    }
}

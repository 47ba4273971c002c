//! Plain HTTP on the WebSocket port: the demo page and the `pushman.js` client.

use super::state::Daemon;
use pushman::{
    codec::http::{Request, Response},
    ConnId, Ctx,
};

/// The demo page: connect as a uid or with a token, watch pushes arrive.
const DEMO_HTML: &str = include_str!("../../web/demo.html");
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
            .body(DEMO_HTML),
        ("GET" | "HEAD", "/pushman.js") => Response::new(200)
            .header("Content-Type", "text/javascript; charset=utf-8")
            .header("Cache-Control", "no-cache")
            .body(PUSHMAN_JS),
        _ => not_found(),
    }
}

fn not_found() -> Response {
    Response::new(404)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("not found; this port speaks WebSocket\n")
}

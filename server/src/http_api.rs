//! The HTTP API: the text port's commands as JSON over HTTP, plus `/status`, `/metrics` and
//! `/connections`.

use super::{
    api::{self, Compat, Reply},
    api_auth,
    config::Config,
    http_guard,
    replies::Ticket,
    state::Daemon,
    status,
};
use pushman::{
    codec::http::{Request, Response},
    ConnId, Ctx, Limits, Message, Worker,
};
use serde_json::{Map, Value};

/// The HTTP worker's name, in status output.
pub(crate) const NAME: &str = "http";

/// Commands reachable as `POST /NAME` with a JSON body.
const COMMANDS: &[&str] = &[
    "push",
    "cancel",
    "scheduled",
    "join",
    "leave",
    "members",
    "online",
    "online_list",
    "totals",
    "kick",
];
/// The read-only ones, also reachable as `GET /NAME?query`.
const QUERIES: &[&str] = &["scheduled", "members", "online", "online_list", "totals"];

/// The worker for `config.listen.http`.
///
/// # Errors
/// A malformed address.
pub(crate) fn worker(config: &Config) -> pushman::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("http://{}", config.listen.http))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.refusal = Vec::new();
    json(503, &error("too many API connections"))
        .header("Connection", "close")
        .header("Retry-After", "1")
        .encode(&mut worker.refusal);
    // 400 / 408 / 413 / 501 from the library come as JSON like every other answer.
    worker.http_error = |status, message| json(status, &error(message));
    worker.on_message(|ctx, conn, msg| {
        if let Message::Request(req) = msg {
            if let Some(response) = handle(ctx, conn, req) {
                let _ = ctx.io.respond(conn, &response);
            }
        }
    });
    Ok(worker)
}

/// Per-connection limits from the configuration. A backend that does not read its replies
/// is not read from either (backpressure): every request gets its reply, in order.
pub(crate) fn limits(config: &Config) -> Limits {
    config.limits.api(config.limits.http_idle_timeout)
}

/// The response to `req`, or `None` when it waits for Redis (cluster mode; the connection
/// is paused until [`Ticket::answer`] responds).
fn handle(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, req: &Request) -> Option<Response> {
    let head = req.method == "HEAD";
    let run = |ctx: &mut Ctx<'_, Daemon>, body: &[u8]| -> Option<Response> {
        if ctx.state.cluster.is_none() {
            return Some(reply(api::execute(ctx, body)));
        }
        let ticket = Ticket::Http { conn, head };
        match crate::cluster::api::execute(ctx, body, ticket) {
            Some(r) => Some(reply(r)),
            None => {
                ticket.defer(ctx);
                None
            }
        }
    };
    if let Err(refusal) = http_guard::check(req, &ctx.state.config.auth) {
        log::info!(
            "HTTP API connection {conn}: {} {} refused: {}",
            req.method,
            req.path(),
            refusal.message
        );
        ctx.state.stats.lines_refused += 1;
        return Some(json(refusal.status, &error(&refusal.message)));
    }
    if let Err(response) = authorize(ctx, conn, req) {
        return Some(response);
    }
    // HEAD is GET without the body (RFC 9110 §9.3.2).
    let method = match req.method.as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let name = req.path().trim_start_matches('/');
    let response = match (method, name) {
        ("GET", "status") => json(200, &status::json(ctx)),
        ("GET", "connections") => json(200, &status::connections(ctx)),
        ("GET", "metrics") => Response::new(200)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .body(status::metrics(ctx)),
        ("POST", "" | "api") => run(ctx, &req.body)?,
        ("POST", cmd) if COMMANDS.contains(&cmd) => match with_cmd(cmd, &req.body) {
            Ok(body) => run(ctx, &body)?,
            Err(message) => {
                ctx.state.stats.lines_refused += 1;
                json(400, &error(message))
            }
        },
        ("GET", cmd) if QUERIES.contains(&cmd) => {
            let mut object = query_object(req);
            object.insert("cmd".into(), Value::String(cmd.into()));
            run(ctx, Value::Object(object).to_string().as_bytes())?
        }
        (_, "status" | "connections" | "metrics") => {
            json(405, &error("use GET")).header("Allow", "GET, HEAD")
        }
        (_, cmd) if QUERIES.contains(&cmd) => {
            json(405, &error("use GET, or POST with a JSON body"))
                .header("Allow", "GET, HEAD, POST")
        }
        (_, cmd) if COMMANDS.contains(&cmd) || cmd.is_empty() || cmd == "api" => {
            json(405, &error("use POST with a JSON body")).header("Allow", "POST")
        }
        _ => json(404, &error("no such endpoint")),
    };
    Some(if head {
        response.without_body()
    } else {
        response
    })
}

/// With `api_secret` set: `Authorization: Bearer <api_secret>` (scheme case-insensitive,
/// RFC 9110 §11.1), from an address that has not used up its attempts.
fn authorize(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, req: &Request) -> Result<(), Response> {
    let secret = &ctx.state.config.auth.api_secret;
    if secret.is_empty() {
        return Ok(());
    }
    let ip = ctx.io.peer_addr(conn).map(|a| a.ip());
    let now = ctx.io.now();
    if ip.is_some_and(|ip| ctx.state.api_throttle.blocked(ip, now)) {
        ctx.state.stats.lines_refused += 1;
        return Err(json(429, &error("too many wrong api_secrets; retry later"))
            .header("Retry-After", &api_auth::WINDOW.as_secs().to_string()));
    }
    let given = req.header("authorization").and_then(bearer_token);
    if given.is_some_and(|g| api_auth::secret_matches(g, secret.as_bytes())) {
        if let Some(ip) = ip {
            ctx.state.api_throttle.succeeded(ip);
        }
        return Ok(());
    }
    if let Some(ip) = ip {
        ctx.state.api_throttle.failed(ip, now);
    }
    ctx.state.stats.auth_failures += 1;
    ctx.state.stats.lines_refused += 1;
    log::warn!(
        "HTTP API connection {conn} from {}: missing or wrong api_secret",
        ip.map_or("?".into(), |ip| ip.to_string())
    );
    Err(json(
        401,
        &error("unauthorized: send Authorization: Bearer <api_secret>"),
    )
    .header("WWW-Authenticate", "Bearer"))
}

/// The credentials of an `Authorization: Bearer <token>` header; the scheme is matched
/// case-insensitively.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let start = rest.iter().position(|&b| b != b' ')?;
    Some(rest[start..].trim_ascii_end())
}

/// The JSON object in `body` with `"cmd": cmd` added.
fn with_cmd(cmd: &str, body: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("the body must be a JSON object"),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Err(_) => return Err("the body is not valid JSON"),
    };
    object.insert("cmd".into(), Value::String(cmd.into()));
    Ok(Value::Object(object).to_string().into_bytes())
}

/// Query parameters as a JSON object; numbers and booleans typed.
fn query_object(req: &Request) -> Map<String, Value> {
    let mut object = Map::new();
    for pair in req
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        let Some(value) = req.query_param(key) else {
            continue;
        };
        let typed = if let Ok(n) = value.parse::<u64>() {
            Value::from(n)
        } else if let Ok(b) = value.parse::<bool>() {
            Value::Bool(b)
        } else {
            Value::String(value)
        };
        object.insert(key.to_string(), typed);
    }
    object
}

/// push.php lines get their `ok` / `fail` as text: 200, 404 when nobody it names is
/// online, 400 when it was not understood. JSON replies: 200 or 400.
pub(crate) fn reply(reply: Reply) -> Response {
    let status = match &reply {
        Reply::Compat(Compat::Delivered) => 200,
        Reply::Compat(Compat::Offline) => 404,
        Reply::Compat(Compat::Refused) => 400,
        Reply::Json(_) if reply.is_ok() => 200,
        Reply::Json(_) => 400,
    };
    let content_type = match reply {
        Reply::Compat(_) => "text/plain; charset=utf-8",
        Reply::Json(_) => "application/json",
    };
    Response::new(status)
        .header("Content-Type", content_type)
        .body(reply.to_line() + "\n")
}

fn error(message: &str) -> Value {
    serde_json::json!({ "ok": false, "error": message })
}

fn json(status: u16, value: &Value) -> Response {
    Response::new(status)
        .header("Content-Type", "application/json")
        .body(format!("{value}\n"))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (header, token) in [
            ("Bearer s3cret", Some("s3cret")),
            ("bearer s3cret", Some("s3cret")),
            ("BEARER   s3cret ", Some("s3cret")),
            ("Basic czNjcmV0", None),
            ("Bearer", None),
            ("Bearers3cret", None),
        ] {
            assert_eq!(
                bearer_token(header.as_bytes()),
                token.map(str::as_bytes),
                "{header}"
            );
        }
    }
}

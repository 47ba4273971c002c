//! The HTTP API: the text port's commands as JSON over HTTP, plus `/status`, `/metrics` and
//! `/connections`.

use super::{
    api::{self, Reply},
    api_auth,
    config::Config,
    http_guard,
    replies::Ticket,
    state::Daemon,
    status::{Connections, StatusReport},
    store::journal,
};
use pushman::{
    codec::http::{Request, Response},
    push::command::{self, Command, CommandError, Mode},
    ConnId, Ctx, Limits, Message, Worker,
};
use std::{borrow::Cow, net::SocketAddr};

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

/// The worker for `config.listen.http`, listening on `addr`.
///
/// # Errors
/// None in practice: the address is typed.
pub(crate) fn worker(config: &Config, addr: SocketAddr) -> pushman::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("http://{addr}"))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.refusal = Vec::new();
    Reply::error_status(503, "too many API connections")
        .to_http()
        .header("Connection", "close")
        .header("Retry-After", "1")
        .encode(&mut worker.refusal);
    // 400 / 408 / 413 / 501 from the library come as JSON like every other answer.
    worker.http_error = |status, message| Reply::error_status(status, message).to_http();
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
    if let Err(refusal) = http_guard::check(req, &ctx.state.config.auth) {
        log::info!(
            "HTTP API connection {conn}: {} {} refused: {}",
            req.method,
            req.path(),
            refusal.message
        );
        ctx.state.stats.lines_refused += 1;
        return Some(Reply::error_status(refusal.status, &refusal.message).to_http());
    }
    if let Err(response) = authorize(ctx, conn, req) {
        return Some(response);
    }
    let ticket = Ticket::Http { conn, head };
    // HEAD is GET without the body (RFC 9110 §9.3.2).
    let method = match req.method.as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let name = req.path().trim_start_matches('/');
    let response = match (method, name) {
        ("GET", "status") => json(&StatusReport::now(ctx)),
        ("GET", "connections") => json(&Connections::now(ctx)),
        ("GET", "metrics") => Response::new(200)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .body(StatusReport::now(ctx).prometheus()),
        ("POST", "" | "api") => {
            let parsed = command::parse_request(&req.body);
            run(
                ctx,
                parsed.map_err(|r| (r.mode, r.error)),
                &req.body,
                ticket,
            )?
        }
        ("POST", cmd) if COMMANDS.contains(&cmd) => {
            let parsed = command::parse_body(cmd, &req.body);
            let parsed = parsed.map_err(|e| (Mode::Extended, e));
            run(ctx, parsed, &req.body, ticket)?
        }
        ("GET", cmd) if QUERIES.contains(&cmd) => {
            let parsed = command::parse_query(cmd, query_pairs(req));
            run(ctx, parsed.map_err(|e| (Mode::Extended, e)), b"", ticket)?
        }
        (_, "status" | "connections" | "metrics") => Reply::error_status(405, "use GET")
            .to_http()
            .header("Allow", "GET, HEAD"),
        (_, cmd) if QUERIES.contains(&cmd) => {
            Reply::error_status(405, "use GET, or POST with a JSON body")
                .to_http()
                .header("Allow", "GET, HEAD, POST")
        }
        (_, cmd) if COMMANDS.contains(&cmd) || cmd.is_empty() || cmd == "api" => {
            Reply::error_status(405, "use POST with a JSON body")
                .to_http()
                .header("Allow", "POST")
        }
        _ => Reply::error_status(404, "no such endpoint").to_http(),
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
    let trusted = &ctx.state.config.auth.trusted_proxies;
    let ip = ctx
        .io
        .peer_addr(conn)
        .map(|a| crate::proxy::client_ip(trusted, a.ip(), req));
    let now = ctx.io.now();
    if ip.is_some_and(|ip| ctx.state.api_throttle.blocked(ip, now)) {
        ctx.state.stats.lines_refused += 1;
        return Err(
            Reply::error_status(429, "too many wrong api_secrets; retry later")
                .to_http()
                .header("Retry-After", &api_auth::WINDOW.as_secs().to_string()),
        );
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
    Err(
        Reply::error_status(401, "unauthorized: send Authorization: Bearer <api_secret>")
            .to_http()
            .header("WWW-Authenticate", "Bearer"),
    )
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

/// Runs a command the path named (`POST /cmd`, `GET /cmd?..`): always an extended one.
/// Runs a parsed request: at once in embedded mode; in cluster mode `None` while it waits
/// for Redis (the ticket answers later).
fn run(
    ctx: &mut Ctx<'_, Daemon>,
    parsed: Result<Command<'_>, (Mode, CommandError)>,
    line: &[u8],
    ticket: Ticket,
) -> Option<Response> {
    let command = match parsed {
        Ok(command) => command,
        Err((mode, e)) => return Some(api::refuse(ctx, mode, &e).to_http()),
    };
    if ctx.state.cluster.is_none() {
        let reply = journal::after_commit(ctx, ticket, |ctx| api::run_parsed(ctx, command, line));
        return reply.map(|r| r.to_http());
    }
    match crate::cluster::api::run_parsed(ctx, command, line, ticket) {
        Some(reply) => Some(reply.to_http()),
        None => {
            ticket.defer(ctx);
            None
        }
    }
}

/// The query's parameters, names as written, values percent-decoded; a repeated name
/// takes its first value.
fn query_pairs(req: &Request) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    req.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            Some((key, Cow::Owned(req.query_param(key)?)))
        })
}

/// A `200` JSON response (the status and connection lists).
fn json(value: &impl serde::Serialize) -> Response {
    // Serializing these types cannot fail: no maps with non-string keys, no I/O.
    let body = serde_json::to_string(value).unwrap_or_default();
    Response::new(200)
        .header("Content-Type", "application/json")
        .body(body + "\n")
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

//! The HTTP API: the text port's commands as JSON over HTTP, plus `/status`, `/metrics` and
//! `/connections`.

use super::{
    api::{self, Reply},
    config::Config,
    state::Daemon,
    status,
};
use crate::{
    codec::http::{Request, Response},
    worker::Limits,
    Ctx, Message, Worker,
};
use serde_json::{Map, Value};

/// The HTTP worker's name, in status output.
pub const NAME: &str = "http";

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
pub fn worker(config: &Config) -> crate::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("http://{}", config.listen.http))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.refusal = Vec::new();
    json(503, &error("too many API connections"))
        .header("Connection", "close")
        .header("Retry-After", "1")
        .encode(&mut worker.refusal);
    worker.on_message(|ctx, conn, msg| {
        if let Message::Request(req) = msg {
            let response = handle(ctx, req);
            let _ = ctx.io.respond(conn, &response);
        }
    });
    Ok(worker)
}

/// Per-connection limits from the configuration. A backend that does not read its replies
/// is not read from either (backpressure): every request gets its reply, in order.
pub fn limits(config: &Config) -> Limits {
    config.limits.api(config.limits.http_idle_timeout)
}

fn handle(ctx: &mut Ctx<'_, Daemon>, req: &Request) -> Response {
    let secret = &ctx.state.config.auth.api_secret;
    if !secret.is_empty() {
        let given = req
            .header("authorization")
            .and_then(|v| v.strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| super::secret_matches(g, secret.as_bytes())) {
            ctx.state.stats.auth_failures += 1;
            return json(
                401,
                &error("unauthorized: send Authorization: Bearer <api_secret>"),
            )
            .header("WWW-Authenticate", "Bearer");
        }
    }
    let name = req.path().trim_start_matches('/');
    match (req.method.as_str(), name) {
        ("GET", "status") => json(200, &status::json(ctx)),
        ("GET", "connections") => json(200, &status::connections(ctx)),
        ("GET", "metrics") => Response::new(200)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .body(status::metrics(ctx)),
        ("POST", "" | "api") => reply(api::execute(ctx, &req.body)),
        ("POST", cmd) if COMMANDS.contains(&cmd) => match with_cmd(cmd, &req.body) {
            Ok(body) => reply(api::execute(ctx, &body)),
            Err(message) => json(400, &error(message)),
        },
        ("GET", cmd) if QUERIES.contains(&cmd) => {
            let mut object = query_object(req);
            object.insert("cmd".into(), Value::String(cmd.into()));
            reply(api::execute(
                ctx,
                Value::Object(object).to_string().as_bytes(),
            ))
        }
        (_, "status" | "connections" | "metrics") => json(405, &error("use GET")),
        (_, cmd) if COMMANDS.contains(&cmd) || cmd.is_empty() || cmd == "api" => {
            json(405, &error("use POST with a JSON body"))
        }
        _ => json(404, &error("no such endpoint")),
    }
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

fn reply(reply: Reply) -> Response {
    match reply {
        Reply::Compat(ok) => Response::new(if ok { 200 } else { 404 })
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(if ok { "ok\n" } else { "fail\n" }),
        Reply::Json(value) => {
            let ok = value.get("ok") == Some(&Value::Bool(true));
            json(if ok { 200 } else { 400 }, &value)
        }
    }
}

fn error(message: &str) -> Value {
    serde_json::json!({ "ok": false, "error": message })
}

fn json(status: u16, value: &Value) -> Response {
    Response::new(status)
        .header("Content-Type", "application/json")
        .body(format!("{value}\n"))
}

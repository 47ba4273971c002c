//! The internal text port (push.php's 5678): one command per line, one reply line each, in
//! order.

use super::{
    api::{self, Reply},
    config::Config,
    state::Daemon,
};
use crate::{push::command, worker::Limits, ConnId, Ctx, Message, Worker};

/// The text worker's name, in status output.
pub const NAME: &str = "text";

/// The worker for `config.listen.text`.
///
/// # Errors
/// A malformed address.
pub fn worker(config: &Config) -> crate::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("text://{}", config.listen.text))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.refusal = b"{\"ok\":false,\"error\":\"too many API connections\"}\n".to_vec();
    worker.on_message(on_line);
    worker.on_close(|ctx, conn| {
        ctx.state.api_authorized.remove(&conn);
    });
    worker.on_error(|ctx, conn, err| {
        log::info!("text API connection {conn}: {err}; answering fail and closing");
        if let crate::ConnError::Line(_) = err {
            // An oversized line is malformed: it gets its `fail`, then the connection
            // closes, since the rest of that line cannot be told from the next one.
            ctx.state.stats.pushes_fail += 1;
            let _ = ctx.io.send(conn, "fail");
        }
    });
    Ok(worker)
}

/// Per-connection limits from the configuration. A backend that does not read its replies
/// is not read from either (backpressure): every line gets its reply, in order.
pub fn limits(config: &Config) -> Limits {
    config.limits.api(config.limits.text_idle_timeout)
}

fn on_line(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, msg: Message<'_>) {
    let line = msg.as_bytes();
    let secret = &ctx.state.config.auth.api_secret;
    if !secret.is_empty() && !ctx.state.api_authorized.contains(&conn) {
        let presented = match command::parse(line) {
            Ok(command::Command::Auth { secret }) => Some(secret),
            _ => None,
        };
        if presented.is_some_and(|p| super::secret_matches(p.as_bytes(), secret.as_bytes())) {
            ctx.state.api_authorized.insert(conn);
            let _ = ctx.io.send(conn, r#"{"ok":true}"#);
        } else {
            ctx.state.stats.auth_failures += 1;
            log::warn!("text API connection {conn} refused: missing or wrong api_secret");
            let _ = ctx.io.send(conn, r#"{"ok":false,"error":"unauthorized"}"#);
            ctx.io.close(conn);
        }
        return;
    }
    let reply = api::execute(ctx, line);
    let _ = match reply {
        Reply::Compat(true) => ctx.io.send(conn, "ok"),
        Reply::Compat(false) => ctx.io.send(conn, "fail"),
        Reply::Json(value) => ctx.io.send(conn, value.to_string()),
    };
}

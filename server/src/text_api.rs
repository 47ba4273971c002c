//! The internal text port (push.php's 5678): one command per line, one reply line each, in
//! order.

use super::{
    api::{self, Compat, Reply},
    api_auth,
    config::Config,
    replies::Ticket,
    state::Daemon,
    store::journal,
};
use pushman::{push::command, ConnId, Ctx, Limits, Message, Worker};
use serde_json::json;
use std::net::SocketAddr;

/// The text worker's name, in status output.
pub(crate) const NAME: &str = "text";

/// The worker for `config.listen.text`, listening on `addr`.
///
/// # Errors
/// None in practice: the address is typed.
pub(crate) fn worker(config: &Config, addr: SocketAddr) -> pushman::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("text://{addr}"))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.refusal = (Reply::error("too many API connections").to_line() + "\n")
        .into_owned()
        .into_bytes();
    worker.on_message(on_line);
    worker.on_close(|ctx, conn| {
        ctx.state.api_authorized.remove(&conn);
        ctx.state.text_pending.remove(&conn);
    });
    worker.on_error(|ctx, conn, err| {
        log::info!("text API connection {conn}: {err}; answering fail and closing");
        if let pushman::ConnError::Line(_) = err {
            // An oversized line is malformed: it gets its `fail`, then the connection
            // closes, since the rest of that line cannot be told from the next one.
            ctx.state.stats.lines_refused += 1;
            let _ = ctx
                .io
                .send(conn, Reply::Compat(Compat::Refused).to_line().as_bytes());
        }
    });
    Ok(worker)
}

/// Per-connection limits from the configuration. A backend that does not read its replies
/// is not read from either (backpressure): every line gets its reply, in order.
pub(crate) fn limits(config: &Config) -> Limits {
    config.limits.api(config.limits.text_idle_timeout)
}

fn on_line(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, msg: Message<'_>) {
    let line = msg.as_bytes();
    if !ctx.state.config.auth.api_secret.is_empty() && !ctx.state.api_authorized.contains(&conn) {
        authenticate(ctx, conn, line);
        return;
    }
    if ctx.state.cluster.is_none() {
        if ctx.state.journal.is_none() {
            // Nothing waits for Redis or for a commit: each reply leaves at once, in order.
            let reply = api::execute_to_line(ctx, line);
            let _ = ctx.io.send(conn, reply.as_bytes());
            return;
        }
        let ticket = Ticket::next_text(ctx, conn);
        if let Some(reply) = journal::after_commit(ctx, ticket, |ctx| api::execute(ctx, line)) {
            ticket.answer(ctx, reply);
        }
        return;
    }
    let ticket = Ticket::next_text(ctx, conn);
    match crate::cluster::api::execute(ctx, line, ticket) {
        Some(reply) => ticket.answer(ctx, reply),
        None => ticket.defer(ctx),
    }
}

/// The first line of a connection when `api_secret` is set: `{"cmd":"auth","secret":..}`.
/// Anything else, a wrong secret, or an address that used up its attempts
/// ([`api_auth::MAX_FAILURES`] per minute) is answered and the connection closed: a
/// push.php line with `fail`, an extended one with a JSON error.
fn authenticate(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, line: &[u8]) {
    let Some(ip) = ctx.io.peer_addr(conn).map(|a| a.ip()) else {
        return;
    };
    let now = ctx.io.now();
    let parsed = command::parse_request(line);
    let mode = match &parsed {
        Ok(command) => command.mode(),
        Err(refused) => refused.mode,
    };
    let reply = if ctx.state.api_throttle.blocked(ip, now) {
        log::warn!("text API connection {conn} from {ip} refused: too many wrong api_secrets");
        Reply::refused(mode, "unauthorized: too many attempts, retry later")
    } else {
        let presented = match parsed {
            Ok(command::Command::Auth { secret }) => Some(secret),
            _ => None,
        };
        let expected = ctx.state.config.auth.api_secret.as_bytes();
        if presented.is_some_and(|p| api_auth::secret_matches(p.as_bytes(), expected)) {
            ctx.state.api_throttle.succeeded(ip);
            ctx.state.api_authorized.insert(conn);
            let _ = ctx.io.send(
                conn,
                Reply::Done(json!({ "ok": true })).to_line().as_bytes(),
            );
            return;
        }
        ctx.state.api_throttle.failed(ip, now);
        ctx.state.stats.auth_failures += 1;
        log::warn!("text API connection {conn} from {ip} refused: missing or wrong api_secret");
        Reply::refused(mode, "unauthorized")
    };
    ctx.state.stats.lines_refused += 1;
    let _ = ctx.io.send(conn, reply.to_line().as_bytes());
    ctx.io.close(conn);
}

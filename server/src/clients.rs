//! The browsers' side: a WebSocket worker that binds each connection to its uid (first
//! message, or a verified token), enforces connection limits and the slow-consumer policy.
//!
//! A client that puts `pushman=1` in its URL's query is told when it is bound: its first
//! frame is `{"pushman":"bound","uid":UID}`. Clients that do not ask see push.php's
//! behaviour byte for byte (pushes only).

use super::{
    config::{AuthMode, Config, SlowConsumer},
    inbox::{self, Greeting},
    proxy,
    state::Daemon,
};
use pushman::{codec::http::Request, push::token, ConnId, Ctx, Limits, Message, Refusal, Worker};
use std::{
    net::IpAddr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// The WebSocket worker's name, in status output.
pub(crate) const NAME: &str = "websocket";
/// The name of the plain `ws://` listener beside a TLS one (`tls.ws_plain`): the same
/// callbacks, its own name so `status` tells the two apart.
pub(crate) const PLAIN_NAME: &str = "websocket-plain";
/// Longest uid accepted, in bytes.
const MAX_UID: usize = 256;
/// Close code for authentication failures and policy violations (RFC 6455 §7.4.1).
pub(super) const POLICY: u16 = 1008;

/// Lets one "refusing connection" line through per interval, so a flood of refused
/// connections cannot flood the log; each line says how many it stands for.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    /// At most one line per this interval.
    const EVERY: Duration = Duration::from_secs(10);

    /// `Some(refusals not logged since the last line)` when a line may be written now.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < Self::EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The worker for `config.listen.ws`.
///
/// # Errors
/// A malformed address.
pub(crate) fn worker(config: &Config) -> pushman::Result<Worker<Daemon>> {
    let mut worker = Worker::new(&format!("websocket://{}", config.listen.ws))?;
    worker.name = NAME.into();
    worker.limits = limits(config);
    worker.on_connect(on_connect);
    worker.on_ws_handshake(on_handshake);
    worker.on_message(on_message);
    worker.on_close(on_close);
    worker.on_buffer_full(on_buffer_full);
    worker.on_http_request(super::demo::page);
    Ok(worker)
}

/// Per-connection limits from the configuration.
pub(crate) fn limits(config: &Config) -> Limits {
    Limits {
        max_package_size: config.limits.max_client_message,
        max_send_buffer_size: config.limits.send_buffer,
        ..Limits::default()
    }
}

/// Counts the connection, then refuses it if that passed a limit. Every connection is
/// counted here and uncounted in `on_close`, which the library runs for each one, refused
/// ones included (right after this callback, before the next accept): no marker needed.
/// A trusted proxy's connection is counted per IP at its handshake, which names the client.
fn on_connect(ctx: &mut Ctx<'_, Daemon>, conn: ConnId) {
    ctx.state.ws_connections += 1;
    let Some(ip) = ctx.io.peer_addr(conn).map(|a| a.ip()) else {
        return;
    };
    let per_ip = if proxy::is_trusted(&ctx.state.config.auth.trusted_proxies, ip) {
        ctx.state.proxied.insert(conn, None);
        None
    } else {
        count_ip(ctx.state, ip)
    };
    let reason = if ctx.state.ws_connections > ctx.state.config.limits.max_connections {
        Some("max_connections")
    } else {
        per_ip
    };
    if let Some(reason) = reason {
        refuse(ctx, conn, ip, reason);
        ctx.io.destroy(conn);
        return;
    }
    let now = ctx.io.now();
    ctx.state.unwatched.push((conn, now));
}

/// Counts one more connection from `ip`; names the limit that passed, if one did.
fn count_ip(state: &mut Daemon, ip: IpAddr) -> Option<&'static str> {
    let from_ip = state.per_ip.entry(ip).or_default();
    *from_ip += 1;
    (*from_ip > state.config.limits.max_connections_per_ip).then_some("max_connections_per_ip")
}

/// Counts and logs a refused connection (at most one line per interval).
fn refuse(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, ip: IpAddr, reason: &str) {
    let now = ctx.io.now();
    if let Some(suppressed) = ctx.state.refusal_log.admit(now) {
        log::warn!(
            "refusing connection {conn} from {ip}: {reason} reached \
             ({suppressed} more refused since the last such line)"
        );
    }
    ctx.state.stats.connections_refused += 1;
}

/// The client's address: the one a trusted proxy named, else the peer's.
pub(crate) fn client_ip(ctx: &Ctx<'_, Daemon>, conn: ConnId) -> Option<IpAddr> {
    match ctx.state.proxied.get(&conn) {
        Some(Some(ip)) => Some(*ip),
        _ => ctx.io.peer_addr(conn).map(|a| a.ip()),
    }
}

fn on_handshake(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, req: &Request) -> Result<(), Refusal> {
    if ctx.state.proxied.contains_key(&conn) {
        forwarded_client(ctx, conn, req)?;
    }
    let origins = &ctx.state.config.auth.origins;
    if !origins.is_empty() {
        let origin = req
            .header("origin")
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        if !origins.iter().any(|allowed| *allowed == origin) {
            log::info!("connection {conn}: origin {origin:?} not allowed");
            return Err(Refusal {
                status: 403,
                reason: "origin not allowed".into(),
            });
        }
    }
    let greeting = Greeting::from_request(req);
    if !greeting.is_plain() {
        ctx.io.set_data(conn, greeting);
    }
    if ctx.state.config.auth.mode == AuthMode::Token {
        if let Some(token) = req.query_param("token") {
            match verify(ctx, conn, &token) {
                Ok(uid) => bind(ctx, conn, &uid),
                // The upgrade completes, so the browser sees why in the close frame.
                Err(reason) => ctx.io.close_with(conn, POLICY, reason),
            }
        }
    }
    Ok(())
}

/// Reads the client's address from a trusted proxy's headers and counts it per IP; past
/// `max_connections_per_ip` the upgrade is refused with 429 (the proxy passes it on).
fn forwarded_client(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, req: &Request) -> Result<(), Refusal> {
    let Some(peer) = ctx.io.peer_addr(conn).map(|a| a.ip()) else {
        return Ok(());
    };
    let client = proxy::client_ip(&ctx.state.config.auth.trusted_proxies, peer, req);
    ctx.state.proxied.insert(conn, Some(client));
    let Some(reason) = count_ip(ctx.state, client) else {
        return Ok(());
    };
    refuse(ctx, conn, client, reason);
    Err(Refusal {
        status: 429,
        reason: "too many connections from this address".into(),
    })
}

fn on_message(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, msg: Message<'_>) {
    if ctx.state.registry.uid_of(conn).is_some() {
        return; // As in push.php, only the first message means something.
    }
    let Message::Text(first) = msg else {
        ctx.io.close_with(
            conn,
            POLICY,
            "the first message must be a text uid or token",
        );
        return;
    };
    match ctx.state.config.auth.mode {
        AuthMode::None if first.is_empty() || first.len() > MAX_UID => {
            ctx.io
                .close_with(conn, POLICY, "uid must be 1 to 256 bytes");
        }
        AuthMode::None => bind(ctx, conn, first),
        AuthMode::Token => match verify(ctx, conn, first) {
            Ok(uid) => bind(ctx, conn, &uid),
            Err(reason) => ctx.io.close_with(conn, POLICY, reason),
        },
    }
}

/// Binds `conn` to `uid`; a client that asked for it gets the bound frame, before any push
/// (during the handshake it is queued behind the 101 response).
fn bind(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, uid: &str) {
    log::debug!("connection {conn} is uid {uid:?}");
    let first = !ctx.state.registry.is_online(uid);
    let old = ctx.state.registry.uid_of(conn).map(str::to_owned);
    ctx.state.registry.bind(uid, conn);
    let mut greeting = ctx.io.take_data::<Greeting>(conn).unwrap_or_default();
    if ctx.state.cluster.is_some() {
        if let Some(old) = old.filter(|old| !ctx.state.registry.is_online(old)) {
            crate::cluster::engine::on_last_tab(ctx, &old);
        }
        // The inbox in Redis writes the route in its read, when it reads.
        greeting = match crate::cluster::inbox::on_bind(ctx, conn, uid, first, greeting) {
            Ok(()) => return,
            Err(greeting) => greeting,
        };
        if first {
            crate::cluster::engine::on_first_tab(ctx, uid);
        }
    }
    inbox::on_bind(ctx, conn, uid, greeting);
}

/// Checks a client token; counts and logs failures.
fn verify(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, token: &str) -> Result<String, &'static str> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let peer = client_ip(ctx, conn);
    token::verify(ctx.state.config.auth.secret.as_bytes(), token, now).map_err(|e| {
        ctx.state.stats.auth_failures += 1;
        match peer {
            Some(peer) => log::info!("connection {conn} from {peer}: client token refused: {e}"),
            None => log::info!("connection {conn}: client token refused: {e}"),
        }
        match e {
            token::TokenError::Expired => "token expired",
            _ => "invalid token",
        }
    })
}

fn on_close(ctx: &mut Ctx<'_, Daemon>, conn: ConnId) {
    let uid = ctx.state.registry.unbind(conn);
    inbox::forget(ctx.state, conn);
    crate::cluster::inbox::forget(ctx.state, conn);
    if let Some(uid) =
        uid.filter(|u| ctx.state.cluster.is_some() && !ctx.state.registry.is_online(u))
    {
        crate::cluster::engine::on_last_tab(ctx, &uid);
    }
    ctx.state.ws_connections = ctx.state.ws_connections.saturating_sub(1);
    let counted = match ctx.state.proxied.remove(&conn) {
        Some(client) => client,
        None => ctx.io.peer_addr(conn).map(|a| a.ip()),
    };
    if let Some(ip) = counted {
        if let Some(n) = ctx.state.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                ctx.state.per_ip.remove(&ip);
            }
        }
    }
}

fn on_buffer_full(ctx: &mut Ctx<'_, Daemon>, conn: ConnId) {
    let uid = ctx.state.registry.uid_of(conn).unwrap_or("-").to_string();
    match ctx.state.config.limits.slow_consumer {
        SlowConsumer::Close => {
            log::info!("connection {conn} (uid {uid}) closed: send buffer full (slow consumer)");
            ctx.state.stats.slow_consumers_closed += 1;
            ctx.io.close_with(conn, POLICY, "slow consumer");
        }
        SlowConsumer::Drop => {
            log::info!(
                "connection {conn} (uid {uid}): send buffer full, dropping pushes until it drains"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RefusalLog;
    use std::time::{Duration, Instant};

    #[test]
    fn refusal_log_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for ms in [1, 500, 9_999] {
            assert_eq!(log.admit(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(log.admit(t0 + Duration::from_secs(10)), Some(3));
        assert_eq!(log.admit(t0 + Duration::from_secs(11)), None);
        assert_eq!(log.admit(t0 + Duration::from_secs(21)), Some(1));
    }
}

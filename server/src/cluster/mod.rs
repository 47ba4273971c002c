//! Cluster mode: N pushman nodes as one push server, on Redis (docs/CLUSTER.md).
//!
//! This file is the non-blocking Redis client: two outbound connections per node, one
//! for commands (pipelined; replies matched first in, first out) and one for the node's
//! subscriptions; login (`AUTH`, `SELECT`) and `SCRIPT LOAD` pipelined ahead of anything
//! else on each (re)connect; command and connect timeouts; reconnects with backoff. The
//! reactor never waits for Redis: a command's continuation ([`Then`]) runs when its reply
//! arrives, or with [`Unavailable`] when the link fails first. [`engine`] is what the
//! daemon does with it.

mod acks;
pub(crate) mod api;
mod callbacks;
pub(crate) mod engine;
pub(crate) mod inbox;
mod inbox_push;
mod inbox_scripts;
mod link;
pub(crate) mod scripts;
pub(crate) mod url;

use crate::state::Daemon;
use link::{Link, State, Waiting};
use pushman::{
    codec::resp::{CommandBuf, Value},
    ConnId, Ctx, Upstream, Worker,
};
use scripts::Script;
use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};
use url::RedisUrl;

/// How long Redis may take to answer a command before the link counts as broken.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connect to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The tick that reconnects, checks timeouts, renews the lease and claims due pushes.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Longest an idle node waits between two claims of due scheduled pushes: the safety net
/// for a nudge that did not arrive (new earliest pushes nudge every node at once).
pub(crate) const MAX_CLAIM_WAIT: Duration = Duration::from_secs(1);
/// Most commands waiting for replies; past it, commands are refused as unavailable (a
/// Redis that stalls must not grow memory without bound).
const MAX_WAITING: usize = 100_000;

/// Runs with a command's reply, or with [`Unavailable`] if the link failed first.
pub(crate) type Then = Box<dyn FnOnce(&mut Ctx<'_, Daemon>, Result<Value, Unavailable>)>;

/// Redis cannot be reached now (down, timed out, or too far behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cluster unavailable")
    }
}

/// Counters for `status` and `/metrics`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    /// Commands sent on the command link.
    pub(crate) commands: u64,
    /// Commands refused because Redis was unavailable.
    pub(crate) refused: u64,
    /// Messages received on this node's channels.
    pub(crate) inbox: u64,
    /// Route writes (a uid's first tab here, or its last gone).
    pub(crate) route_writes: u64,
    /// Scheduled pushes this node claimed and published.
    pub(crate) claimed: u64,
}

/// The cluster state of one node.
pub(crate) struct Cluster {
    pub(crate) url: RedisUrl,
    /// This node's id.
    pub(crate) node: String,
    /// `cluster.key_prefix`.
    pub(crate) prefix: String,
    /// `cluster.lease`.
    pub(crate) lease: Duration,
    upstream: Upstream,
    /// Commands, pipelined.
    pub(crate) cmd: Link,
    /// `SUBSCRIBE P inbox:<node> P all`.
    pub(crate) sub: Link,
    /// Subscriptions confirmed on the current `sub` connection.
    subscribed: u8,
    /// When the lease is next renewed.
    next_lease: Instant,
    /// When a renewal last succeeded.
    pub(crate) lease_ok: Option<Instant>,
    /// A claim of due scheduled pushes is in flight.
    claiming: bool,
    /// When the next claim runs: when the earliest scheduled push falls due (as the last
    /// claim read it), at most [`MAX_CLAIM_WAIT`] from the last one; at once after a nudge
    /// (a new earliest push) or a reconnect.
    pub(crate) next_claim: Instant,
    /// A nudge came while a claim was in flight: that claim's wait is stale.
    pub(crate) nudged: bool,
    pub(crate) counters: Counters,
    scratch: Vec<u8>,
    /// Each script's SHA1, indexed like [`Script::ALL`].
    shas: Vec<String>,
    /// Pushes waiting for other nodes' delivery counts, by request id.
    acks: acks::Acks,
    /// Routes were just written in full: a lapsed lease found by the next renewal needs
    /// no second rewrite.
    routes_fresh: bool,
    /// The next lease renewal also runs the janitor (every third renewal: once a lease).
    janitor_due: bool,
    renewals: u64,
    /// The inbox in Redis (`[inbox] enabled`); `None` when off.
    pub(crate) inbox: Option<inbox::RedisInbox>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("cmd", &self.cmd)
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// Which of the two links a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Cmd,
    Sub,
}

impl Cluster {
    /// The cluster state for `config`; `upstream` carries the Redis connections' callbacks
    /// ([`worker`]).
    pub(crate) fn new(
        config: &crate::config::Cluster,
        url: RedisUrl,
        node: String,
        upstream: Upstream,
    ) -> Self {
        let now = Instant::now();
        Self {
            url,
            node,
            prefix: config.key_prefix.clone(),
            lease: Duration::from_secs_f64(config.lease),
            upstream,
            cmd: Link::new(now),
            sub: Link::new(now),
            subscribed: 0,
            next_lease: now,
            lease_ok: None,
            claiming: false,
            next_claim: now,
            nudged: false,
            counters: Counters::default(),
            scratch: Vec::new(),
            shas: Script::ALL.iter().map(|s| s.sha()).collect(),
            acks: acks::Acks::default(),
            routes_fresh: false,
            janitor_due: false,
            renewals: 0,
            inbox: None,
        }
    }

    fn which(&self, conn: ConnId) -> Option<Which> {
        if self.cmd.conn == Some(conn) {
            Some(Which::Cmd)
        } else if self.sub.conn == Some(conn) {
            Some(Which::Sub)
        } else {
            None
        }
    }

    fn link(&mut self, which: Which) -> &mut Link {
        match which {
            Which::Cmd => &mut self.cmd,
            Which::Sub => &mut self.sub,
        }
    }

    /// The key or channel `name` under the prefix.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The cluster part of `status` / `/status`.
    pub(crate) fn status(&self, now: Instant) -> crate::status::ClusterStatus {
        let c = &self.counters;
        crate::status::ClusterStatus {
            command_link: self.cmd.state.name().to_string(),
            commands: c.commands,
            commands_refused: c.refused,
            inbox_messages: c.inbox,
            lease_age_s: self
                .lease_ok
                .map(|t| now.saturating_duration_since(t).as_secs_f64()),
            link: self.link_state().to_string(),
            node: self.node.clone(),
            queued_commands: self.cmd.waiting.len(),
            reconnects: self.cmd.connects.saturating_sub(1) + self.sub.connects.saturating_sub(1),
            redis: self.url.addr.to_string(),
            route_writes: c.route_writes,
            rtt_ms: self.cmd.rtt.map(|d| d.as_secs_f64() * 1000.0),
            scheduled_claimed: c.claimed,
            subscription_link: self.sub.state.name().to_string(),
            inbox: self.inbox.as_ref().map(inbox::RedisInbox::report),
        }
    }

    /// The link's state for `status`: `up`, `connecting` or `down`.
    pub(crate) fn link_state(&self) -> &'static str {
        match (self.cmd.state, self.sub.state) {
            (State::Up, State::Up) => "up",
            (State::Down, _) | (_, State::Down) => "down",
            _ => "connecting",
        }
    }
}

/// The node id: `configured`, or the one kept in `<pid file>.node`, made (random) and kept
/// at first start.
///
/// # Errors
/// The file cannot be read or written.
pub(crate) fn node_id(configured: &str, pid_file: &Path) -> Result<String, String> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    let mut path = pid_file.as_os_str().to_owned();
    path.push(".node");
    let path = std::path::PathBuf::from(path);
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| format!("cannot make a node id: /dev/urandom: {e}"))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("{id}\n"))
        .map_err(|e| format!("cannot keep the node id in {}: {e}", path.display()))?;
    Ok(id)
}

/// The outbound worker of both Redis links (raw `tcp`: RESP is decoded here).
pub(crate) fn worker(url: &RedisUrl) -> Worker<Daemon> {
    let mut worker = Worker::new(&format!("tcp://{}", url.addr)).expect("a socket address");
    worker.name = "redis".into();
    worker.connect_timeout = CONNECT_TIMEOUT;
    worker.limits.max_send_buffer_size = 64 << 20;
    worker.on_connect(callbacks::on_connect);
    // Runs before the graceful stop closes the links (which flush what is queued).
    worker.on_worker_stop(engine::on_stop);
    worker.on_message(callbacks::on_message);
    worker.on_close(callbacks::on_close);
    worker.on_error(|ctx, conn, err| {
        let Some(cluster) = ctx.state.cluster.as_ref() else {
            return;
        };
        // Logged once per outage: the first failed attempt warns, retries are debug.
        if cluster.cmd.connects > 0 && cluster.cmd.state == State::Up || cluster.cmd.connects == 0 {
            log::warn!("redis {}: connection {conn}: {err}", cluster.url.addr);
        } else {
            log::debug!("redis {}: connection {conn}: {err}", cluster.url.addr);
        }
    });
    worker
}

/// Sends `args` on the command link; `then` runs with the reply.
///
/// # Errors
/// [`Unavailable`] when the link is not up (nothing was sent; `then` is dropped).
pub(crate) fn call(
    ctx: &mut Ctx<'_, Daemon>,
    args: &CommandBuf,
    then: Option<Then>,
) -> Result<(), Unavailable> {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return Err(Unavailable);
    };
    let result = match cluster.cmd.conn {
        Some(conn) if cluster.cmd.state == State::Up && cluster.cmd.waiting.len() < MAX_WAITING => {
            cluster.scratch.clear();
            args.encode(&mut cluster.scratch);
            ctx.io.send(conn, &cluster.scratch).map_err(|_| Unavailable)
        }
        _ => Err(Unavailable),
    };
    match result {
        Ok(()) => {
            cluster.counters.commands += 1;
            cluster.cmd.waiting.push_back(Waiting {
                sent: ctx.io.now(),
                then,
            });
        }
        Err(_) => cluster.counters.refused += 1,
    }
    result
}

/// `EVALSHA script 0 prefix args…`.
pub(crate) fn eval(
    ctx: &mut Ctx<'_, Daemon>,
    script: Script,
    args: &[&str],
    then: Option<Then>,
) -> Result<(), Unavailable> {
    let Some(cluster) = ctx.state.cluster.as_ref() else {
        return Err(Unavailable);
    };
    let sha = &cluster.shas[Script::ALL.iter().position(|s| *s == script).unwrap_or(0)];
    let mut cmd = CommandBuf::new("EVALSHA").arg(sha).arg("0");
    cmd.push(&cluster.prefix);
    for arg in args {
        cmd.push(arg);
    }
    call(ctx, &cmd, then)
}

/// Every [`TICK`]: reconnects what is down, drops a link whose oldest reply is overdue,
/// renews the lease, claims due scheduled pushes.
pub(crate) fn tick(ctx: &mut Ctx<'_, Daemon>) {
    let now = ctx.io.now();
    if ctx.io.stopping() {
        return;
    }
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    for which in [Which::Cmd, Which::Sub] {
        let upstream = cluster.upstream;
        let addr = cluster.url.addr;
        let link = cluster.link(which);
        if let (Some(conn), true) = (link.conn, link.overdue(now, COMMAND_TIMEOUT)) {
            log::warn!("redis {addr}: no reply in {COMMAND_TIMEOUT:?}; reconnecting");
            ctx.io.destroy(conn);
            continue;
        }
        if link.state == State::Down && now >= link.retry_at {
            match ctx.io.connect(upstream, addr) {
                Ok(conn) => link.connecting(conn),
                Err(e) => {
                    log::debug!("redis {addr}: {e}");
                    link.lost(now);
                }
            }
        }
    }
    engine::tick(ctx, now);
}

/// The lease is due for renewal (and the subscription link is up: a node that cannot
/// receive must not look alive).
fn lease_due(cluster: &mut Cluster, now: Instant) -> bool {
    if cluster.sub.state != State::Up || cluster.cmd.state != State::Up || now < cluster.next_lease
    {
        return false;
    }
    cluster.next_lease = now + cluster.lease / 3;
    cluster.renewals += 1;
    cluster.janitor_due = cluster.renewals % 3 == 0;
    true
}

/// Whether a claim may start now (one at a time, when due).
fn claim_due(cluster: &mut Cluster, now: Instant) -> bool {
    if cluster.claiming || cluster.cmd.state != State::Up || now < cluster.next_claim {
        return false;
    }
    cluster.claiming = true;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_id_is_made_once_and_kept_beside_the_pid_file() {
        let dir = std::env::temp_dir().join(format!("pushman-node-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid = dir.join("pushman.pid");
        let first = node_id("", &pid).unwrap();
        assert_eq!(first.len(), 16, "{first}");
        assert_eq!(node_id("", &pid).unwrap(), first);
        let kept = std::fs::read_to_string(dir.join("pushman.pid.node")).unwrap();
        assert_eq!(kept.trim(), first);
        assert_eq!(node_id("web-1", &pid).unwrap(), "web-1");
        let other = node_id("", &dir.join("other.pid")).unwrap();
        assert_ne!(other, first);
        let bad = node_id("", &dir.join("missing-dir").join("x.pid"));
        assert!(bad.unwrap_err().contains("missing-dir"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

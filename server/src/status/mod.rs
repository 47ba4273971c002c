//! What `pushman status`, `pushman connections`, `GET /status` and `GET /metrics` report:
//! one typed [`StatusReport`], built once per request and rendered as JSON, as Prometheus
//! text ([`prometheus`]) and, read back by the CLI, as a table.

mod prometheus;

use super::{
    fd_limit, http_api,
    state::Daemon,
    store::{journal::JournalStatus, Store},
    text_api,
};
use pushman::Ctx;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The daemon's figures. Fields are in the JSON's key order (alphabetical); the keys are
/// documented in docs/PROTOCOL.md, and `/metrics` names are derived from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatusReport {
    /// API connections refused by `max_api_connections` or `api_fd_reserve`.
    pub(crate) api_connections_refused: u64,
    /// The client auth mode, `none` or `token`.
    pub(crate) auth: String,
    /// Refused tokens and API secrets.
    pub(crate) auth_failures: u64,
    /// Connections bound to a uid.
    pub(crate) bound_connections: usize,
    /// Cluster mode's Redis links and counters; `null` in embedded mode.
    #[serde(default)]
    pub(crate) cluster: Option<ClusterStatus>,
    /// Open WebSocket connections.
    pub(crate) connections: usize,
    /// WebSocket connections refused by limits.
    pub(crate) connections_refused: u64,
    /// Groups with members.
    pub(crate) groups: usize,
    /// The inbox (`[inbox] enabled`), `null` when off.
    #[serde(default)]
    pub(crate) inbox: Option<InboxStatus>,
    /// The durable inbox's log (`inbox.durable`), `null` when off.
    #[serde(default)]
    pub(crate) inbox_journal: Option<JournalStatus>,
    /// Backend lines and requests refused as malformed, unknown or unauthorized.
    pub(crate) lines_refused: u64,
    /// Every listener, with its open connections.
    pub(crate) listeners: Vec<Listener>,
    /// Resident memory (0 where unknown).
    pub(crate) memory_rss_bytes: u64,
    /// Always `true`: the backend reply convention.
    pub(crate) ok: bool,
    /// Descriptors open, and the limits.
    pub(crate) open_files: OpenFiles,
    /// The daemon's process id.
    pub(crate) pid: u32,
    /// Push results and frames.
    pub(crate) pushes: Pushes,
    /// Scheduled pushes delivered.
    pub(crate) scheduled_delivered: u64,
    /// Scheduled pushes not yet delivered.
    pub(crate) scheduled_pending: usize,
    /// Stored scheduled pushes that could not be read back.
    pub(crate) scheduled_unreadable: u64,
    /// Connections closed as slow consumers.
    pub(crate) slow_consumers_closed: u64,
    /// The store of scheduled pushes.
    pub(crate) store: StoreStatus,
    /// Connections closed by idle or handshake timeouts.
    pub(crate) timeouts: u64,
    /// The WebSocket port's certificate (`[tls]`); `null` while TLS is off.
    #[serde(default)]
    pub(crate) tls: Option<crate::tls::TlsStatus>,
    /// Uids with at least one connection.
    pub(crate) uids_online: usize,
    /// Seconds since start.
    pub(crate) uptime_s: u64,
    /// pushman's version.
    #[serde(default)]
    pub(crate) version: String,
}

/// This node in cluster mode (docs/CLUSTER.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClusterStatus {
    /// The command link: `up`, `connecting` or `down`.
    pub(crate) command_link: String,
    /// Redis commands sent.
    pub(crate) commands: u64,
    /// Commands not sent because Redis was unavailable.
    pub(crate) commands_refused: u64,
    /// Messages received from other nodes.
    pub(crate) inbox_messages: u64,
    /// Seconds since the lease was last renewed.
    pub(crate) lease_age_s: Option<f64>,
    /// Both links: `up`, `connecting` or `down`.
    pub(crate) link: String,
    /// This node's id.
    pub(crate) node: String,
    /// Commands sent and not yet answered.
    pub(crate) queued_commands: usize,
    /// Reconnects of either link.
    pub(crate) reconnects: u64,
    /// Redis's address.
    pub(crate) redis: String,
    /// Route writes (a uid's first or last tab on this node).
    pub(crate) route_writes: u64,
    /// Round trip of the last command, ms.
    pub(crate) rtt_ms: Option<f64>,
    /// Scheduled pushes this node claimed.
    pub(crate) scheduled_claimed: u64,
    /// The subscription link: `up`, `connecting` or `down`.
    pub(crate) subscription_link: String,
    /// The inbox in Redis (`[inbox] enabled`), `null` when off.
    #[serde(default)]
    pub(crate) inbox: Option<crate::cluster::inbox::RedisInboxStatus>,
}

/// The inbox's figures: gauges now, counters since start (docs/PROTOCOL.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InboxStatus {
    /// Bytes kept, as the memory cap counts them.
    pub(crate) bytes: usize,
    /// Its epoch (16 hex digits).
    pub(crate) epoch: String,
    /// Pushes that left before their time, by reason.
    pub(crate) evicted: Evicted,
    /// Positions of empty streams forgotten (idle or for memory).
    pub(crate) forgotten: u64,
    /// Resumes that could not be served (the client was told).
    pub(crate) gaps: u64,
    /// `inbox.max_memory`.
    pub(crate) max_bytes: usize,
    /// Pushes kept now.
    pub(crate) messages: usize,
    /// Queued pushes delivered to a uid's first connection or a resume.
    pub(crate) queued_delivered: u64,
    /// Pushes sent again to resuming clients.
    pub(crate) replayed: u64,
    /// Uids with a stream (positions of empty streams included).
    pub(crate) uids: usize,
}

/// Evictions by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Evicted {
    /// `inbox.max_memory`.
    pub(crate) memory: u64,
    /// `inbox.ttl`.
    pub(crate) ttl: u64,
    /// `inbox.max_per_uid`.
    pub(crate) uid_cap: u64,
}

impl InboxStatus {
    fn of(inbox: &pushman::push::inbox::Inbox) -> Self {
        let s = inbox.stats();
        Self {
            bytes: s.bytes,
            epoch: inbox.epoch().to_string(),
            evicted: Evicted {
                memory: s.evicted_memory,
                ttl: s.evicted_ttl,
                uid_cap: s.evicted_uid_cap,
            },
            forgotten: s.forgotten,
            gaps: s.gaps,
            max_bytes: inbox.config().max_bytes,
            messages: s.messages,
            queued_delivered: s.pending_delivered,
            replayed: s.replayed,
            uids: s.uids,
        }
    }
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listener {
    /// The bound address.
    pub(crate) addr: String,
    /// Its open connections.
    pub(crate) connections: usize,
    /// The worker's name (`websocket`, `text`, `http`).
    pub(crate) name: String,
}

/// Descriptors: `null` where `/proc` cannot tell; the limits are left out where unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpenFiles {
    /// The hard open-files limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hard_limit: Option<u64>,
    /// The soft open-files limit, which the kernel enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u64>,
    /// Descriptors open now.
    pub(crate) open: Option<usize>,
}

/// Push results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pushes {
    /// Frames dropped for full send buffers.
    pub(crate) dropped: u64,
    /// Pushes that reached no connection.
    pub(crate) fail: u64,
    /// Frames written or queued to browsers.
    pub(crate) frames_sent: u64,
    /// Pushes that reached a connection.
    pub(crate) ok: u64,
}

/// The store's health: `healthy`, and while it is down since how long, why, and how many
/// reopens were tried; `unremoved` counts sent pushes whose removal waits for the reopen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreStatus {
    /// Seconds it has been down (0 while healthy).
    pub(crate) failing_for_s: u64,
    /// Whether the file is open and working.
    pub(crate) healthy: bool,
    /// The error that closed it or that the last reopen failed with.
    pub(crate) last_error: Option<String>,
    /// The file.
    pub(crate) path: String,
    /// Reopens tried since it failed.
    pub(crate) reopen_attempts: u32,
    /// Sent pushes whose removal waits for the reopen.
    pub(crate) unremoved: usize,
}

impl StatusReport {
    /// The figures now.
    pub(crate) fn now(ctx: &mut Ctx<'_, Daemon>) -> Self {
        let state = &ctx.state;
        let listeners = ctx
            .io
            .listeners()
            .map(|(name, addr)| Listener {
                addr: addr.to_string(),
                connections: ctx.io.connections_of(name).count(),
                name: name.to_string(),
            })
            .collect();
        let limit = fd_limit::current();
        let s = &state.stats;
        Self {
            api_connections_refused: ctx.io.refused_connections(text_api::NAME)
                + ctx.io.refused_connections(http_api::NAME),
            auth: format!("{:?}", state.config.auth.mode).to_lowercase(),
            auth_failures: s.auth_failures,
            cluster: state.cluster.as_ref().map(|c| c.status(Instant::now())),
            bound_connections: state.registry.conn_total(),
            connections: state.ws_connections,
            connections_refused: s.connections_refused,
            groups: state.registry.groups_total(),
            inbox: state.inbox.as_ref().map(InboxStatus::of),
            inbox_journal: state.journal.as_ref().map(|j| j.stats.clone()),
            lines_refused: s.lines_refused,
            listeners,
            memory_rss_bytes: rss_bytes(),
            ok: true,
            open_files: OpenFiles {
                hard_limit: limit.map(|l| l.hard),
                limit: limit.map(|l| l.soft),
                open: fd_limit::open_count(),
            },
            pid: std::process::id(),
            pushes: Pushes {
                dropped: s.dropped,
                fail: s.pushes_fail,
                frames_sent: s.frames_sent,
                ok: s.pushes_ok,
            },
            scheduled_delivered: s.scheduled_delivered,
            scheduled_pending: state.schedule.len(),
            scheduled_unreadable: s.scheduled_unreadable,
            slow_consumers_closed: s.slow_consumers_closed,
            store: StoreStatus::of(&state.schedule),
            timeouts: s.timeouts,
            tls: state.tls.as_ref().map(crate::tls::TlsStatus::of),
            uids_online: state.registry.uid_total(),
            uptime_s: state.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl StoreStatus {
    fn of(store: &Store) -> Self {
        let h = store.health(Instant::now());
        Self {
            failing_for_s: h.failing_for.as_secs(),
            healthy: h.healthy,
            last_error: h.last_error,
            path: store.path().display().to_string(),
            reopen_attempts: h.reopen_attempts,
            unremoved: h.unremoved,
        }
    }
}

/// The `/connections` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Connections {
    /// Always `true`.
    pub(crate) ok: bool,
    /// Every open connection.
    pub(crate) connections: Vec<Connection>,
}

/// One connection: id, peer, uid, protocol, bytes, send buffer, age (alphabetical, as
/// the JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Connection {
    /// Seconds since accept.
    pub(crate) age_s: f64,
    /// Bytes received.
    pub(crate) bytes_in: u64,
    /// Bytes sent.
    pub(crate) bytes_out: u64,
    /// The connection's id.
    pub(crate) id: u64,
    /// Seconds since it last sent anything.
    pub(crate) idle_s: f64,
    /// The peer's address.
    pub(crate) peer: String,
    /// The client's address as a trusted proxy named it (`auth.trusted_proxies`); absent
    /// for direct connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forwarded_for: Option<String>,
    /// `websocket`, `text` or `http`.
    pub(crate) protocol: String,
    /// Bytes waiting in its send buffer.
    pub(crate) send_buffered: usize,
    /// The uid it is bound to, if any.
    pub(crate) uid: Option<String>,
    /// Its worker's name.
    pub(crate) worker: String,
}

impl Connections {
    /// Every open connection now.
    pub(crate) fn now(ctx: &mut Ctx<'_, Daemon>) -> Self {
        let connections = ctx
            .io
            .connections()
            .filter_map(|id| {
                let info = ctx.io.info(id)?;
                Some(Connection {
                    age_s: info.age.as_secs_f64(),
                    bytes_in: info.bytes_in,
                    bytes_out: info.bytes_out,
                    id: id.seq(),
                    idle_s: info.idle.as_secs_f64(),
                    peer: info.peer.to_string(),
                    forwarded_for: ctx
                        .state
                        .proxied
                        .get(&id)
                        .copied()
                        .flatten()
                        .map(|ip| ip.to_string()),
                    protocol: info.protocol.to_string(),
                    send_buffered: info.send_buffered,
                    uid: ctx.state.registry.uid_of(id).map(str::to_string),
                    worker: info.worker,
                })
            })
            .collect();
        Self {
            ok: true,
            connections,
        }
    }
}

/// This process's resident memory, from `/proc/self/status` (0 where unavailable).
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests;

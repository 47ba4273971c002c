//! The daemon's state, shared by its three workers: who is online, the schedule, counters.

use super::{config::Config, source::Source, store::Store};
use pushman::{push::registry::Registry, ConnId};
use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// Counters reported by `status` and `/metrics`; they only grow.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    /// Pushes that reached at least one connection.
    pub(crate) pushes_ok: u64,
    /// Pushes that reached nobody.
    pub(crate) pushes_fail: u64,
    /// Backend lines and requests refused as malformed, unknown or unauthorized: errors
    /// of the caller, counted apart from pushes to uids that are offline.
    pub(crate) lines_refused: u64,
    /// Frames not sent because a connection's buffer was full.
    pub(crate) dropped: u64,
    /// Frames written or queued.
    pub(crate) frames_sent: u64,
    /// Forged, expired or malformed client tokens, and bad API secrets.
    pub(crate) auth_failures: u64,
    /// Connections closed by the slow-consumer policy.
    pub(crate) slow_consumers_closed: u64,
    /// Connections refused by `max_connections` or `max_connections_per_ip`.
    pub(crate) connections_refused: u64,
    /// Connections closed for silence or for not sending their uid in time.
    pub(crate) timeouts: u64,
    /// Scheduled pushes delivered.
    pub(crate) scheduled_delivered: u64,
    /// Scheduled pushes dropped because their stored entry could not be read.
    pub(crate) scheduled_unreadable: u64,
}

/// Everything the workers share.
#[derive(Debug)]
pub(crate) struct Daemon {
    /// The configuration in force (replaced by `reload`).
    pub(crate) config: Config,
    /// Where it came from, for `reload`.
    pub(crate) source: Source,
    /// uid ↔ connections, groups.
    pub(crate) registry: Registry,
    /// Scheduled pushes, durable, reopened by itself after a fault.
    pub(crate) schedule: Store,
    /// Counters.
    pub(crate) stats: Stats,
    /// WebSocket connections per peer IP, for `max_connections_per_ip`.
    pub(crate) per_ip: HashMap<IpAddr, usize>,
    /// WebSocket connections open.
    pub(crate) ws_connections: usize,
    /// WebSocket connections from a trusted proxy: the client's IP once the handshake named
    /// it (then it is what `per_ip` counts), `None` before.
    pub(crate) proxied: HashMap<ConnId, Option<IpAddr>>,
    /// Text-API connections that presented the API secret.
    pub(crate) api_authorized: HashSet<ConnId>,
    /// Pushes kept per uid for reconnecting and offline clients (`[inbox]`); `None` when
    /// off.
    pub(crate) inbox: Option<pushman::push::inbox::Inbox>,
    /// The inbox's durable log (`inbox.durable`); `None` when off.
    pub(crate) journal: Option<super::store::journal::Journal>,
    /// Connections that read `msg` frames with offsets (`resume=1`).
    pub(crate) resumers: HashSet<ConnId>,
    /// Throttles the "refusing connection" log line.
    pub(crate) refusal_log: super::clients::RefusalLog,
    /// Wrong API secrets per peer address.
    pub(crate) api_throttle: super::api_auth::Throttle,
    /// WebSocket connections accepted since the heartbeat's last tick, and when: it takes
    /// them from here into its own schedule (which the heartbeat's timer owns).
    pub(crate) unwatched: Vec<(ConnId, Instant)>,
    /// Cluster mode (`[cluster] redis`): the Redis links and this node's id.
    pub(crate) cluster: Option<Box<super::cluster::Cluster>>,
    /// Text-API replies waiting for Redis, per connection (cluster mode).
    pub(crate) text_pending: HashMap<ConnId, super::replies::Pending>,
    /// When the daemon started.
    pub(crate) started: Instant,
    /// The same, in Unix milliseconds: scheduled pushes that fell due before it wait for
    /// browsers to reconnect (see `api::deliver_due`).
    pub(crate) started_ms: u64,
    /// The certificate of the WebSocket port (`[tls]`); `None` while TLS is off.
    pub(crate) tls: Option<super::tls::Loaded>,
    /// Wall-clock time for pushes kept in the inbox, without a system call per push.
    pub(crate) clock: WallClock,
}

impl Daemon {
    /// A daemon with nobody online.
    pub(crate) fn new(config: Config, source: Source, schedule: Store) -> Self {
        let inbox = config.inbox.open();
        Self {
            config,
            source,
            registry: Registry::new(),
            schedule,
            stats: Stats::default(),
            per_ip: HashMap::new(),
            ws_connections: 0,
            proxied: HashMap::new(),
            api_authorized: HashSet::new(),
            refusal_log: Default::default(),
            inbox,
            journal: None,
            resumers: HashSet::new(),
            api_throttle: Default::default(),
            unwatched: Vec::new(),
            cluster: None,
            text_pending: HashMap::new(),
            started: Instant::now(),
            started_ms: unix_ms(),
            tls: None,
            clock: WallClock::read(),
        }
    }
}

/// Unix milliseconds for the hot path: the reactor turn's monotonic time (`Io::now`, read
/// once per turn) past a wall-clock reading that the inbox's expiry timer renews every
/// 100 ms. A `clock_gettime` per kept push cost 1.5 % of the daemon's CPU under a burst.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    at: Instant,
    ms: u64,
}

impl WallClock {
    /// Reads the wall clock now.
    pub(crate) fn read() -> Self {
        Self {
            at: Instant::now(),
            ms: unix_ms(),
        }
    }

    /// Unix milliseconds at `now` (a turn's time, not before the last reading's).
    pub(crate) fn ms(&self, now: Instant) -> u64 {
        self.ms + now.saturating_duration_since(self.at).as_millis() as u64
    }
}

/// Milliseconds since the Unix epoch (scheduled pushes are stored in wall-clock time so they
/// survive restarts).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

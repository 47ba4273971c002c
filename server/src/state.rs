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
pub struct Stats {
    /// Pushes that reached at least one connection.
    pub pushes_ok: u64,
    /// Pushes that reached nobody.
    pub pushes_fail: u64,
    /// Backend lines and requests refused as malformed, unknown or unauthorized: errors
    /// of the caller, counted apart from pushes to uids that are offline.
    pub lines_refused: u64,
    /// Frames not sent because a connection's buffer was full.
    pub dropped: u64,
    /// Frames written or queued.
    pub frames_sent: u64,
    /// Forged, expired or malformed client tokens, and bad API secrets.
    pub auth_failures: u64,
    /// Connections closed by the slow-consumer policy.
    pub slow_consumers_closed: u64,
    /// Connections refused by `max_connections` or `max_connections_per_ip`.
    pub connections_refused: u64,
    /// Connections closed for silence or for not sending their uid in time.
    pub timeouts: u64,
    /// Scheduled pushes delivered.
    pub scheduled_delivered: u64,
    /// Scheduled pushes dropped because their stored entry could not be read.
    pub scheduled_unreadable: u64,
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Daemon {
    /// The configuration in force (replaced by `reload`).
    pub config: Config,
    /// Where it came from, for `reload`.
    pub source: Source,
    /// uid ↔ connections, groups.
    pub registry: Registry,
    /// Scheduled pushes, durable, reopened by itself after a fault.
    pub schedule: Store,
    /// Counters.
    pub stats: Stats,
    /// WebSocket connections per peer IP, for `max_connections_per_ip`.
    pub per_ip: HashMap<IpAddr, usize>,
    /// WebSocket connections open.
    pub ws_connections: usize,
    /// Text-API connections that presented the API secret.
    pub api_authorized: HashSet<ConnId>,
    /// Wrong API secrets per peer address.
    pub api_throttle: super::api_auth::Throttle,
    /// When each connection is next pinged; where the timeout checks stand.
    pub heartbeat: super::heartbeat::Heartbeat,
    /// When the daemon started.
    pub started: Instant,
    /// The same, in Unix milliseconds: scheduled pushes that fell due before it wait for
    /// browsers to reconnect (see `api::deliver_due`).
    pub started_ms: u64,
}

impl Daemon {
    /// A daemon with nobody online.
    pub fn new(config: Config, source: Source, schedule: Store) -> Self {
        Self {
            config,
            source,
            registry: Registry::new(),
            schedule,
            stats: Stats::default(),
            per_ip: HashMap::new(),
            ws_connections: 0,
            api_authorized: HashSet::new(),
            api_throttle: Default::default(),
            heartbeat: Default::default(),
            started: Instant::now(),
            started_ms: unix_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch (scheduled pushes are stored in wall-clock time so they
/// survive restarts).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

//! The daemon's configuration: a TOML file, every key optional, defaults that work at once.

mod de;
mod inbox;
#[cfg(test)]
mod tests;
mod tls;

pub(crate) use de::{parse_addr, parse_optional_addr};
pub(crate) use inbox::{InboxSettings, OfflineReply};
use serde::Deserialize;
use std::{fmt, net::SocketAddr, path::Path, path::PathBuf, time::Duration};
pub(crate) use tls::TlsSettings;

/// The longest `spin_micros`: a backend's round trip on one host is tens of microseconds,
/// and one across a network is better waited for asleep.
const MAX_SPIN_MICROS: u64 = 1000;

/// Everything `pushman.toml` can set. See [`DEFAULT_TOML`] for the commented defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Where to listen.
    pub(crate) listen: Listen,
    /// Who may connect and push.
    pub(crate) auth: Auth,
    /// Sizes and counts.
    pub(crate) limits: Limits,
    /// Pings and timeouts.
    pub(crate) heartbeat: Heartbeat,
    /// Files: pid, log, store.
    pub(crate) files: Files,
    /// Pushes kept for reconnecting and offline clients.
    pub(crate) inbox: InboxSettings,
    /// `error`, `warn`, `info`, `debug` or `trace` (or `off`).
    #[serde(deserialize_with = "de::log_level")]
    pub(crate) log_level: log::LevelFilter,
    /// `text` (one readable line per event) or `json` (one JSON object per line).
    pub(crate) log_format: LogFormat,
    /// Serve the demo page and `pushman.js` on the WebSocket port for plain `GET`s.
    pub(crate) demo_page: bool,
    /// Microseconds the event loop polls before it sleeps while peers answer quickly
    /// (`pushman::Runtime::spin`); 0 turns it off.
    pub(crate) spin_micros: u64,
    /// Several nodes as one push server, on Redis (off unless `redis` is set).
    pub(crate) cluster: Cluster,
    /// `wss://` on the WebSocket port (off unless `cert` is set).
    pub(crate) tls: TlsSettings,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// `[2026-12-05T12:00:00Z INFO ] message`: for people.
    #[default]
    Text,
    /// `{"ts":..,"level":..,"target":..,"msg":..}`: for log collectors.
    Json,
}

/// `[cluster]`: see docs/CLUSTER.md.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cluster {
    /// `redis://[user:password@]host:port[/db]`; empty: embedded single-process mode.
    pub(crate) redis: String,
    /// This node's id; empty: a random id made once and kept in `<pid file>.node`.
    pub(crate) node_id: String,
    /// Prefix of every Redis key and channel.
    pub(crate) key_prefix: String,
    /// Seconds a node's routes keep counting after its last lease refresh.
    pub(crate) lease: f64,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            redis: String::new(),
            node_id: String::new(),
            key_prefix: "pushman:".into(),
            lease: 10.0,
        }
    }
}

/// Listening addresses; an empty string in the file turns an API listener off (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Listen {
    /// Browsers' WebSockets (required).
    #[serde(deserialize_with = "de::addr")]
    pub(crate) ws: SocketAddr,
    /// The internal text API (push.php's port 5678).
    #[serde(deserialize_with = "de::optional_addr")]
    pub(crate) text: Option<SocketAddr>,
    /// The HTTP API.
    #[serde(deserialize_with = "de::optional_addr")]
    pub(crate) http: Option<SocketAddr>,
}

/// How clients and backends prove themselves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Auth {
    /// `none` (push.php: the first message is the uid, unverified) or `token`.
    pub(crate) mode: AuthMode,
    /// The HMAC secret for client tokens (required with `mode = "token"`).
    pub(crate) secret: String,
    /// If set, required on the text port (first line `{"cmd":"auth","secret":..}`) and the
    /// HTTP API (`Authorization: Bearer ..`).
    pub(crate) api_secret: String,
    /// Allowed `Origin` values for browsers; empty allows any.
    pub(crate) origins: Vec<String>,
    /// `Origin` values allowed on the HTTP API; empty refuses every request a web page
    /// sends (cross-site request forgery).
    pub(crate) api_origins: Vec<String>,
    /// DNS names the HTTP API answers to besides IP addresses and `localhost` (a name
    /// not listed is refused: DNS rebinding).
    pub(crate) api_hosts: Vec<String>,
    /// Reverse proxies (CIDRs or addresses) whose `X-Forwarded-For` / `X-Real-IP` name the
    /// client; from anyone else those headers are ignored.
    #[serde(deserialize_with = "de::networks")]
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// Client authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMode {
    /// push.php behaviour: the first message is the uid.
    #[default]
    None,
    /// An HMAC token, in `?token=` or as the first message.
    Token,
}

/// Limits, each logged with its reason when hit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    /// Largest message a browser may send, in bytes.
    pub(crate) max_client_message: usize,
    /// Largest line on the text API or body on the HTTP API, in bytes.
    pub(crate) max_api_line: usize,
    /// Per-connection send buffer, in bytes.
    pub(crate) send_buffer: usize,
    /// What happens to a browser whose send buffer is full.
    pub(crate) slow_consumer: SlowConsumer,
    /// Most WebSocket connections in total.
    pub(crate) max_connections: usize,
    /// Most WebSocket connections from one IP address.
    pub(crate) max_connections_per_ip: usize,
    /// Most connections open at once on each API listener (text, HTTP); more are refused
    /// with an error and closed, and counted (`api_connections_refused`).
    pub(crate) max_api_connections: usize,
    /// File descriptors kept for browsers: the API listeners refuse new connections while
    /// fewer than this remain free under the open-files limit (at most half of it).
    pub(crate) api_fd_reserve: usize,
    /// How long an API line or HTTP request may take from its first byte to its last; then
    /// the connection is closed (HTTP: after a 408). Seconds in the file, 0 (`None`): off.
    #[serde(deserialize_with = "de::seconds_or_off")]
    pub(crate) api_request_timeout: Option<Duration>,
    /// How long a text-API connection may stay silent; 0 (`None`, the default) keeps
    /// backends' persistent connections open however quiet.
    #[serde(deserialize_with = "de::seconds_or_off")]
    pub(crate) text_idle_timeout: Option<Duration>,
    /// How long an HTTP keep-alive connection may wait for its next request; 0: off.
    #[serde(deserialize_with = "de::seconds_or_off")]
    pub(crate) http_idle_timeout: Option<Duration>,
}

impl Limits {
    /// The limits of an API worker (text or HTTP) idle-closed after `idle` (`None`: never).
    /// Replies are never dropped: a backend that does not read them is not read from either.
    pub(crate) fn api(&self, idle: Option<Duration>) -> pushman::Limits {
        pushman::Limits {
            max_package_size: self.max_api_line,
            max_send_buffer_size: API_SEND_HIGH_WATER,
            when_full: pushman::WhenFull::PauseRecv,
            max_connections: self.max_api_connections,
            fd_reserve: self.api_fd_reserve,
            request_timeout: self.api_request_timeout,
            idle_timeout: idle,
        }
    }
}

/// The slow-consumer policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SlowConsumer {
    /// Close the connection with 1008; the browser reconnects and resynchronises.
    #[default]
    Close,
    /// Keep the connection; drop pushes until its buffer drains (counted as dropped).
    Drop,
}

/// Liveness; each is positive seconds in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Heartbeat {
    /// The server pings every WebSocket this often.
    #[serde(deserialize_with = "de::positive_seconds")]
    pub(crate) ping_interval: Duration,
    /// A connection silent this long is closed.
    #[serde(deserialize_with = "de::positive_seconds")]
    pub(crate) idle_timeout: Duration,
    /// A connection that has not completed its handshake and sent its uid/token this soon
    /// is closed.
    #[serde(deserialize_with = "de::positive_seconds")]
    pub(crate) handshake_timeout: Duration,
}

/// Files, relative to the working directory `pushman start` ran in unless absolute
/// ([`Source::load`](super::source::Source::load) resolves them once, so `reload` and
/// `start -d` agree on them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Files {
    /// The pid file, written at start, removed at stop.
    pub(crate) pid: PathBuf,
    /// The log file of `start -d`.
    pub(crate) log: PathBuf,
    /// The store of scheduled pushes.
    pub(crate) store: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Listen::default(),
            auth: Auth::default(),
            limits: Limits::default(),
            heartbeat: Heartbeat::default(),
            files: Files::default(),
            inbox: Default::default(),
            log_level: log::LevelFilter::Info,
            log_format: LogFormat::Text,
            demo_page: true,
            spin_micros: u64::try_from(pushman::DEFAULT_SPIN.as_micros()).unwrap_or(u64::MAX),
            cluster: Cluster::default(),
            tls: TlsSettings::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            ws: SocketAddr::from(([0, 0, 0, 0], 1234)),
            text: Some(SocketAddr::from(([127, 0, 0, 1], 5678))),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 2121))),
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            secret: String::new(),
            api_secret: String::new(),
            origins: Vec::new(),
            api_origins: Vec::new(),
            api_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_client_message: 64 << 10,
            max_api_line: 10 << 20,
            send_buffer: 1 << 20,
            slow_consumer: SlowConsumer::Close,
            max_connections: 100_000,
            max_connections_per_ip: 10_000,
            max_api_connections: 256,
            api_fd_reserve: 128,
            api_request_timeout: Some(Duration::from_secs(10)),
            text_idle_timeout: None,
            http_idle_timeout: Some(Duration::from_secs(75)),
        }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for Files {
    fn default() -> Self {
        Self {
            pid: "pushman.pid".into(),
            log: "pushman.log".into(),
            store: "pushman-data/schedule.redb".into(),
        }
    }
}

/// The send-buffer mark of text- and HTTP-API connections: past it the backend's further
/// lines wait unread until it has read its replies (their replies are never dropped).
pub(crate) const API_SEND_HIGH_WATER: usize = 1 << 20;

/// The commented default configuration that `pushman config` prints.
pub(crate) const DEFAULT_TOML: &str = include_str!("default.toml");

/// Why a configuration cannot be used.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key or value.
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's error: its `Display` shows the line, the column and the
        /// offending text, which names the key.
        source: toml::de::Error,
    },
    /// A value is out of range or inconsistent with another.
    Invalid(String),
}

impl Config {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the line and the key.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        // Not validated here: the command line's overrides come first (`Source::load`
        // validates the result, once).
        Ok(config)
    }

    /// Checks values that TOML types cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the key and the reason.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.auth.mode == AuthMode::Token && self.auth.secret.is_empty() {
            return invalid("auth.mode = \"token\" needs auth.secret");
        }
        if self.limits.max_api_connections == 0 {
            return invalid("limits.max_api_connections must be at least 1");
        }
        if !self.cluster.redis.is_empty() {
            crate::cluster::url::parse(&self.cluster.redis).map_err(ConfigError::Invalid)?;
            let lease = self.cluster.lease;
            if !(lease.is_finite() && (1.0..=3600.0).contains(&lease)) {
                return invalid("cluster.lease is seconds, from 1 to 3600");
            }
            if self.inbox.durable {
                return invalid("inbox.durable is for a single node: with [cluster] redis the inbox lives in Redis, and Redis's persistence (appendonly) keeps it (docs/CLUSTER.md)");
            }
        }
        if self.spin_micros > MAX_SPIN_MICROS {
            return invalid("spin_micros is at most 1000: a longer spin only burns CPU");
        }
        self.inbox.validate().map_err(ConfigError::Invalid)?;
        self.tls.validate().map_err(ConfigError::Invalid)?;
        if self.limits.max_client_message < 16
            || self.limits.max_api_line < 16
            || self.limits.send_buffer < 1024
        {
            return invalid(
                "limits are too small (max_client_message/max_api_line >= 16, send_buffer >= 1024)",
            );
        }
        Ok(())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            // toml's message starts "TOML parse error at line L, column C" and goes on
            // over a few lines to show the text and the reason.
            Self::Parse { path, source } => {
                write!(
                    f,
                    "config {}: {}",
                    path.display(),
                    source.to_string().trim_end()
                )
            }
            Self::Invalid(message) => write!(f, "invalid config: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Parse { source, .. } => Some(source),
            Self::Invalid(_) => None,
        }
    }
}

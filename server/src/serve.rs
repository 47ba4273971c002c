//! Runs the daemon: three workers on one reactor sharing a [`Daemon`]: browsers
//! ([`clients`]), the text API ([`text_api`]) and the HTTP API ([`http_api`]), plus
//! heartbeats, scheduled delivery and reload.

use crate::{
    api, clients, cluster,
    config::{AuthMode, Config},
    fd_limit, heartbeat, http_api, inbox, logfile,
    source::Source,
    state::Daemon,
    store, systemd, text_api, tls,
};
use pushman::Runtime;
use std::{net::SocketAddr, time::Duration};

/// How often due scheduled pushes are looked for (the check is O(1) when none is due).
const SCHEDULE_TICK: Duration = Duration::from_millis(20);

/// Why the daemon could not run.
#[derive(Debug)]
pub(crate) enum DaemonError {
    /// The store of scheduled pushes cannot be opened: one line naming the file and what
    /// to do ([`store::open_error`]).
    Store(String),
    /// Binding or running failed.
    Runtime(pushman::Error),
    /// `[cluster]` cannot be used: a bad `redis` URL, or no node id.
    Cluster(String),
    /// `[tls]`: the certificate or key cannot be loaded.
    Tls(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "cannot open the schedule store: {e}"),
            Self::Runtime(e) => e.fmt(f),
            Self::Cluster(e) | Self::Tls(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<pushman::Error> for DaemonError {
    fn from(e: pushman::Error) -> Self {
        Self::Runtime(e)
    }
}

/// Binds every listener of `config`, calls `ready` with the bound addresses (the caller
/// announces them: they are not logged here too), then serves until SIGINT/SIGTERM
/// (graceful) and returns. `source` is what `reload` re-reads.
///
/// # Errors
/// [`DaemonError`]: store, or a listener that cannot bind. `config` is valid already: it
/// comes from [`Source::load`], which validates once.
pub(crate) fn serve(
    config: Config,
    source: Source,
    ready: impl FnOnce(&[(String, SocketAddr)]),
) -> Result<(), DaemonError> {
    let schedule = if config.cluster.redis.is_empty() {
        store::open(&config.files.store)
    } else {
        store::unused()
    }
    .map_err(DaemonError::Store)?;
    warn_open_apis(&config);
    if config.auth.mode == AuthMode::None {
        log::warn!("auth.mode = \"none\": a browser's first message is its uid, unverified (push.php behaviour); set auth.mode = \"token\" in production");
    }
    let tls = tls::load(&config.tls).map_err(DaemonError::Tls)?;
    let mut runtime = Runtime::new(Daemon::new(config.clone(), source, schedule))?;
    if config.inbox.durable {
        store::journal::install(&mut runtime);
    }
    let mut browsers = clients::worker(&config)?;
    browsers.on_worker_stop(|_| systemd::notify(systemd::STOPPING));
    browsers.tls = tls.as_ref().map(|t| t.config.clone());
    runtime.state().tls = tls;
    runtime.spin(Duration::from_micros(config.spin_micros));
    let mut bound = vec![(clients::NAME.to_string(), runtime.listen(browsers)?)];
    if let Some(addr) = config.listen.text {
        bound.push((
            text_api::NAME.to_string(),
            runtime.listen(text_api::worker(&config, addr)?)?,
        ));
    }
    if let Some(addr) = config.listen.http {
        bound.push((
            http_api::NAME.to_string(),
            runtime.listen(http_api::worker(&config, addr)?)?,
        ));
    }
    if let Some(addr) = config.tls.ws_plain {
        // The same clients' worker, without TLS, under its own name.
        let mut plain = clients::worker(&config)?;
        plain.addr = addr;
        plain.name = clients::PLAIN_NAME.into();
        bound.push((clients::PLAIN_NAME.to_string(), runtime.listen(plain)?));
    }
    if !config.cluster.redis.is_empty() {
        start_cluster(&mut runtime, &config)?;
    }
    install_timers(&mut runtime);
    runtime.on_reload(reload);
    ready(&bound);
    runtime.run()?;
    log::info!("stopped");
    Ok(())
}

fn install_timers(runtime: &mut Runtime<Daemon>) {
    let mut heartbeat = heartbeat::Heartbeat::default();
    runtime.add_timer(heartbeat::TICK, true, move |ctx| heartbeat.tick(ctx));
    if runtime.state().cluster.is_some() {
        // Scheduled pushes live in Redis: claimed by `cluster::tick`.
        runtime.add_timer(cluster::TICK, true, cluster::tick);
    } else {
        runtime.add_timer(SCHEDULE_TICK, true, api::deliver_due);
    }
    runtime.add_timer(inbox::EXPIRE_EVERY, true, inbox::expire);
}

/// Cluster mode: the node id, the Redis links' worker; the first connect is made by the
/// first tick.
fn start_cluster(runtime: &mut Runtime<Daemon>, config: &Config) -> Result<(), DaemonError> {
    let url = cluster::url::parse(&config.cluster.redis).map_err(DaemonError::Cluster)?;
    let node = cluster::node_id(&config.cluster.node_id, &config.files.pid)
        .map_err(DaemonError::Cluster)?;
    let upstream = runtime.upstream(cluster::worker(&url))?;
    log::info!(
        "cluster mode: node {node}, redis {}, key prefix {:?}",
        url.addr,
        config.cluster.key_prefix
    );
    let mut cluster = cluster::Cluster::new(&config.cluster, url, node, upstream);
    if config.inbox.enabled {
        // The inbox lives in Redis (cluster::inbox), not in this process.
        runtime.state().inbox = None;
        cluster.inbox = Some(cluster::inbox::RedisInbox::new(&config.inbox));
    }
    runtime.state().cluster = Some(Box::new(cluster));
    Ok(())
}

/// SIGHUP/SIGUSR1: reopens the log file of `start -d` (for logrotate) and re-reads the
/// config file, telling systemd it is reloading meanwhile.
fn reload(ctx: &mut pushman::Ctx<'_, Daemon>) {
    systemd::notify(&systemd::reloading());
    match logfile::reopen() {
        Ok(Some(path)) => log::info!("reopened log file {}", path.display()),
        Ok(None) => {}
        Err(e) => log::error!("cannot reopen the log file, still writing to the old one: {e}"),
    }
    reload_config(ctx);
    systemd::notify(systemd::READY);
}

/// Re-reads the config file. Secrets, limits (for new connections), the slow-consumer
/// policy, origins, timeouts, the log level and the TLS certificate (for new connections)
/// change; listeners and the store do not (they need a restart, and a warning says so).
fn reload_config(ctx: &mut pushman::Ctx<'_, Daemon>) {
    let Some(path) = ctx.state.source.path.clone() else {
        log::info!("reload: no config file; nothing to re-read");
        return;
    };
    let new = match ctx.state.source.load() {
        Ok(new) => new,
        Err(e) => {
            log::error!("reload refused, keeping the running config: {e}");
            return;
        }
    };
    let old = &ctx.state.config;
    let changed = old.restart_only_changes(&new);
    if !changed.is_empty() {
        log::warn!(
            "reload: {} changed; [listen], [files], inbox.enabled, inbox.durable, TLS on/off, tls.ws_plain and spin_micros changes take effect at restart",
            changed.join(", ")
        );
    }
    if new.limits.max_connections != old.limits.max_connections {
        fd_limit::warn_if_short(&new, fd_limit::current());
    }
    log::set_max_level(new.log_level);
    crate::logging::set_format(new.log_format);
    if let Some(inbox) = ctx.state.inbox.as_mut() {
        inbox.set_config(new.inbox.limits());
    }
    if let Some(inbox) = ctx.state.cluster.as_mut().and_then(|c| c.inbox.as_mut()) {
        inbox.set_limits(&new.inbox);
    }
    ctx.io.set_limits(clients::NAME, clients::limits(&new));
    ctx.io
        .set_limits(clients::PLAIN_NAME, clients::limits(&new));
    ctx.io.set_limits(text_api::NAME, text_api::limits(&new));
    ctx.io.set_limits(http_api::NAME, http_api::limits(&new));
    log::info!("reloaded {}", path.display());
    if new.cluster != old.cluster {
        log::warn!("reload: [cluster] changes take effect at restart");
    }
    tls::reload(ctx, &new.tls);
    let old = &ctx.state.config;
    let mut new = new;
    new.inbox.enabled = old.inbox.enabled;
    new.inbox.durable = old.inbox.durable;
    new.spin_micros = old.spin_micros;
    // A listener: it changes at restart (the heartbeat reads it).
    new.tls.ws_plain = old.tls.ws_plain;
    ctx.state.config = Config {
        listen: old.listen.clone(),
        files: old.files.clone(),
        cluster: old.cluster.clone(),
        ..new
    };
}

/// Warns about an API that listens beyond loopback without `api_secret`: anyone who reaches
/// the port can push to every browser.
fn warn_open_apis(config: &Config) {
    if !config.auth.api_secret.is_empty() {
        return;
    }
    for (key, addr) in [
        ("listen.text", config.listen.text),
        ("listen.http", config.listen.http),
    ] {
        if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
            log::warn!("{key} = \"{addr}\" is reachable beyond this host and auth.api_secret is empty: anyone who reaches it can push to every browser; set auth.api_secret or listen on 127.0.0.1");
        }
    }
}

//! The command line: clap's types, and where the configuration of a run comes from.

use crate::{
    config::Config,
    source::{Overrides, Source},
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A real-time push server, drop-in compatible with Workerman's push.php.
#[derive(Debug, Parser)]
#[command(name = "pushman", version, about)]
pub(crate) struct Cli {
    /// Where the configuration comes from: global, so it goes before or after any command.
    #[command(flatten)]
    pub(crate) opts: Opts,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the server (in the foreground, or detached with -d).
    Start {
        /// Detach: run in the background, log to the log file.
        #[arg(short = 'd', long = "daemon")]
        daemon: bool,
        /// Set by `start -d` on the process it spawns: leave the terminal's session first.
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Stop gracefully: WebSockets get 1001 after their queued frames. Not running is not
    /// an error (exit 0, as init scripts expect).
    Stop,
    /// Stop, then start detached.
    Restart,
    /// Re-read the config file (secrets, limits, log level) without dropping connections.
    Reload,
    /// Show pid, uptime, memory, connections, pushes, listeners.
    Status,
    /// List connections: id, peer, uid, protocol, bytes, send buffer, age.
    Connections,
    /// The store of scheduled pushes (files.store), with the server stopped.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Print the commented default configuration.
    Config,
    /// Mint a client token for UID (needs auth.secret).
    Token {
        /// The uid the token proves.
        uid: String,
        /// Seconds the token stays valid (at least 1).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreAction {
    /// Verify every page and entry; exit 1 with what to do if the file is damaged.
    Check,
}

/// Where the configuration comes from, and per-run overrides.
#[derive(Debug, Clone, Args)]
pub(crate) struct Opts {
    /// TOML config file (default: ./pushman.toml if present).
    #[arg(long, short = 'c', global = true)]
    pub(crate) config: Option<PathBuf>,
    /// WebSocket address (default 0.0.0.0:1234).
    #[arg(long, global = true)]
    pub(crate) ws: Option<String>,
    /// Text API address (default 127.0.0.1:5678; "" turns it off).
    #[arg(long, global = true)]
    pub(crate) text: Option<String>,
    /// HTTP API address (default 127.0.0.1:2121; "" turns it off).
    #[arg(long, global = true)]
    pub(crate) http: Option<String>,
    /// Pid file (default pushman.pid).
    #[arg(long, global = true)]
    pub(crate) pid_file: Option<PathBuf>,
    /// Log file for -d (default pushman.log).
    #[arg(long, global = true)]
    pub(crate) log_file: Option<PathBuf>,
}

/// Where the configuration comes from: the file (explicit, or ./pushman.toml), the
/// flags, and the working directory relative paths are resolved against.
pub(crate) fn source(opts: &Opts) -> Result<Source, String> {
    let base =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    let path = opts.config.clone().or_else(|| {
        let default = PathBuf::from("pushman.toml");
        default.exists().then_some(default)
    });
    // Absolute, so `reload` reads the same file whatever the daemon's directory.
    let path = path.map(|p| std::fs::canonicalize(&p).unwrap_or_else(|_| base.join(p)));
    Ok(Source {
        path,
        overrides: Overrides {
            ws: opts.ws.clone(),
            text: opts.text.clone(),
            http: opts.http.clone(),
            pid: opts.pid_file.clone(),
            log: opts.log_file.clone(),
        },
        base,
    })
}

/// The configuration `opts` describe, and where it came from.
pub(crate) fn load(opts: &Opts) -> Result<(Config, Source), String> {
    let source = source(opts)?;
    let config = source.load().map_err(|e| e.to_string())?;
    Ok((config, source))
}

//! `pushman`: the push daemon and its command line, Workerman style.
//!
//! The daemon is three workers on one reactor sharing a [`state::Daemon`]: browsers
//! ([`clients`]), the text API ([`text_api`]) and the HTTP API ([`http_api`]), plus
//! heartbeats, scheduled delivery and reload ([`serve`]). [`process`] and [`pidfile`] are
//! the command line's side (`start -d`, signals, the locked pid file); [`fd_limit`] the
//! open-files limit; [`store`] the redb schedule.

mod api;
mod api_auth;
mod clients;
mod config;
mod demo;
mod fd_limit;
mod heartbeat;
mod http_api;
mod http_guard;
mod pidfile;
mod process;
mod serve;
mod source;
mod state;
mod status;
mod store;
mod table;
mod text_api;

use clap::{Args, Parser, Subcommand};
use config::Config;
use pidfile::{PidFile, PidState};
use process::Signal;
use serde_json::Value;
use source::{Overrides, Source};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use table::Align;

/// A real-time push server, drop-in compatible with Workerman's push.php.
#[derive(Debug, Parser)]
#[command(name = "pushman", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server (in the foreground, or detached with -d).
    Start {
        /// Detach: run in the background, log to the log file.
        #[arg(short = 'd', long = "daemon")]
        daemon: bool,
        /// Set by `start -d` on the process it spawns: leave the terminal's session first.
        #[arg(long, hide = true)]
        detached: bool,
        #[command(flatten)]
        opts: Opts,
    },
    /// Stop gracefully: WebSockets get 1001 after their queued frames. Not running is not
    /// an error (exit 0, as init scripts expect).
    Stop(Opts),
    /// Stop, then start detached.
    Restart(Opts),
    /// Re-read the config file (secrets, limits, log level) without dropping connections.
    Reload(Opts),
    /// Show pid, uptime, memory, connections, pushes, listeners.
    Status(Opts),
    /// List connections: id, peer, uid, protocol, bytes, send buffer, age.
    Connections(Opts),
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
        #[command(flatten)]
        opts: Opts,
    },
}

#[derive(Debug, Subcommand)]
enum StoreAction {
    /// Verify every page and entry; exit 1 with what to do if the file is damaged.
    Check(Opts),
}

/// Where the configuration comes from, and per-run overrides.
#[derive(Debug, Clone, Args)]
struct Opts {
    /// TOML config file (default: ./pushman.toml if present).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// WebSocket address (default 0.0.0.0:1234).
    #[arg(long)]
    ws: Option<String>,
    /// Text API address (default 127.0.0.1:5678; "" turns it off).
    #[arg(long)]
    text: Option<String>,
    /// HTTP API address (default 127.0.0.1:2121; "" turns it off).
    #[arg(long)]
    http: Option<String>,
    /// Pid file (default pushman.pid).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Log file for -d (default pushman.log).
    #[arg(long)]
    log_file: Option<PathBuf>,
}

/// A one-line error for the user.
type Outcome = Result<(), String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Start {
            daemon: true, opts, ..
        } => start_detached(&opts),
        Command::Start {
            daemon: false,
            detached,
            opts,
        } => start(&opts, detached),
        Command::Stop(opts) => load(&opts).and_then(|(c, _)| stop(&c)),
        Command::Restart(opts) => restart(&opts),
        Command::Reload(opts) => load(&opts).and_then(|(c, _)| reload(&c)),
        Command::Status(opts) => load(&opts).and_then(|(c, _)| status(&c)),
        Command::Connections(opts) => load(&opts).and_then(|(c, _)| connections(&c)),
        Command::Store {
            action: StoreAction::Check(opts),
        } => load(&opts).and_then(|(c, _)| {
            println!("{}", store::check(&c.files.store)?);
            Ok(())
        }),
        Command::Config => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
        Command::Token { uid, ttl, opts } => load(&opts).and_then(|(c, _)| token(&c, &uid, ttl)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pushman: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where the configuration comes from: the file (explicit, or ./pushman.toml), the
/// flags, and the working directory relative paths are resolved against.
fn source(opts: &Opts) -> Result<Source, String> {
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
fn load(opts: &Opts) -> Result<(Config, Source), String> {
    let source = source(opts)?;
    let config = source.load().map_err(|e| e.to_string())?;
    Ok((config, source))
}

/// Foreground `start`, and the process `start -d` spawns (`detached`). The pid file is
/// taken (locked) before anything listens, so a daemon that `stop` cannot find never runs.
fn start(opts: &Opts, detached: bool) -> Outcome {
    if detached {
        process::detach().map_err(|e| format!("cannot leave the terminal's session: {e}"))?;
    }
    let (config, source) = load(opts)?;
    let mut pid_file = PidFile::acquire(&config.files.pid).map_err(|e| e.to_string())?;
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .format_target(false)
        .init();
    log::set_max_level(config.log_filter());
    if let Some(old) = pid_file.replaced() {
        log::info!(
            "replaced stale pid file {} (pid {old} did not hold its lock)",
            pid_file.path().display()
        );
    }
    fd_limit::warn_if_short(&config, fd_limit::raise());
    let announce = !process::stdout_is_stderr();
    let result = serve::serve(config, source, |bound| {
        if let Err(e) = pid_file.record(bound) {
            log::error!(
                "cannot record the listeners in pid file {}: {e}; `status` will not find the HTTP API",
                pid_file.path().display()
            );
        }
        // The log says "NAME listening on ADDR"; a caller reading stdout (a script that
        // bound port 0) gets it there too, unless stdout is that same log or terminal.
        for (name, addr) in bound.iter().filter(|_| announce) {
            println!("pushman: {name} on {addr}");
        }
    });
    drop(pid_file);
    result.map_err(|e| e.to_string())
}

/// How long `start -d` waits for the daemon to listen.
const READY_WITHIN: Duration = Duration::from_secs(15);

fn start_detached(opts: &Opts) -> Outcome {
    let (config, source) = load(opts)?;
    let pid_path = &config.files.pid;
    // Other faults of the pid file are the child's to report: it says what to do about them.
    if let Ok(PidState::Running { pid }) = pidfile::inspect(pid_path) {
        return Err(format!(
            "already running (pid {pid}, pid file {})",
            pid_path.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my executable: {e}"))?;
    // Only what the user gave: the child re-reads the file as `reload` will, so the two
    // agree. Paths are absolute (the child runs in the same directory anyway).
    let mut args = vec!["start".to_string(), "--detached".to_string()];
    let mut flag = |name: &str, value: String| args.extend([format!("--{name}"), value]);
    if let Some(path) = &source.path {
        flag("config", path.display().to_string());
    }
    let o = &source.overrides;
    for (name, value) in [("ws", &o.ws), ("text", &o.text), ("http", &o.http)] {
        if let Some(value) = value {
            flag(name, value.clone());
        }
    }
    if o.pid.is_some() {
        flag("pid-file", pid_path.display().to_string());
    }
    if o.log.is_some() {
        flag("log-file", config.files.log.display().to_string());
    }
    let log = &config.files.log;
    let child = process::spawn_detached(&exe, &args, log).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + READY_WITHIN;
    while std::time::Instant::now() < deadline {
        let ours =
            matches!(pidfile::inspect(pid_path), Ok(PidState::Running { pid }) if pid == child);
        if ours && pidfile::recorded_addr(pid_path, clients::NAME).is_some() {
            println!("pushman started (pid {child}); log: {}", log.display());
            return Ok(());
        }
        if !pidfile::alive(child) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| l.starts_with("pushman:"))
                .unwrap_or("see the log");
            return Err(format!(
                "failed to start: {} (log: {})",
                last.trim_start_matches("pushman: "),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A start that reports failure leaves nothing running behind it.
    let _ = process::signal(child, Signal::SIGTERM);
    if !process::wait_exit(child, Duration::from_secs(5)) {
        let _ = process::signal(child, Signal::SIGKILL);
    }
    Err(format!(
        "did not report ready within {} s, so it was stopped (pid {child}); see {}",
        READY_WITHIN.as_secs(),
        log.display()
    ))
}

/// The running daemon's pid, or why there is none.
fn running(config: &Config) -> Result<u32, String> {
    let path = &config.files.pid;
    match pidfile::inspect(path).map_err(|e| e.to_string())? {
        PidState::Running { pid } => Ok(pid),
        PidState::Stale {
            pid: Some(pid),
            alive: true,
        } => Err(not_ours(path, pid)),
        state => Err(not_running(path, state)),
    }
}

/// The refusal for a stale pid file naming a live process: it is someone else's.
fn not_ours(path: &Path, pid: u32) -> String {
    format!(
        "pid file {} names pid {pid}, which is not a running pushman (it does not hold the pid file's lock); not signalling it. Remove {} if no pushman is running",
        path.display(),
        path.display()
    )
}

fn not_running(path: &Path, state: PidState) -> String {
    match state {
        PidState::Stale { pid: Some(pid), .. } => format!(
            "not running (stale pid file {} names pid {pid}, which has exited)",
            path.display()
        ),
        PidState::Stale { pid: None, .. } => {
            format!("not running (empty pid file {})", path.display())
        }
        _ => format!("not running (no pid file {})", path.display()),
    }
}

/// SIGTERM and wait. Stopping a stopped server succeeds (exit 0) as init scripts expect
/// (LSB: "stop" on a service that is not running is success).
fn stop(config: &Config) -> Outcome {
    let path = &config.files.pid;
    let pid = match pidfile::inspect(path).map_err(|e| e.to_string())? {
        PidState::Running { pid } => pid,
        PidState::Stale {
            pid: Some(pid),
            alive: true,
        } => return Err(not_ours(path, pid)),
        state => {
            println!("pushman {}; nothing to stop", not_running(path, state));
            return Ok(());
        }
    };
    process::signal(pid, Signal::SIGTERM).map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    if !process::wait_exit(pid, Duration::from_secs(15)) {
        return Err(format!("pid {pid} did not stop within 15 s"));
    }
    println!("pushman stopped (pid {pid})");
    Ok(())
}

fn restart(opts: &Opts) -> Outcome {
    let (config, _) = load(opts)?;
    if let Ok(PidState::Running { .. }) = pidfile::inspect(&config.files.pid) {
        stop(&config)?;
    }
    start_detached(opts)
}

fn reload(config: &Config) -> Outcome {
    let pid = running(config)?;
    process::signal(pid, Signal::SIGHUP).map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    println!("pushman reloading (pid {pid})");
    Ok(())
}

/// GETs `path` from the running daemon's HTTP API.
fn api_get(config: &Config, path: &str) -> Result<Value, String> {
    running(config)?;
    let addr = pidfile::recorded_addr(&config.files.pid, http_api::NAME)
        .ok_or("the HTTP API is off (listen.http); status needs it")?;
    let addr = if addr.ip().is_unspecified() {
        ([127, 0, 0, 1], addr.port()).into()
    } else {
        addr
    };
    let (code, body) = process::http_get(addr, path, &config.auth.api_secret)
        .map_err(|e| format!("cannot reach the HTTP API on {addr}: {e}"))?;
    if code != 200 {
        return Err(format!("HTTP API answered {code}: {}", body.trim()));
    }
    serde_json::from_str(&body).map_err(|e| format!("bad JSON from the HTTP API: {e}"))
}

fn status(config: &Config) -> Outcome {
    let s = api_get(config, "/status")?;
    let uptime = s["uptime_s"].as_u64().unwrap_or(0);
    let rule = "-".repeat(30);
    println!("{rule} pushman status {rule}");
    println!(
        "pid {:<8} uptime {}d {:02}:{:02}:{:02}   memory {:.1} MiB   auth {}",
        s["pid"],
        uptime / 86400,
        uptime / 3600 % 24,
        uptime / 60 % 60,
        uptime % 60,
        s["memory_rss_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        s["auth"].as_str().unwrap_or("?"),
    );
    println!(
        "connections {}   uids online {}   groups {}   scheduled pending {}",
        s["connections"], s["uids_online"], s["groups"], s["scheduled_pending"]
    );
    println!("{}", store_line(&s["store"]));
    let p = &s["pushes"];
    println!(
        "pushes ok {}   fail {}   dropped {}   auth failures {}   timeouts {}   refused {}",
        p["ok"],
        p["fail"],
        p["dropped"],
        s["auth_failures"],
        s["timeouts"],
        s["connections_refused"]
    );
    let files = &s["open_files"];
    println!(
        "open files {} of {} (hard limit {})",
        files["open"], files["limit"], files["hard_limit"]
    );
    println!("{rule}{}{rule}", "-".repeat(16));
    println!("{:<12} {:<24} connections", "listener", "address");
    for l in s["listeners"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {:<24} {}",
            l["name"].as_str().unwrap_or(""),
            l["addr"].as_str().unwrap_or(""),
            l["connections"]
        );
    }
    Ok(())
}

/// The status table's store line: `ok`, or how long it has been down and why.
fn store_line(store: &Value) -> String {
    let path = store["path"].as_str().unwrap_or("?");
    if store["healthy"].as_bool().unwrap_or(false) {
        return format!("store ok   {path}");
    }
    format!(
        "store DOWN for {} s   {path}: {}   reopen attempts {}   sent, removal pending {}",
        store["failing_for_s"],
        store["last_error"].as_str().unwrap_or("?"),
        store["reopen_attempts"],
        store["unremoved"]
    )
}

fn connections(config: &Config) -> Outcome {
    let v = api_get(config, "/connections")?;
    let text = |c: &Value, key: &str, none: &str| c[key].as_str().unwrap_or(none).to_string();
    let number = |c: &Value, key: &str| c[key].as_u64().unwrap_or(0).to_string();
    let rows: Vec<Vec<String>> = v["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                number(c, "id"),
                text(c, "peer", ""),
                text(c, "uid", "-"),
                text(c, "protocol", ""),
                number(c, "bytes_in"),
                number(c, "bytes_out"),
                number(c, "send_buffered"),
                format!("{:.1}", c["age_s"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    let headers = [
        ("id", Align::Right),
        ("peer", Align::Left),
        ("uid", Align::Left),
        ("protocol", Align::Left),
        ("bytes_in", Align::Right),
        ("bytes_out", Align::Right),
        ("sendbuf", Align::Right),
        ("age_s", Align::Right),
    ];
    print!("{}", table::render(&headers, &rows));
    Ok(())
}

/// Mints a token the server will accept, or says why it would not.
fn token(config: &Config, uid: &str, ttl: u64) -> Outcome {
    if config.auth.secret.is_empty() {
        return Err("auth.secret is empty; set it in the config file".into());
    }
    if uid.is_empty() {
        return Err("the uid must not be empty (the server refuses an empty uid)".into());
    }
    if ttl == 0 {
        return Err(
            "--ttl must be at least 1 second (a token with --ttl 0 is expired at once)".into(),
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires = now.checked_add(ttl).ok_or("--ttl is too large")?;
    let secret = config.auth.secret.as_bytes();
    let token = pushman::push::token::mint(secret, uid, expires);
    let max = pushman::push::token::MAX_TOKEN_LEN;
    if token.len() > max {
        return Err(format!(
            "the uid is too long: its token would be {} bytes, over the server's limit of {max}",
            token.len()
        ));
    }
    // The server's own check, so what is printed is what it accepts.
    pushman::push::token::verify(secret, &token, now)
        .map_err(|e| format!("the server would refuse this token: {e}"))?;
    println!("{token}");
    Ok(())
}

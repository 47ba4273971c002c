//! `pushman`: the push daemon's command line, Workerman style.
//! Thin: parse the command line, then call into `pushman::daemon`.

use clap::{Args, Parser, Subcommand};
use pushman::daemon::{self, config::Config, process};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

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
        #[command(flatten)]
        opts: Opts,
    },
    /// Stop gracefully: WebSockets get 1001 after their queued frames.
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
        /// Seconds the token stays valid.
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
        Command::Start { daemon: true, opts } => start_detached(&opts),
        Command::Start {
            daemon: false,
            opts,
        } => start(&opts),
        Command::Stop(opts) => load(&opts).and_then(|(c, _)| stop(&c)),
        Command::Restart(opts) => restart(&opts),
        Command::Reload(opts) => load(&opts).and_then(|(c, _)| reload(&c)),
        Command::Status(opts) => load(&opts).and_then(|(c, _)| status(&c)),
        Command::Connections(opts) => load(&opts).and_then(|(c, _)| connections(&c)),
        Command::Store {
            action: StoreAction::Check(opts),
        } => load(&opts).and_then(|(c, _)| {
            println!("{}", daemon::store::check(&c.files.store)?);
            Ok(())
        }),
        Command::Config => {
            print!("{}", daemon::config::DEFAULT_TOML);
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

/// The configuration: the file (explicit, or ./pushman.toml), then the flags.
fn load(opts: &Opts) -> Result<(Config, Option<PathBuf>), String> {
    let path = opts.config.clone().or_else(|| {
        let default = PathBuf::from("pushman.toml");
        default.exists().then_some(default)
    });
    let mut config = match &path {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(ws) = &opts.ws {
        config.listen.ws = ws.clone();
    }
    if let Some(text) = &opts.text {
        config.listen.text = text.clone();
    }
    if let Some(http) = &opts.http {
        config.listen.http = http.clone();
    }
    if let Some(pid) = &opts.pid_file {
        config.files.pid = pid.clone();
    }
    if let Some(log) = &opts.log_file {
        config.files.log = log.clone();
    }
    config.validate().map_err(|e| e.to_string())?;
    let path = path.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    Ok((config, path))
}

fn start(opts: &Opts) -> Outcome {
    let (config, path) = load(opts)?;
    if let Some(pid) = process::running_pid(&config.files.pid) {
        return Err(format!(
            "already running (pid {pid}, pid file {})",
            config.files.pid.display()
        ));
    }
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .format_target(false)
        .init();
    log::set_max_level(config.log_filter());
    let pid_file = config.files.pid.clone();
    let mut pid_error = None;
    let result = daemon::serve(config, path, |bound| {
        if let Err(e) = process::write_pid(&pid_file, bound) {
            pid_error = Some(e);
        }
        for (name, addr) in bound {
            println!("pushman: {name} on {addr}");
        }
    });
    process::remove_pid(&pid_file);
    if let Some(e) = pid_error {
        log::warn!("cannot write pid file {}: {e}", pid_file.display());
    }
    result.map_err(|e| e.to_string())
}

fn start_detached(opts: &Opts) -> Outcome {
    let (config, path) = load(opts)?;
    if let Some(pid) = process::running_pid(&config.files.pid) {
        return Err(format!(
            "already running (pid {pid}, pid file {})",
            config.files.pid.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my executable: {e}"))?;
    let mut args = vec!["start".to_string()];
    let mut flag = |name: &str, value: String| args.extend([format!("--{name}"), value]);
    if let Some(path) = path {
        flag("config", path.display().to_string());
    }
    flag("ws", config.listen.ws.clone());
    flag("text", config.listen.text.clone());
    flag("http", config.listen.http.clone());
    flag("pid-file", absolute(&config.files.pid));
    flag("log-file", absolute(&config.files.log));
    let child = process::spawn_detached(&exe, &args, &config.files.log)
        .map_err(|e| format!("cannot start: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if process::running_pid(&config.files.pid) == Some(child) {
            println!(
                "pushman started (pid {child}); log: {}",
                config.files.log.display()
            );
            return Ok(());
        }
        if !process::alive(child) {
            let log = std::fs::read_to_string(&config.files.log).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| l.starts_with("pushman:"))
                .unwrap_or("see the log");
            return Err(format!(
                "failed to start: {} (log: {})",
                last.trim_start_matches("pushman: "),
                config.files.log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "did not report ready within 15 s (pid {child}); see {}",
        config.files.log.display()
    ))
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn running(config: &Config) -> Result<u32, String> {
    process::running_pid(&config.files.pid).ok_or_else(|| {
        format!(
            "not running (no live pid in {})",
            config.files.pid.display()
        )
    })
}

fn stop(config: &Config) -> Outcome {
    let pid = running(config)?;
    process::signal(pid, libc::SIGTERM).map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    if !process::wait_exit(pid, Duration::from_secs(15)) {
        return Err(format!("pid {pid} did not stop within 15 s"));
    }
    println!("pushman stopped (pid {pid})");
    Ok(())
}

fn restart(opts: &Opts) -> Outcome {
    let (config, _) = load(opts)?;
    if process::running_pid(&config.files.pid).is_some() {
        stop(&config)?;
    }
    start_detached(opts)
}

fn reload(config: &Config) -> Outcome {
    let pid = running(config)?;
    process::signal(pid, libc::SIGHUP).map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    println!("pushman reloading (pid {pid})");
    Ok(())
}

/// GETs `path` from the running daemon's HTTP API.
fn api_get(config: &Config, path: &str) -> Result<Value, String> {
    running(config)?;
    let addr = process::recorded_addr(&config.files.pid, daemon::http_api::NAME)
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
    println!(
        "{:<8} {:<22} {:<16} {:<10} {:>10} {:>10} {:>8} {:>9}",
        "id", "peer", "uid", "protocol", "bytes_in", "bytes_out", "sendbuf", "age_s"
    );
    for c in v["connections"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:<22} {:<16} {:<10} {:>10} {:>10} {:>8} {:>9.1}",
            c["id"],
            c["peer"].as_str().unwrap_or(""),
            c["uid"].as_str().unwrap_or("-"),
            c["protocol"].as_str().unwrap_or(""),
            c["bytes_in"],
            c["bytes_out"],
            c["send_buffered"],
            c["age_s"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}

fn token(config: &Config, uid: &str, ttl: u64) -> Outcome {
    if config.auth.secret.is_empty() {
        return Err("auth.secret is empty; set it in the config file".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!(
        "{}",
        pushman::push::token::mint(config.auth.secret.as_bytes(), uid, now + ttl)
    );
    Ok(())
}

//! The daemon's lifecycle from the command line: `start` (foreground, or detached with a
//! supervisor that waits for the child to listen), `stop`, `restart`, `reload`.

use crate::{
    cli::{load, Opts},
    clients,
    config::Config,
    fd_limit, logfile, logging,
    pidfile::{self, PidFile, PidState},
    process::{self, Signal},
    serve, systemd, Outcome,
};
use std::{path::Path, time::Duration};

/// Foreground `start`, and the process `start -d` spawns (`detached`). The pid file is
/// taken (locked) before anything listens, so a daemon that `stop` cannot find never runs.
pub(crate) fn start(opts: &Opts, detached: bool) -> Outcome {
    if detached {
        process::detach().map_err(|e| format!("cannot leave the terminal's session: {e}"))?;
    }
    let (config, source) = load(opts)?;
    let mut pid_file = PidFile::acquire(&config.files.pid).map_err(|e| e.to_string())?;
    logging::init(config.log_format, config.log_level);
    if detached {
        logfile::adopt(config.files.log.clone());
    }
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
        systemd::notify(systemd::READY);
    });
    drop(pid_file);
    result.map_err(|e| e.to_string())
}

/// How long `start -d` waits for the daemon to listen.
const READY_WITHIN: Duration = Duration::from_secs(15);

pub(crate) fn start_detached(opts: &Opts) -> Outcome {
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
pub(crate) fn running(config: &Config) -> Result<u32, String> {
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
pub(crate) fn not_ours(path: &Path, pid: u32) -> String {
    format!(
        "pid file {} names pid {pid}, which is not a running pushman (it does not hold the pid file's lock); not signalling it. Remove {} if no pushman is running",
        path.display(),
        path.display()
    )
}

pub(crate) fn not_running(path: &Path, state: PidState) -> String {
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
pub(crate) fn stop(config: &Config) -> Outcome {
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

pub(crate) fn restart(opts: &Opts) -> Outcome {
    let (config, _) = load(opts)?;
    if let Ok(PidState::Running { .. }) = pidfile::inspect(&config.files.pid) {
        stop(&config)?;
    }
    start_detached(opts)
}

pub(crate) fn reload(config: &Config) -> Outcome {
    let pid = running(config)?;
    process::signal(pid, Signal::SIGHUP).map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    println!("pushman reloading (pid {pid})");
    Ok(())
}

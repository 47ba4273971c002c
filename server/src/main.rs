//! `pushman`: the push daemon and its command line, Workerman style.
//!
//! The daemon is three workers on one reactor sharing a [`state::Daemon`]: browsers
//! ([`clients`]), the text API ([`text_api`]) and the HTTP API ([`http_api`]), plus
//! heartbeats, scheduled delivery and reload ([`serve`]). [`process`] and [`pidfile`] are
//! the command line's side (`start -d`, signals, the locked pid file); [`fd_limit`] the
//! open-files limit; [`store`] the redb schedule.

mod api;
mod api_auth;
mod cli;
mod clients;
mod cluster;
mod config;
mod demo;
mod fd_limit;
mod heartbeat;
mod http_api;
mod http_guard;
mod inbox;
mod logfile;
mod logging;
mod pidfile;
mod process;
mod proxy;
mod replies;
mod report;
mod serve;
mod source;
mod state;
mod status;
mod store;
mod supervisor;
mod systemd;
mod table;
mod text_api;
mod tls;

use clap::Parser;
use cli::{load, Cli, Command, StoreAction};
use config::Config;
use std::{
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};
use supervisor::{restart, start, start_detached, stop};

/// A one-line error for the user.
pub(crate) type Outcome = Result<(), String>;

fn main() -> ExitCode {
    let Cli { opts, command } = Cli::parse();
    let opts = &opts;
    let result = match command {
        Command::Start { daemon: true, .. } => start_detached(opts),
        Command::Start {
            daemon: false,
            detached,
        } => start(opts, detached),
        Command::Stop => load(opts).and_then(|(c, _)| stop(&c)),
        Command::Restart => restart(opts),
        Command::Reload => load(opts).and_then(|(c, _)| supervisor::reload(&c)),
        Command::Status => load(opts).and_then(|(c, _)| report::status(&c)),
        Command::Connections => load(opts).and_then(|(c, _)| report::connections(&c)),
        Command::Store {
            action: StoreAction::Check,
        } => load(opts).and_then(|(c, _)| {
            println!("{}", store::check(&c.files.store)?);
            Ok(())
        }),
        Command::Config => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
        Command::Token { uid, ttl } => load(opts).and_then(|(c, _)| token(&c, &uid, ttl)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pushman: {message}");
            ExitCode::FAILURE
        }
    }
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

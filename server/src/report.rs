//! `pushman status` and `pushman connections`: the running daemon's HTTP API, printed as
//! tables.

use crate::status::{ClusterStatus, Connections, StatusReport, StoreStatus};
use crate::{
    config::Config,
    http_api, pidfile, process,
    supervisor::running,
    table::{self, Align},
    Outcome,
};
use serde::de::DeserializeOwned;

/// GETs `path` from the running daemon's HTTP API and reads the JSON reply as a `T`.
pub(crate) fn api_get<T: DeserializeOwned>(config: &Config, path: &str) -> Result<T, String> {
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

pub(crate) fn status(config: &Config) -> Outcome {
    let s: StatusReport = api_get(config, "/status")?;
    let uptime = s.uptime_s;
    let rule = "-".repeat(30);
    println!("{rule} pushman status {rule}");
    println!(
        "pushman {}   pid {:<8} uptime {}d {:02}:{:02}:{:02}   memory {:.1} MiB   auth {}",
        s.version,
        s.pid,
        uptime / 86400,
        uptime / 3600 % 24,
        uptime / 60 % 60,
        uptime % 60,
        s.memory_rss_bytes as f64 / 1048576.0,
        s.auth,
    );
    println!(
        "connections {}   uids online {}   groups {}   scheduled pending {}",
        s.connections, s.uids_online, s.groups, s.scheduled_pending
    );
    println!("{}", store_line(&s.store));
    if let Some(tls) = &s.tls {
        let days = tls
            .expires_in_days
            .map_or("unknown".to_string(), |d| format!("in {d} days"));
        println!("tls on   cert {}   expires {days}", tls.cert);
    }
    if let Some(c) = &s.cluster {
        println!("{}", cluster_line(c));
    }
    if let Some(inbox) = &s.inbox {
        let e = &inbox.evicted;
        println!(
            "inbox {} pushes, {:.1} of {:.1} MiB, {} uids   evicted ttl {} cap {} memory {}   gaps {}",
            inbox.messages,
            inbox.bytes as f64 / 1048576.0,
            inbox.max_bytes as f64 / 1048576.0,
            inbox.uids,
            e.ttl,
            e.uid_cap,
            e.memory,
            inbox.gaps
        );
    }
    if let Some(j) = &s.inbox_journal {
        println!(
            "inbox journal {:.1} MiB   commits {}   records {}   snapshots {}   failures {}{}",
            j.bytes as f64 / 1048576.0,
            j.commits,
            j.records,
            j.snapshots,
            j.failures,
            j.last_error
                .as_deref()
                .map_or(String::new(), |e| format!(" (last: {e})"))
        );
    }
    let p = &s.pushes;
    println!(
        "pushes ok {}   fail {}   dropped {}   auth failures {}   timeouts {}   refused {}",
        p.ok, p.fail, p.dropped, s.auth_failures, s.timeouts, s.connections_refused
    );
    let files = &s.open_files;
    println!(
        "open files {} of {} (hard limit {})",
        or_null(files.open),
        or_null(files.limit),
        or_null(files.hard_limit)
    );
    println!("{rule}{}{rule}", "-".repeat(16));
    println!("{:<12} {:<24} connections", "listener", "address");
    for l in &s.listeners {
        println!("{:<12} {:<24} {}", l.name, l.addr, l.connections);
    }
    Ok(())
}

/// A figure, or `null` where the daemon could not tell (as the JSON says it).
fn or_null(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "null".to_string(), |v| v.to_string())
}

/// The status table's cluster line (cluster mode only): node, Redis, link, round trip,
/// commands waiting for replies.
pub(crate) fn cluster_line(c: &ClusterStatus) -> String {
    let rtt = c.rtt_ms.map_or("-".to_string(), |ms| format!("{ms:.2} ms"));
    let mut line = format!(
        "cluster node {}   redis {} {}   rtt {rtt}   queued {}   reconnects {}",
        c.node, c.redis, c.link, c.queued_commands, c.reconnects,
    );
    if let Some(i) = &c.inbox {
        let mib =
            |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0));
        line += &format!(
            "\ninbox in redis: epoch {}   appended {}   queued {}   replayed {}   gaps {}   held {}   redis memory {} of {} MiB (0: no maxmemory), {} keys",
            i.epoch, i.appended, i.queued, i.replayed, i.gaps, i.held,
            mib(i.redis_used_memory), mib(i.redis_maxmemory),
            i.redis_keys.map_or("-".to_string(), |k| k.to_string()),
        );
    }
    line
}

/// The status table's store line: `ok`, or how long it has been down and why.
pub(crate) fn store_line(store: &StoreStatus) -> String {
    let path = &store.path;
    if store.healthy {
        return format!("store ok   {path}");
    }
    format!(
        "store DOWN for {} s   {path}: {}   reopen attempts {}   sent, removal pending {}",
        store.failing_for_s,
        store.last_error.as_deref().unwrap_or("?"),
        store.reopen_attempts,
        store.unremoved
    )
}

pub(crate) fn connections(config: &Config) -> Outcome {
    let list: Connections = api_get(config, "/connections")?;
    let rows: Vec<Vec<String>> = list
        .connections
        .into_iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                match c.forwarded_for {
                    Some(client) => format!("{client} via {}", c.peer),
                    None => c.peer,
                },
                c.uid.unwrap_or_else(|| "-".to_string()),
                c.protocol,
                c.bytes_in.to_string(),
                c.bytes_out.to_string(),
                c.send_buffered.to_string(),
                format!("{:.1}", c.age_s),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_line_names_node_redis_link_and_figures() {
        let c = ClusterStatus {
            command_link: "down".into(),
            commands: 0,
            commands_refused: 0,
            inbox_messages: 0,
            lease_age_s: None,
            link: "down".into(),
            node: "a".into(),
            queued_commands: 0,
            reconnects: 3,
            redis: "127.0.0.1:6379".into(),
            route_writes: 0,
            rtt_ms: None,
            scheduled_claimed: 0,
            subscription_link: "down".into(),
            inbox: None,
        };
        assert_eq!(
            cluster_line(&c),
            "cluster node a   redis 127.0.0.1:6379 down   rtt -   queued 0   reconnects 3"
        );
    }
}

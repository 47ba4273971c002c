//! `pushman status` and `pushman connections`: the running daemon's HTTP API, printed as
//! tables.

use crate::{
    config::Config,
    http_api, pidfile, process,
    supervisor::running,
    table::{self, Align},
    Outcome,
};
use serde_json::Value;

/// GETs `path` from the running daemon's HTTP API.
pub(crate) fn api_get(config: &Config, path: &str) -> Result<Value, String> {
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
    if let Some(line) = cluster_line(&s["cluster"]) {
        println!("{line}");
    }
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

/// The status table's cluster line (cluster mode only): node, Redis, link, round trip,
/// commands waiting for replies.
pub(crate) fn cluster_line(c: &Value) -> Option<String> {
    if c.is_null() {
        return None;
    }
    let rtt = c["rtt_ms"]
        .as_f64()
        .map_or("-".to_string(), |ms| format!("{ms:.2} ms"));
    Some(format!(
        "cluster node {}   redis {} {}   rtt {rtt}   queued {}   reconnects {}",
        c["node"].as_str().unwrap_or("?"),
        c["redis"].as_str().unwrap_or("?"),
        c["link"].as_str().unwrap_or("?"),
        c["queued_commands"],
        c["reconnects"],
    ))
}

/// The status table's store line: `ok`, or how long it has been down and why.
pub(crate) fn store_line(store: &Value) -> String {
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

pub(crate) fn connections(config: &Config) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cluster_line_only_in_cluster_mode() {
        assert_eq!(cluster_line(&Value::Null), None);
        let c = json!({"node":"a","redis":"127.0.0.1:6379","link":"down","rtt_ms":null,
                       "queued_commands":0,"reconnects":3});
        assert_eq!(
            cluster_line(&c).unwrap(),
            "cluster node a   redis 127.0.0.1:6379 down   rtt -   queued 0   reconnects 3"
        );
    }
}

//! What `pushman status`, `pushman connections`, `GET /status` and `GET /metrics` report.

use super::{state::Daemon, store::Store};
use pushman::Ctx;
use serde_json::{json, Value};
use std::{fmt::Write, time::Instant};

/// The status object.
pub(crate) fn json(ctx: &mut Ctx<'_, Daemon>) -> Value {
    let state = &ctx.state;
    let listeners: Vec<Value> = ctx
        .io
        .listeners()
        .map(|(name, addr)| json!({ "name": name, "addr": addr.to_string(), "connections": 0 }))
        .collect();
    let mut listeners = listeners;
    for id in ctx.io.connections() {
        let name = ctx.io.worker_name(id).unwrap_or("");
        if let Some(l) = listeners.iter_mut().find(|l| l["name"] == name) {
            l["connections"] = (l["connections"].as_u64().unwrap_or(0) + 1).into();
        }
    }
    let s = &state.stats;
    let cluster = state
        .cluster
        .as_ref()
        .map_or(Value::Null, |c| c.status(Instant::now()));
    json!({
        "ok": true,
        "cluster": cluster,
        "pid": std::process::id(),
        "uptime_s": state.started.elapsed().as_secs(),
        "memory_rss_bytes": rss_bytes(),
        "open_files": super::fd_limit::status(),
        "connections": state.ws_connections,
        "uids_online": state.registry.uid_total(),
        "bound_connections": state.registry.conn_total(),
        "groups": state.registry.groups_total(),
        "pushes": { "ok": s.pushes_ok, "fail": s.pushes_fail, "dropped": s.dropped, "frames_sent": s.frames_sent },
        "lines_refused": s.lines_refused,
        "scheduled_pending": state.schedule.len(),
        "store": store_json(&state.schedule),
        "scheduled_delivered": s.scheduled_delivered,
        "scheduled_unreadable": s.scheduled_unreadable,
        "auth_failures": s.auth_failures,
        "slow_consumers_closed": s.slow_consumers_closed,
        "connections_refused": s.connections_refused,
        "api_connections_refused": ctx.io.refused_connections(super::text_api::NAME)
            + ctx.io.refused_connections(super::http_api::NAME),
        "timeouts": s.timeouts,
        "auth": format!("{:?}", state.config.auth.mode).to_lowercase(),
        "listeners": listeners,
    })
}

/// The store's health: `healthy`, and while it is down since how long, why, and how many
/// reopens were tried; `unremoved` counts sent pushes whose removal waits for the reopen.
fn store_json(store: &Store) -> Value {
    let h = store.health(Instant::now());
    json!({
        "path": store.path().display().to_string(),
        "healthy": h.healthy,
        "failing_for_s": h.failing_for.as_secs(),
        "last_error": h.last_error,
        "reopen_attempts": h.reopen_attempts,
        "unremoved": h.unremoved,
    })
}

/// Every connection: id, peer, uid, protocol, bytes, send buffer, age.
pub(crate) fn connections(ctx: &mut Ctx<'_, Daemon>) -> Value {
    let ids: Vec<_> = ctx.io.connections().collect();
    let list: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| {
            let info = ctx.io.info(id)?;
            Some(json!({
                "id": id.seq(),
                "peer": info.peer.to_string(),
                "uid": ctx.state.registry.uid_of(id),
                "worker": info.worker,
                "protocol": info.protocol,
                "bytes_in": info.bytes_in,
                "bytes_out": info.bytes_out,
                "send_buffered": info.send_buffered,
                "age_s": info.age.as_secs_f64(),
                "idle_s": info.idle.as_secs_f64(),
            }))
        })
        .collect();
    json!({ "ok": true, "connections": list })
}

/// Prometheus text exposition (format 0.0.4).
pub(crate) fn metrics(ctx: &mut Ctx<'_, Daemon>) -> String {
    let status = json(ctx);
    let s = &ctx.state.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(
            out,
            "# HELP pushman_{name} {help}\n# TYPE pushman_{name} {kind}\npushman_{name} {value}"
        );
    };
    metric(
        "connections",
        "gauge",
        "Open WebSocket connections.",
        &ctx.state.ws_connections,
    );
    if let Some(c) = status.get("cluster").filter(|c| !c.is_null()) {
        let num = |k: &str| c[k].as_f64().unwrap_or(0.0);
        metric(
            "cluster_link_up",
            "gauge",
            "1 while both Redis links (commands, subscriptions) are up.",
            &u8::from(c["link"] == "up"),
        );
        metric(
            "cluster_rtt_seconds",
            "gauge",
            "Round trip of the last Redis command.",
            &(num("rtt_ms") / 1000.0),
        );
        metric(
            "cluster_queued_commands",
            "gauge",
            "Redis commands sent and not yet answered.",
            &num("queued_commands"),
        );
        metric(
            "cluster_commands_total",
            "counter",
            "Redis commands sent.",
            &num("commands"),
        );
        metric(
            "cluster_commands_refused_total",
            "counter",
            "Commands not sent because Redis was unavailable.",
            &num("commands_refused"),
        );
        metric(
            "cluster_inbox_messages_total",
            "counter",
            "Messages received from other nodes.",
            &num("inbox_messages"),
        );
    }
    metric(
        "uids_online",
        "gauge",
        "Uids with at least one connection.",
        &ctx.state.registry.uid_total(),
    );
    metric(
        "groups",
        "gauge",
        "Groups with members.",
        &ctx.state.registry.groups_total(),
    );
    metric(
        "scheduled_pending",
        "gauge",
        "Scheduled pushes not yet delivered.",
        &ctx.state.schedule.len(),
    );
    let store = ctx.state.schedule.health(Instant::now());
    metric(
        "store_healthy",
        "gauge",
        "1 while the store of scheduled pushes works; 0 while it is down and being reopened.",
        &u8::from(store.healthy),
    );
    metric(
        "store_reopen_attempts",
        "gauge",
        "Reopens of the store tried since it went down (0 while healthy).",
        &store.reopen_attempts,
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &ctx.state.started.elapsed().as_secs(),
    );
    metric(
        "memory_rss_bytes",
        "gauge",
        "Resident memory.",
        &rss_bytes(),
    );
    metric(
        "frames_sent_total",
        "counter",
        "Frames written or queued to browsers.",
        &s.frames_sent,
    );
    metric(
        "dropped_total",
        "counter",
        "Frames dropped for full send buffers.",
        &s.dropped,
    );
    metric(
        "scheduled_delivered_total",
        "counter",
        "Scheduled pushes delivered.",
        &s.scheduled_delivered,
    );
    metric(
        "auth_failures_total",
        "counter",
        "Refused tokens and API secrets.",
        &s.auth_failures,
    );
    metric(
        "slow_consumers_closed_total",
        "counter",
        "Connections closed as slow consumers.",
        &s.slow_consumers_closed,
    );
    metric(
        "connections_refused_total",
        "counter",
        "Connections refused by limits.",
        &s.connections_refused,
    );
    metric(
        "api_connections_refused_total",
        "counter",
        "API connections refused by max_api_connections or api_fd_reserve.",
        &status["api_connections_refused"],
    );
    metric(
        "lines_refused_total",
        "counter",
        "Backend lines and requests refused as malformed, unknown or unauthorized.",
        &s.lines_refused,
    );
    metric(
        "timeouts_total",
        "counter",
        "Connections closed by idle or handshake timeouts.",
        &s.timeouts,
    );
    let _ = writeln!(
        out,
        "# HELP pushman_pushes_total Pushes by result: ok reached a connection, fail reached none.\n# TYPE pushman_pushes_total counter"
    );
    let _ = writeln!(out, "pushman_pushes_total{{result=\"ok\"}} {}", s.pushes_ok);
    let _ = writeln!(
        out,
        "pushman_pushes_total{{result=\"fail\"}} {}",
        s.pushes_fail
    );
    let _ = writeln!(out, "# HELP pushman_listener_connections Open connections per listener.\n# TYPE pushman_listener_connections gauge");
    for l in status["listeners"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "pushman_listener_connections{{listener=\"{}\"}} {}",
            l["name"].as_str().unwrap_or(""),
            l["connections"]
        );
    }
    out
}

/// This process's resident memory, from `/proc/self/status` (0 where unavailable).
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

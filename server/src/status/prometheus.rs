//! `GET /metrics`: a [`StatusReport`] as Prometheus text exposition (format 0.0.4).

use super::StatusReport;
use std::fmt::{Display, Write};

impl StatusReport {
    /// The report as Prometheus text: gauges and counters named `pushman_*`.
    pub(crate) fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: &dyn Display| {
            let _ = writeln!(
                out,
                "# HELP pushman_{name} {help}\n# TYPE pushman_{name} {kind}\npushman_{name} {value}"
            );
        };
        let (gauge, counter) = ("gauge", "counter");
        metric(
            "connections",
            gauge,
            "Open WebSocket connections.",
            &self.connections,
        );
        metric(
            "uids_online",
            gauge,
            "Uids with at least one connection.",
            &self.uids_online,
        );
        metric("groups", gauge, "Groups with members.", &self.groups);
        metric(
            "scheduled_pending",
            gauge,
            "Scheduled pushes not yet delivered.",
            &self.scheduled_pending,
        );
        metric(
            "store_healthy",
            gauge,
            "1 while the store of scheduled pushes works; 0 while it is down and being reopened.",
            &u8::from(self.store.healthy),
        );
        metric(
            "store_reopen_attempts",
            gauge,
            "Reopens of the store tried since it went down (0 while healthy).",
            &self.store.reopen_attempts,
        );
        metric(
            "uptime_seconds",
            gauge,
            "Seconds since start.",
            &self.uptime_s,
        );
        metric(
            "memory_rss_bytes",
            gauge,
            "Resident memory.",
            &self.memory_rss_bytes,
        );
        let p = &self.pushes;
        metric(
            "frames_sent_total",
            counter,
            "Frames written or queued to browsers.",
            &p.frames_sent,
        );
        metric(
            "dropped_total",
            counter,
            "Frames dropped for full send buffers.",
            &p.dropped,
        );
        metric(
            "scheduled_delivered_total",
            counter,
            "Scheduled pushes delivered.",
            &self.scheduled_delivered,
        );
        metric(
            "auth_failures_total",
            counter,
            "Refused tokens and API secrets.",
            &self.auth_failures,
        );
        metric(
            "slow_consumers_closed_total",
            counter,
            "Connections closed as slow consumers.",
            &self.slow_consumers_closed,
        );
        metric(
            "connections_refused_total",
            counter,
            "Connections refused by limits.",
            &self.connections_refused,
        );
        metric(
            "api_connections_refused_total",
            counter,
            "API connections refused by max_api_connections or api_fd_reserve.",
            &self.api_connections_refused,
        );
        metric(
            "lines_refused_total",
            counter,
            "Backend lines and requests refused as malformed, unknown or unauthorized.",
            &self.lines_refused,
        );
        metric(
            "timeouts_total",
            counter,
            "Connections closed by idle or handshake timeouts.",
            &self.timeouts,
        );
        let _ = writeln!(
            out,
            "# HELP pushman_pushes_total Pushes by result: ok reached a connection, fail reached none.\n# TYPE pushman_pushes_total counter"
        );
        let _ = writeln!(out, "pushman_pushes_total{{result=\"ok\"}} {}", p.ok);
        let _ = writeln!(out, "pushman_pushes_total{{result=\"fail\"}} {}", p.fail);
        let _ = writeln!(out, "# HELP pushman_listener_connections Open connections per listener.\n# TYPE pushman_listener_connections gauge");
        for l in &self.listeners {
            let _ = writeln!(
                out,
                "pushman_listener_connections{{listener=\"{}\"}} {}",
                l.name, l.connections
            );
        }
        out
    }
}

//! `GET /metrics`: a [`StatusReport`] as Prometheus text exposition (format 0.0.4).

use super::{ClusterStatus, InboxStatus, JournalStatus, StatusReport};
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
        if let Some(c) = &self.cluster {
            c.prometheus(&mut out);
        }
        if let Some(inbox) = &self.inbox {
            inbox.prometheus(&mut out);
        }
        if let Some(journal) = &self.inbox_journal {
            journal_metrics(journal, &mut out);
        }
        if let Some(at) = self.tls.as_ref().and_then(|t| t.not_after) {
            let _ = writeln!(
                out,
                "# HELP pushman_tls_cert_not_after_seconds When the WebSocket port's certificate expires (Unix time).\n# TYPE pushman_tls_cert_not_after_seconds gauge\npushman_tls_cert_not_after_seconds {at}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pushman_build_info pushman's version.\n# TYPE pushman_build_info gauge\npushman_build_info{{version=\"{}\"}} 1",
            self.version
        );
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

impl InboxStatus {
    /// The `pushman_inbox_*` metrics.
    fn prometheus(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: &dyn Display| {
            let _ = writeln!(
                out,
                "# HELP pushman_inbox_{name} {help}\n# TYPE pushman_inbox_{name} {kind}\npushman_inbox_{name} {value}"
            );
        };
        let (gauge, counter) = ("gauge", "counter");
        metric(
            "messages",
            gauge,
            "Pushes kept for reconnecting and offline clients.",
            &self.messages,
        );
        metric(
            "bytes",
            gauge,
            "Bytes kept, as inbox.max_memory counts them.",
            &self.bytes,
        );
        metric("uids", gauge, "Uids with a stream.", &self.uids);
        metric(
            "forgotten_total",
            counter,
            "Positions of empty streams forgotten.",
            &self.forgotten,
        );
        metric(
            "gaps_total",
            counter,
            "Resumes that could not be served.",
            &self.gaps,
        );
        metric(
            "replayed_total",
            counter,
            "Pushes sent again to resuming clients.",
            &self.replayed,
        );
        metric(
            "queued_delivered_total",
            counter,
            "Queued pushes delivered when their uid connected.",
            &self.queued_delivered,
        );
        let _ = writeln!(
            out,
            "# HELP pushman_inbox_evicted_total Pushes that left before inbox.ttl ran out, or by it, by reason.\n# TYPE pushman_inbox_evicted_total counter"
        );
        let e = &self.evicted;
        for (reason, n) in [("ttl", e.ttl), ("uid_cap", e.uid_cap), ("memory", e.memory)] {
            let _ = writeln!(
                out,
                "pushman_inbox_evicted_total{{reason=\"{reason}\"}} {n}"
            );
        }
    }
}

impl ClusterStatus {
    /// The `pushman_cluster_*` metrics.
    fn prometheus(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: &dyn Display| {
            let _ = writeln!(
                out,
                "# HELP pushman_cluster_{name} {help}\n# TYPE pushman_cluster_{name} {kind}\npushman_cluster_{name} {value}"
            );
        };
        let (gauge, counter) = ("gauge", "counter");
        metric(
            "link_up",
            gauge,
            "1 while both Redis links (commands, subscriptions) are up.",
            &u8::from(self.link == "up"),
        );
        metric(
            "rtt_seconds",
            gauge,
            "Round trip of the last Redis command.",
            &(self.rtt_ms.unwrap_or(0.0) / 1000.0),
        );
        metric(
            "queued_commands",
            gauge,
            "Redis commands sent and not yet answered.",
            &self.queued_commands,
        );
        metric(
            "commands_total",
            counter,
            "Redis commands sent.",
            &self.commands,
        );
        metric(
            "commands_refused_total",
            counter,
            "Commands not sent because Redis was unavailable.",
            &self.commands_refused,
        );
        metric(
            "inbox_messages_total",
            counter,
            "Messages received from other nodes.",
            &self.inbox_messages,
        );
        if let Some(inbox) = &self.inbox {
            redis_inbox(inbox, out);
        }
    }
}

/// The `pushman_cluster_inbox_*` metrics: this node's view of the inbox in Redis.
fn redis_inbox(i: &crate::cluster::inbox::RedisInboxStatus, out: &mut String) {
    let rows: [(&str, &str, &str, u64); 12] = [
        (
            "max_per_uid",
            "gauge",
            "inbox.max_per_uid: each stream's cap in Redis.",
            i.max_per_uid as u64,
        ),
        (
            "held",
            "gauge",
            "Connections held while their bind reads the inbox.",
            i.held as u64,
        ),
        (
            "resumers",
            "gauge",
            "Resume-capable connections.",
            i.resumers as u64,
        ),
        (
            "appended_total",
            "counter",
            "Pushes appended to uid streams by this node.",
            i.appended,
        ),
        (
            "queued_total",
            "counter",
            "Of those, for uids no live node held (queued).",
            i.queued,
        ),
        (
            "broadcasts_total",
            "counter",
            "Broadcasts appended by this node.",
            i.broadcasts,
        ),
        (
            "evicted_uid_cap_total",
            "counter",
            "Appends that pushed a full stream's oldest push out.",
            i.evicted_uid_cap,
        ),
        (
            "replayed_total",
            "counter",
            "Pushes sent again to resuming connections.",
            i.replayed,
        ),
        (
            "queued_delivered_total",
            "counter",
            "Queued pushes delivered to a uid's first connection.",
            i.queued_delivered,
        ),
        (
            "gaps_total",
            "counter",
            "Positions that could not be resumed.",
            i.gaps,
        ),
        (
            "unavailable_total",
            "counter",
            "Binds whose read failed: Redis unavailable.",
            i.unavailable,
        ),
        (
            "epoch_closes_total",
            "counter",
            "Connections closed because the epoch changed.",
            i.epoch_closes,
        ),
    ];
    let sampled = [
        (
            "redis_used_memory_bytes",
            "Redis's used_memory (all of it), sampled each lease renewal.",
            i.redis_used_memory,
        ),
        (
            "redis_maxmemory_bytes",
            "Redis's maxmemory (0: none).",
            i.redis_maxmemory,
        ),
        (
            "redis_keys",
            "Keys in Redis's database (DBSIZE).",
            i.redis_keys,
        ),
    ];
    for (name, help, value) in sampled {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP pushman_cluster_inbox_{name} {help}\n# TYPE pushman_cluster_inbox_{name} gauge\npushman_cluster_inbox_{name} {value}"
            );
        }
    }
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP pushman_cluster_inbox_{name} {help}\n# TYPE pushman_cluster_inbox_{name} {kind}\npushman_cluster_inbox_{name} {value}"
        );
    }
}

/// The `pushman_inbox_journal_*` metrics (durable inbox).
fn journal_metrics(j: &JournalStatus, out: &mut String) {
    for (name, kind, help, value) in [
        (
            "bytes",
            "gauge",
            "Bytes in the inbox's log in files.store.",
            j.bytes,
        ),
        (
            "commits_total",
            "counter",
            "Commits (one sync each) of a turn's inbox records.",
            j.commits,
        ),
        (
            "failures_total",
            "counter",
            "Inbox commits that failed (their pushes were not acknowledged).",
            j.failures,
        ),
        (
            "pushes_not_acked_total",
            "counter",
            "Pushes answered with a failure because their commit failed.",
            j.pushes_not_acked,
        ),
        (
            "records_total",
            "counter",
            "Inbox records committed.",
            j.records,
        ),
        (
            "snapshots_total",
            "counter",
            "Snapshots that replaced the inbox's log.",
            j.snapshots,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP pushman_inbox_journal_{name} {help}\n# TYPE pushman_inbox_journal_{name} {kind}\npushman_inbox_journal_{name} {value}"
        );
    }
}

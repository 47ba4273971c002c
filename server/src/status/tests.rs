use super::*;

fn report() -> StatusReport {
    StatusReport {
        api_connections_refused: 1,
        auth: "token".into(),
        auth_failures: 2,
        cluster: None,
        bound_connections: 3,
        connections: 4,
        connections_refused: 5,
        groups: 6,
        inbox: Some(InboxStatus {
            bytes: 22,
            epoch: "00c0ffee00c0ffee".into(),
            evicted: Evicted {
                memory: 23,
                ttl: 24,
                uid_cap: 25,
            },
            forgotten: 26,
            gaps: 27,
            max_bytes: 28,
            messages: 29,
            queued_delivered: 30,
            replayed: 31,
            uids: 32,
        }),
        inbox_journal: None,
        lines_refused: 7,
        listeners: vec![Listener {
            addr: "127.0.0.1:1234".into(),
            connections: 4,
            name: "websocket".into(),
        }],
        memory_rss_bytes: 8,
        ok: true,
        open_files: OpenFiles {
            hard_limit: None,
            limit: None,
            open: Some(9),
        },
        pid: 10,
        pushes: Pushes {
            dropped: 11,
            fail: 12,
            frames_sent: 13,
            ok: 14,
        },
        scheduled_delivered: 15,
        scheduled_pending: 16,
        scheduled_unreadable: 17,
        slow_consumers_closed: 18,
        store: StoreStatus {
            failing_for_s: 0,
            healthy: true,
            last_error: None,
            path: "/s.redb".into(),
            reopen_attempts: 0,
            unremoved: 0,
        },
        timeouts: 19,
        tls: Some(crate::tls::TlsStatus {
            cert: "/c.pem".into(),
            expires_in_days: Some(33),
            not_after: Some(34),
        }),
        uids_online: 20,
        uptime_s: 21,
        version: "9.9.9".into(),
    }
}

#[test]
fn the_json_keeps_its_documented_keys_and_reads_back_equal() {
    let r = report();
    let text = serde_json::to_string(&r).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "api_connections_refused",
            "auth",
            "auth_failures",
            "bound_connections",
            "cluster",
            "connections",
            "connections_refused",
            "groups",
            "inbox",
            "inbox_journal",
            "lines_refused",
            "listeners",
            "memory_rss_bytes",
            "ok",
            "open_files",
            "pid",
            "pushes",
            "scheduled_delivered",
            "scheduled_pending",
            "scheduled_unreadable",
            "slow_consumers_closed",
            "store",
            "timeouts",
            "tls",
            "uids_online",
            "uptime_s",
            "version",
        ]
    );
    // Unknown limits are left out, an unknown count is null (as before the struct).
    assert_eq!(value["open_files"], serde_json::json!({ "open": 9 }));
    assert_eq!(value["store"]["last_error"], serde_json::Value::Null);
    assert_eq!(value["pushes"]["frames_sent"], 13);
    assert_eq!(serde_json::from_str::<StatusReport>(&text).unwrap(), r);
}

#[test]
fn prometheus_names_each_figure_once_with_its_value() {
    let text = report().prometheus();
    for line in [
        "pushman_connections 4",
        "pushman_uids_online 20",
        "pushman_groups 6",
        "pushman_scheduled_pending 16",
        "pushman_store_healthy 1",
        "pushman_store_reopen_attempts 0",
        "pushman_uptime_seconds 21",
        "pushman_memory_rss_bytes 8",
        "pushman_frames_sent_total 13",
        "pushman_dropped_total 11",
        "pushman_scheduled_delivered_total 15",
        "pushman_auth_failures_total 2",
        "pushman_slow_consumers_closed_total 18",
        "pushman_connections_refused_total 5",
        "pushman_api_connections_refused_total 1",
        "pushman_lines_refused_total 7",
        "pushman_timeouts_total 19",
        "pushman_pushes_total{result=\"ok\"} 14",
        "pushman_pushes_total{result=\"fail\"} 12",
        "pushman_listener_connections{listener=\"websocket\"} 4",
        "pushman_inbox_messages 29",
        "pushman_inbox_bytes 22",
        "pushman_inbox_uids 32",
        "pushman_inbox_forgotten_total 26",
        "pushman_inbox_gaps_total 27",
        "pushman_inbox_replayed_total 31",
        "pushman_inbox_queued_delivered_total 30",
        "pushman_inbox_evicted_total{reason=\"ttl\"} 24",
        "pushman_inbox_evicted_total{reason=\"uid_cap\"} 25",
        "pushman_inbox_evicted_total{reason=\"memory\"} 23",
        "pushman_build_info{version=\"9.9.9\"} 1",
        "pushman_tls_cert_not_after_seconds 34",
    ] {
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "{line} in\n{text}"
        );
    }
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples, 32, "{text}");
    assert_eq!(text.matches("# TYPE ").count(), 29, "{text}");
}

#[test]
fn without_an_inbox_the_json_says_null_and_metrics_name_no_inbox_figure() {
    let r = StatusReport {
        inbox: None,
        inbox_journal: None,
        ..report()
    };
    let value = serde_json::to_value(&r).unwrap();
    assert_eq!(value["inbox"], serde_json::Value::Null);
    assert!(!r.prometheus().contains("pushman_inbox_"));
}

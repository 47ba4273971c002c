use super::*;

/// `text` written to a file `NAME.toml` and loaded as `--config FILE` would be. Each call has
/// its own file (tests run in parallel).
fn load(name: &str, text: &str) -> Result<Config, ConfigError> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pushman-config-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let source = crate::source::Source {
        path: Some(path.clone()),
        ..Default::default()
    };
    let result = source.load();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[test]
fn the_commented_default_parses_to_the_defaults() {
    let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(parsed, Config::default());
    parsed.validate().unwrap();
}

#[test]
fn values_keep_the_files_syntax() {
    let config = load(
        "syntax",
        "log_level = \"DEBUG\"\n[listen]\nws = \"[::1]:0\"\ntext = \"\"\nhttp = \"127.0.0.1:9\"\n\
         [limits]\napi_request_timeout = 0\ntext_idle_timeout = 2.5\nhttp_idle_timeout = 75\n\
         [heartbeat]\nping_interval = 0.25\nidle_timeout = 3\n",
    )
    .unwrap();
    assert_eq!(config.log_level, log::LevelFilter::Debug);
    assert_eq!(config.listen.ws, "[::1]:0".parse().unwrap());
    assert_eq!(config.listen.text, None);
    assert_eq!(config.listen.http, Some("127.0.0.1:9".parse().unwrap()));
    let l = &config.limits;
    assert_eq!(l.api_request_timeout, None);
    assert_eq!(l.text_idle_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(l.http_idle_timeout, Some(Duration::from_secs(75)));
    assert_eq!(config.heartbeat.ping_interval, Duration::from_millis(250));
    assert_eq!(config.heartbeat.idle_timeout, Duration::from_secs(3));

    let config = load(
        "proxies",
        "[auth]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\n",
    )
    .unwrap();
    let nets: Vec<String> = config
        .auth
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
}

/// The message of loading `text`, which must fail.
#[track_caller]
fn error(text: &str) -> String {
    load("bad", text).unwrap_err().to_string()
}

#[test]
fn parse_errors_carry_tomls_line_column_and_text() {
    let text = error("[listen]\nws = \"0.0.0.0:1\"\n\n[limits]\nsend_buffer = \"big\"\n");
    assert!(
        text.contains("bad.toml: TOML parse error at line 5, column 15"),
        "{text}"
    );
    assert!(text.contains("send_buffer = \"big\""), "{text}");
    assert!(text.contains("invalid type: string \"big\""), "{text}");

    let text = error("[listen]\nwss = \"x\"\n");
    assert!(
        text.contains("at line 2, column 1") && text.contains("unknown field `wss`"),
        "{text}"
    );
}

#[test]
fn bad_typed_values_are_parse_errors_at_their_line() {
    for (file, line, says) in [
        (
            "[listen]\nws = \"nowhere\"\n",
            2,
            "\"nowhere\" is not an IP:port address",
        ),
        ("[listen]\nws = \"\"\n", 2, "\"\" is not an IP:port address"),
        (
            "[listen]\ntext = \"localhost:5678\"\n",
            2,
            "is not an IP:port address",
        ),
        (
            "\n[heartbeat]\nping_interval = 0\n",
            3,
            "must be a positive number of seconds",
        ),
        (
            "[heartbeat]\nidle_timeout = -1.5\n",
            2,
            "-1.5 is not a number of seconds",
        ),
        (
            "[heartbeat]\nidle_timeout = nan\n",
            2,
            "NaN is not a number of seconds",
        ),
        (
            "[limits]\nhttp_idle_timeout = 1e12\n",
            2,
            "is not a number of seconds",
        ),
        (
            "[limits]\napi_request_timeout = \"10\"\n",
            2,
            "invalid type: string",
        ),
        (
            "[auth]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            2,
            "\"10.0.0.0/33\" is not an address or CIDR",
        ),
        (
            "[auth]\ntrusted_proxies = [\"proxy.internal\"]\n",
            2,
            "is not an address or CIDR",
        ),
        (
            "log_level = \"loud\"\n",
            1,
            "log_level must be error, warn, info, debug or trace",
        ),
    ] {
        let text = error(file);
        assert!(
            text.contains(&format!("TOML parse error at line {line},")) && text.contains(says),
            "{file:?}: {text}"
        );
    }
}

#[test]
fn inconsistent_values_are_named_after_the_overrides() {
    assert_eq!(
        error("[auth]\nmode = \"token\"\n"),
        "invalid config: auth.mode = \"token\" needs auth.secret"
    );
    let mut source = crate::source::Source::default();
    source.overrides.ws = Some("x".into());
    assert_eq!(
        source.load().unwrap_err().to_string(),
        "invalid config: listen.ws = \"x\" is not an IP:port address"
    );
    source.overrides.ws = None;
    source.overrides.text = Some(String::new());
    source.overrides.http = Some("[::1]:80".into());
    let config = source.load().unwrap();
    assert_eq!(config.listen.text, None);
    assert_eq!(config.listen.http, Some("[::1]:80".parse().unwrap()));
}

#[test]
fn cluster_settings_are_checked() {
    let with = |toml: &str| {
        let config: Config = toml::from_str(toml).unwrap();
        config.validate().map_err(|e| e.to_string())
    };
    assert!(with("[cluster]\nredis = \"redis://127.0.0.1:6379/0\"\n").is_ok());
    let bad_url = with("[cluster]\nredis = \"http://127.0.0.1\"\n").unwrap_err();
    assert!(bad_url.contains("cluster.redis"), "{bad_url}");
    let lease = with("[cluster]\nredis = \"redis://127.0.0.1\"\nlease = 0.1\n").unwrap_err();
    assert!(lease.contains("cluster.lease"), "{lease}");
    // The inbox lives in Redis then (cluster::inbox).
    assert!(with("[inbox]\nenabled = true\n[cluster]\nredis = \"redis://127.0.0.1\"\n").is_ok());
    // ... so its durability is Redis's: the embedded log is refused, not silently ignored.
    let durable =
        with("[inbox]\nenabled = true\ndurable = true\n[cluster]\nredis = \"redis://127.0.0.1\"\n")
            .unwrap_err();
    assert!(durable.contains("inbox.durable"), "{durable}");
}

#[test]
fn spin_micros_is_read_and_named_by_reload_as_restart_only() {
    let config = load("spin", "spin_micros = 0\n").unwrap();
    assert_eq!(config.spin_micros, 0, "0 turns spinning off");
    let changed = Config::default().restart_only_changes(&config);
    assert_eq!(changed, vec!["spin_micros (50 → 0)".to_string()]);
    assert!(load("spin-negative", "spin_micros = -1\n").is_err());
    assert!(load("spin-max", "spin_micros = 1000\n").is_ok());
    assert!(load("spin-long", "spin_micros = 1001\n").is_err());
}

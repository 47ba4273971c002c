# Sourced by the bench scripts: the daemon's configuration for a benchmark run.
#
# daemon_config WS TEXT [HTTP] [EXTRA] [TLS_DIR] [PREFIX] prints a config with the
# WebSocket and text ports, the HTTP API on HTTP (none if empty), EXTRA TOML lines
# (e.g. an [inbox] table), [tls] from TLS_DIR/cert.pem and key.pem if given, and its pid,
# log and store under PREFIX (default "$OUT/daemon": PREFIX.pid, PREFIX.log,
# PREFIX-data/). Compatibility mode otherwise: no auth, default heartbeats.
daemon_config() {
    local prefix=${6:-$OUT/daemon}
    cat <<EOF
log_level = "warn"
${4:-}
[listen]
ws = "$1"
text = "$2"
http = "${3:-}"
[files]
pid = "$prefix.pid"
log = "$prefix.log"
store = "$prefix-data/schedule.redb"
EOF
    if [[ -n ${5:-} ]]; then
        printf '[tls]\ncert = "%s/cert.pem"\nkey = "%s/key.pem"\n' "$5" "$5"
    fi
}

//! The daemon's log lines: readable text or one JSON object per line, on stderr (the
//! terminal, the journal, `docker logs`, or the log file of `start -d`).
//!
//! The format is a flag read for every line, so `reload` switches it without a restart.

use crate::config::LogFormat;
use std::{
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
};

static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the logger; call once, before the first line.
pub(crate) fn init(format: LogFormat, level: log::LevelFilter) {
    set_format(format);
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .format(|buf, record| {
            if JSON.load(Ordering::Relaxed) {
                let line = json_line(&buf.timestamp_millis().to_string(), record);
                writeln!(buf, "{line}")
            } else {
                let ts = buf.timestamp_seconds();
                writeln!(buf, "[{ts} {:<5}] {}", record.level(), record.args())
            }
        })
        .init();
    log::set_max_level(level);
}

/// Switches the format of the lines that follow.
pub(crate) fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// One record as a JSON object: `ts` (RFC 3339, UTC, milliseconds), `level`, `target` (the
/// module that logged), `msg`; serde_json escapes whatever the message holds.
fn json_line(ts: &str, record: &log::Record<'_>) -> String {
    serde_json::json!({
        "ts": ts,
        "level": record.level().as_str(),
        "target": record.target(),
        "msg": record.args().to_string(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_whatever_the_message_holds() {
        let message = "uid \"a\nb\" said \u{7}";
        let line = json_line(
            "2026-12-05T12:00:00.000Z",
            &log::Record::builder()
                .args(format_args!("{message}"))
                .level(log::Level::Warn)
                .target("pushman::clients")
                .build(),
        );
        assert!(!line.contains('\n'), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["target"], "pushman::clients");
        assert_eq!(value["msg"], message);
        assert_eq!(value["ts"], "2026-12-05T12:00:00.000Z");
    }
}

//! Where the running configuration comes from, kept so `reload` rebuilds it the same way
//! `start` did: the file, the command line's overrides, and the start directory.

use super::config::{parse_addr, parse_optional_addr, Config, ConfigError};
use std::{net::SocketAddr, path::PathBuf};

/// Command-line values that replace the file's (`--ws`, `--pid-file`, ...). The daemon
/// keeps them, so `reload` applies them again to the re-read file instead of taking the
/// file's values for a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    /// `--ws`.
    pub(crate) ws: Option<String>,
    /// `--text`.
    pub(crate) text: Option<String>,
    /// `--http`.
    pub(crate) http: Option<String>,
    /// `--pid-file`.
    pub(crate) pid: Option<PathBuf>,
    /// `--log-file`.
    pub(crate) log: Option<PathBuf>,
}

/// Where the configuration comes from. `start` and every `reload` build it the same way
/// (file, then overrides, then relative paths made absolute against `base`), so a re-read
/// of an unchanged file compares equal to what is running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Source {
    /// The config file, absolute; `None` runs on the defaults.
    pub(crate) path: Option<PathBuf>,
    /// The command line's values.
    pub(crate) overrides: Overrides,
    /// The working directory at start: relative `[files]` paths are relative to it.
    pub(crate) base: PathBuf,
}

impl Source {
    /// Reads the file (or the defaults), applies the overrides, resolves `[files]` and
    /// validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the line and the key.
    pub(crate) fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let o = &self.overrides;
        // The flags take the file's syntax, and a bad one is named as its key would be.
        let invalid = |key: &str, e: String| ConfigError::Invalid(format!("{key} = {e}"));
        if let Some(ws) = &o.ws {
            config.listen.ws = parse_addr(ws).map_err(|e| invalid("listen.ws", e))?;
        }
        for (key, to, from) in [
            ("listen.text", &mut config.listen.text, &o.text),
            ("listen.http", &mut config.listen.http, &o.http),
        ] {
            if let Some(value) = from {
                *to = parse_optional_addr(value).map_err(|e| invalid(key, e))?;
            }
        }
        if let Some(pid) = &o.pid {
            config.files.pid.clone_from(pid);
        }
        if let Some(log) = &o.log {
            config.files.log.clone_from(log);
        }
        for file in [
            &mut config.files.pid,
            &mut config.files.log,
            &mut config.files.store,
        ] {
            *file = self.base.join(&*file);
        }
        for file in [&mut config.tls.cert, &mut config.tls.key] {
            if !file.as_os_str().is_empty() {
                *file = self.base.join(&*file);
            }
        }
        config.validate()?;
        Ok(config)
    }
}

impl Config {
    /// The `[listen]` and `[files]` keys (and TLS on/off, `tls.ws_plain`, `inbox.enabled`,
    /// `inbox.durable`, `spin_micros`) that differ in `new`, as `key (old → new)`: they take
    /// effect only at restart, so `reload` names them.
    pub(crate) fn restart_only_changes(&self, new: &Config) -> Vec<String> {
        let (a, b) = (&self.listen, &new.listen);
        let (f, g) = (&self.files, &new.files);
        let mut changed = Vec::new();
        for (key, old, new) in [
            ("listen.ws", Some(a.ws), Some(b.ws)),
            ("listen.text", a.text, b.text),
            ("listen.http", a.http, b.http),
        ] {
            if old != new {
                // As the file spells them: quoted, "" for off.
                let (old, new) = (as_in_file(old), as_in_file(new));
                changed.push(format!("{key} ({old:?} → {new:?})"));
            }
        }
        for (key, old, new) in [
            ("files.pid", &f.pid, &g.pid),
            ("files.log", &f.log, &g.log),
            ("files.store", &f.store, &g.store),
        ] {
            if old != new {
                changed.push(format!("{key} ({} → {})", old.display(), new.display()));
            }
        }
        let (t, u) = (&self.tls, &new.tls);
        if t.enabled() != u.enabled() {
            let onoff = |on: bool| if on { "on" } else { "off" };
            changed.push(format!(
                "tls ({} → {})",
                onoff(t.enabled()),
                onoff(u.enabled())
            ));
        }
        if t.ws_plain != u.ws_plain {
            let (old, new) = (as_in_file(t.ws_plain), as_in_file(u.ws_plain));
            changed.push(format!("tls.ws_plain ({old:?} → {new:?})"));
        }
        if self.inbox.enabled != new.inbox.enabled {
            let (old, new) = (self.inbox.enabled, new.inbox.enabled);
            changed.push(format!("inbox.enabled ({old} → {new})"));
        }
        if self.inbox.durable != new.inbox.durable {
            let (old, new) = (self.inbox.durable, new.inbox.durable);
            changed.push(format!("inbox.durable ({old} → {new})"));
        }
        if self.spin_micros != new.spin_micros {
            let (old, new) = (self.spin_micros, new.spin_micros);
            changed.push(format!("spin_micros ({old} → {new})"));
        }
        changed
    }
}

/// A listener's address as the file writes it (`""`: off).
fn as_in_file(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_default()
}

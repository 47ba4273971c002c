//! `[inbox]`: how long and how many pushes are kept for reconnecting and offline clients
//! (docs/PROTOCOL.md §7). The daemon side is `crate::inbox`.

use pushman::push::inbox::{self, Epoch, Inbox};
use serde::Deserialize;
use std::time::Duration;

/// `[inbox]` in pushman.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct InboxSettings {
    /// Keep pushes at all.
    pub(crate) enabled: bool,
    /// How long a push is kept.
    #[serde(deserialize_with = "super::de::positive_seconds")]
    pub(crate) ttl: Duration,
    /// Pushes kept per stream; the oldest goes first.
    pub(crate) max_per_uid: usize,
    /// Bytes kept over all streams; the oldest push of any stream goes first.
    pub(crate) max_memory: usize,
    /// How long an empty stream's position is remembered.
    #[serde(deserialize_with = "super::de::positive_seconds")]
    pub(crate) idle_ttl: Duration,
    /// Deliver queued pushes to a uid's first plain connection.
    pub(crate) offline: bool,
    /// The compat reply for a line that only got queued.
    pub(crate) offline_reply: OfflineReply,
    /// Keep the inbox in `files.store` too: it survives a restart or a crash, and a push
    /// is acknowledged only once committed (`crate::store::journal`).
    pub(crate) durable: bool,
}

/// What a compat line that reached nobody but was queued answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OfflineReply {
    /// push.php's truth: nobody is online now.
    #[default]
    Fail,
    /// It will be delivered when the uid connects.
    Ok,
}

impl Default for InboxSettings {
    fn default() -> Self {
        let limits = inbox::Config::default();
        Self {
            enabled: false,
            ttl: Duration::from_millis(limits.ttl_ms),
            max_per_uid: limits.max_per_uid,
            max_memory: limits.max_bytes,
            idle_ttl: Duration::from_millis(limits.idle_ttl_ms),
            offline: false,
            offline_reply: OfflineReply::Fail,
            durable: false,
        }
    }
}

impl InboxSettings {
    /// The library's bounds.
    pub(crate) fn limits(&self) -> inbox::Config {
        inbox::Config {
            ttl_ms: self.ttl.as_millis() as u64,
            max_per_uid: self.max_per_uid,
            max_bytes: self.max_memory,
            idle_ttl_ms: self.idle_ttl.as_millis() as u64,
        }
    }

    /// Checks what TOML types cannot.
    ///
    /// # Errors
    /// The key and the reason.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_per_uid == 0 || self.max_memory < 1024 {
            return Err("inbox.max_per_uid must be at least 1, inbox.max_memory 1024".into());
        }
        if self.durable && !self.enabled {
            return Err("inbox.durable = true needs inbox.enabled = true".into());
        }
        Ok(())
    }

    /// A new, empty inbox, or `None` when it is off.
    pub(crate) fn open(&self) -> Option<Inbox> {
        self.enabled
            .then(|| Inbox::new(self.limits(), Epoch::random()))
    }
}

//! The daemon's TLS (`[tls]`): the certificate loaded at start, replaced by `reload`
//! (new connections get the new one, open ones keep theirs; one that does not load keeps
//! the old), and what `status` shows of it.

use crate::{clients, config::TlsSettings, state::Daemon};
use pushman::{Ctx, TlsConfig};
use serde::{Deserialize, Serialize};
use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

/// Below this much validity left, start and reload warn.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// The certificate in use and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// For the WebSocket listener.
    pub(crate) config: TlsConfig,
    /// The chain file it was read from.
    pub(crate) cert: PathBuf,
}

/// Loads `settings`' files (`None` while TLS is off).
///
/// # Errors
/// One line naming `[tls]` and the file or the reason.
pub(crate) fn load(settings: &TlsSettings) -> Result<Option<Loaded>, String> {
    if !settings.enabled() {
        return Ok(None);
    }
    let config = TlsConfig::from_pem_files(&settings.cert, &settings.key).map_err(|e| {
        format!(
            "[tls] cert {} / key {}: {e}",
            settings.cert.display(),
            settings.key.display()
        )
    })?;
    warn_if_expiring(&config, &settings.cert);
    Ok(Some(Loaded {
        config,
        cert: settings.cert.clone(),
    }))
}

/// `reload`: re-reads the certificate and key named by `settings` (the re-read config).
/// TLS turned on or off needs a restart (the reload names that change).
pub(crate) fn reload(ctx: &mut Ctx<'_, Daemon>, settings: &TlsSettings) {
    if ctx.state.tls.is_none() || !settings.enabled() {
        return;
    }
    match load(settings) {
        Ok(Some(loaded)) => {
            ctx.io.set_tls(clients::NAME, loaded.config.clone());
            log::info!(
                "reload: certificate {} loaded{}; new connections get it, open ones keep theirs",
                loaded.cert.display(),
                expiry_text(&loaded.config)
            );
            ctx.state.tls = Some(loaded);
        }
        Ok(None) => {}
        Err(e) => log::error!("reload: keeping the certificate in use: {e}"),
    }
}

fn warn_if_expiring(config: &TlsConfig, cert: &Path) {
    if config
        .expires_in()
        .is_some_and(|left| left < EXPIRY_WARNING)
    {
        log::warn!(
            "certificate {}{}: renew it, then `pushman reload`",
            cert.display(),
            expiry_text(config)
        );
    }
}

/// `, expires in N days (Unix time T)`, or nothing if the date could not be read.
fn expiry_text(config: &TlsConfig) -> String {
    match (config.not_after(), config.expires_in()) {
        (Some(at), Some(left)) => format!(
            ", expires in {} days (Unix time {})",
            left.as_secs() / 86_400,
            unix(at)
        ),
        _ => String::new(),
    }
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What `status` shows while TLS is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TlsStatus {
    /// The chain file in use.
    pub(crate) cert: String,
    /// Days of validity left (0 once expired); `null` if the date could not be read.
    pub(crate) expires_in_days: Option<u64>,
    /// The certificate's `notAfter`, Unix seconds; `null` if it could not be read.
    pub(crate) not_after: Option<u64>,
}

impl TlsStatus {
    pub(crate) fn of(loaded: &Loaded) -> Self {
        Self {
            cert: loaded.cert.display().to_string(),
            expires_in_days: loaded.config.expires_in().map(|d| d.as_secs() / 86_400),
            not_after: loaded.config.not_after().map(unix),
        }
    }
}

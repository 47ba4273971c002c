//! `[tls]`: the WebSocket port as `wss://`, with a certificate chain and key in PEM files
//! that `reload` re-reads (renewals without dropping connections).

use super::de;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// `[tls]`; off while `cert` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TlsSettings {
    /// The certificate chain, PEM: the server's certificate first, then intermediates.
    pub(crate) cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
    /// A second, plain `ws://` listener for the same clients (a proxy or a local test on
    /// loopback); `""` (the default): none.
    #[serde(deserialize_with = "de::optional_addr")]
    pub(crate) ws_plain: Option<SocketAddr>,
}

impl TlsSettings {
    /// Whether the WebSocket port speaks TLS.
    pub(crate) fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }

    /// `cert` and `key` come together; `ws_plain` only beside a TLS port.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.cert.as_os_str().is_empty() != self.key.as_os_str().is_empty() {
            return Err(
                "tls.cert and tls.key are set together (both PEM files) or not at all".into(),
            );
        }
        if self.ws_plain.is_some() && !self.enabled() {
            return Err("tls.ws_plain is a plain listener beside a TLS one: set tls.cert and tls.key, or use listen.ws".into());
        }
        Ok(())
    }
}

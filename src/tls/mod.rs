//! TLS for listeners (Workerman's `transport = 'ssl'`): a certificate chain and key loaded
//! from PEM into a [`TlsConfig`], which a [`Worker`](crate::Worker) carries in its `tls`
//! field.
//!
//! The reactor drives one `rustls::ServerConnection` per connection without threads or
//! blocking: ciphertext read from the socket is fed to it, the plaintext it yields goes to
//! the worker's codec, and what the codec and callbacks send is sealed and leaves in the
//! same batched `writev` as plain output. A TLS handshake that stalls counts as an
//! incomplete request, so `limits.request_timeout` bounds it. ALPN offers `http/1.1`.
//!
//! The crypto backend is *ring*: it builds with nothing but a C compiler (aws-lc-rs wants
//! cmake and takes several times longer to build), it is already in the dependency tree of
//! the HTTP client the tests use, and it provides everything a WebSocket server needs
//! (TLS 1.3 and 1.2, ECDHE with X25519/P-256, AES-GCM, ChaCha20-Poly1305). What it lacks
//! (FIPS mode, post-quantum key exchange) is what aws-lc-rs would be chosen for.

use rustls::{
    crypto::ring,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ServerConfig,
};
use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

mod expiry;

/// A server certificate chain and key, ready for listeners. Cheap to clone (shared).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
    not_after: Option<SystemTime>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why a certificate or key could not be loaded.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate PEM holds no `CERTIFICATE` block, or one that is not valid PEM.
    NoCertificate,
    /// The key PEM holds no private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE
    /// KEY`), or one that is not valid PEM.
    NoKey,
    /// rustls refused the pair (an unsupported key type, or a key that does not match the
    /// certificate).
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::NoCertificate => f.write_str("no PEM CERTIFICATE block found"),
            Self::NoKey => f.write_str("no PEM private key found"),
            Self::Rustls(e) => write!(f, "certificate and key refused: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Rustls(e) => Some(e),
            Self::NoCertificate | Self::NoKey => None,
        }
    }
}

impl TlsConfig {
    /// From PEM text: `cert_chain` holds the server certificate first, then any
    /// intermediates; `key` its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`TlsError::NoCertificate`], [`TlsError::NoKey`], or [`TlsError::Rustls`] when the key
    /// does not match the certificate or is of an unsupported type.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::NoCertificate)?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| TlsError::NoKey)?;
        let not_after = expiry::not_after(&chain[0]);
        let mut server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Rustls)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            server: Arc::new(server),
            not_after,
        })
    }

    /// From PEM files (see [`TlsConfig::from_pem`]); the two paths may name one file.
    ///
    /// # Errors
    /// [`TlsError::Read`] naming the file, or as [`TlsError`] for [`TlsConfig::from_pem`].
    pub fn from_pem_files(cert_chain: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Self::from_pem(&read(cert_chain)?, &read(key)?)
    }

    /// A configuration built with rustls directly (client certificates, other ALPN, a
    /// certificate resolver). The reactor uses it as given.
    pub fn from_rustls(server: Arc<ServerConfig>) -> Self {
        Self {
            server,
            not_after: None,
        }
    }

    /// When the server certificate expires, if it was loaded from PEM and its validity
    /// could be read.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }

    /// Time left until the certificate expires (zero once expired), if known.
    pub fn expires_in(&self) -> Option<Duration> {
        let at = self.not_after?;
        Some(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

//! The crate's error type, for everything above the codecs.

use std::{fmt, io, net::SocketAddr};

/// Errors from setting up or running workers.
#[derive(Debug)]
pub enum Error {
    /// An I/O error outside any one connection (polling, registering, signals).
    Io(io::Error),
    /// A listener could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        source: io::Error,
    },
    /// A worker address is malformed or names an unknown scheme.
    Address {
        /// The address as given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Address { given, reason } => write!(f, "bad worker address {given:?}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) | Self::Bind { source: e, .. } => Some(e),
            Self::Address { .. } => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

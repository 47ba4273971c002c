//! Backends proving themselves on both APIs: the `api_secret` comparison, and a per-address
//! throttle that makes guessing it slow.

use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Wrong secrets one address may present per [`WINDOW`] before it is refused outright.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The throttle's window: failures older than this are forgotten.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; beyond it the oldest windows are dropped, so a flood of
/// addresses cannot grow memory.
const MAX_TRACKED: usize = 4096;

/// Whether `given` is `expected`, in time independent of both contents and lengths: the
/// two are hashed first, and the digests (of equal length) compared without an early exit.
pub(crate) fn secret_matches(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Wrong-secret attempts per peer address.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    /// Whether `ip` used up its attempts for the current window.
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures
            .get(&ip)
            .is_some_and(|&(since, n)| n >= MAX_FAILURES && now.duration_since(since) < WINDOW)
    }

    /// Counts a wrong secret from `ip`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.failures
                .retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
            if self.failures.len() >= MAX_TRACKED {
                let oldest = self.failures.iter().min_by_key(|(_, (since, _))| *since);
                if let Some(&ip) = oldest.map(|(ip, _)| ip) {
                    self.failures.remove(&ip);
                }
            }
        }
        let entry = self.failures.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets `ip`'s failures after it presented the right secret.
    pub(crate) fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secret_matches(b"s3cret", b"s3cret"));
        assert!(secret_matches(b"", b""));
        for other in [&b"s3cre"[..], b"s3cret!", b"S3cret", b""] {
            assert!(!secret_matches(other, b"s3cret"), "{other:?}");
        }
    }

    #[test]
    fn the_throttle_blocks_after_max_failures_until_the_window_ends() {
        let (mut t, ip, now) = (
            Throttle::default(),
            IpAddr::from([127, 0, 0, 1]),
            Instant::now(),
        );
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(ip, now);
        }
        assert!(!t.blocked(ip, now));
        t.failed(ip, now);
        assert!(t.blocked(ip, now));
        assert!(!t.blocked(IpAddr::from([127, 0, 0, 2]), now), "per address");
        assert!(!t.blocked(ip, now + WINDOW), "the window ends");
        t.succeeded(ip);
        assert!(!t.blocked(ip, now));
    }

    #[test]
    fn the_throttle_tracks_a_bounded_number_of_addresses() {
        let (mut t, now) = (Throttle::default(), Instant::now());
        for i in 0..(MAX_TRACKED as u32 + 100) {
            t.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(t.failures.len() <= MAX_TRACKED);
    }
}

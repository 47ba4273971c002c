//! The layout of mio tokens: fixed tokens first, then listeners, then connections.

use mio::Token;

/// Cross-thread wakeups ([`crate::StopHandle`]).
pub(crate) const WAKER: Token = Token(0);
/// The read end of the signal-hook self-pipe.
pub(crate) const SIGNALS: Token = Token(1);
/// The timers' timerfd (`alarm.rs`).
pub(crate) const ALARM: Token = Token(2);
/// Listener `i` has token `FIRST_LISTENER + i`.
pub(crate) const FIRST_LISTENER: usize = 3;
/// Connection slab key `k` has token `FIRST_CONN + k`.
pub(crate) const FIRST_CONN: usize = 1 << 16;

/// The token of listener `index`.
pub(crate) fn listener(index: usize) -> Token {
    Token(FIRST_LISTENER + index)
}

/// The token of the connection in slab slot `key`.
pub(crate) fn conn(key: usize) -> Token {
    Token(FIRST_CONN + key)
}

/// What a token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// [`WAKER`].
    Waker,
    /// [`SIGNALS`].
    Signals,
    /// [`ALARM`].
    Alarm,
    /// A listener, by index.
    Listener(usize),
    /// A connection, by slab key.
    Conn(usize),
}

/// Decodes a token into what it names.
pub(crate) fn target(token: Token) -> Target {
    match token.0 {
        0 => Target::Waker,
        1 => Target::Signals,
        2 => Target::Alarm,
        t if t < FIRST_CONN => Target::Listener(t - FIRST_LISTENER),
        t => Target::Conn(t - FIRST_CONN),
    }
}

//! The resume protocol on the wire (`docs/PROTOCOL.md` §7): the `since` URL parameter in,
//! the `bound`, `gap` and `msg` frames out. Text only; the server decides when to send them.

use super::{Epoch, GapReason, Offset};
use std::{fmt, str::FromStr};

/// Longest `since` value accepted: 16 hex digits and two 20-digit offsets with separators.
const MAX_SINCE: usize = 16 + 2 * (1 + 20);

/// A reconnecting client's `since=EPOCH:UID_OFFSET[:ALL_OFFSET]`: where it is in its uid's
/// stream and, if it follows broadcasts, in the broadcast stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    /// The epoch of the `bound` frame it got.
    pub epoch: Epoch,
    /// The last offset it saw in its uid's stream.
    pub uid: Offset,
    /// The last offset it saw in the broadcast stream; `None`: start broadcasts live.
    pub all: Option<Offset>,
}

/// Why a `since` value was refused (the connection then starts as a fresh one, with a
/// `gap` frame, see §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinceError {
    /// Not `EPOCH:OFFSET` or `EPOCH:OFFSET:OFFSET`, or longer than any valid value.
    Shape,
    /// The epoch is not 1 to 16 hex digits.
    Epoch,
    /// An offset is not a decimal `u64`.
    Offset,
}

impl fmt::Display for SinceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shape => "since must be EPOCH:OFFSET or EPOCH:OFFSET:OFFSET",
            Self::Epoch => "the epoch in since must be 1 to 16 hex digits",
            Self::Offset => "an offset in since must be a decimal integer below 2^64",
        })
    }
}

impl std::error::Error for SinceError {}

impl FromStr for Since {
    type Err = SinceError;

    fn from_str(s: &str) -> Result<Self, SinceError> {
        if s.len() > MAX_SINCE {
            return Err(SinceError::Shape);
        }
        let mut parts = s.split(':');
        let (Some(e), Some(o)) = (parts.next(), parts.next()) else {
            return Err(SinceError::Shape);
        };
        let a = parts.next();
        if parts.next().is_some() {
            return Err(SinceError::Shape);
        }
        let hex =
            |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(e) {
            return Err(SinceError::Epoch);
        }
        let epoch = e.parse().map_err(|_| SinceError::Epoch)?;
        let offset = |s: &str| match s.bytes().all(|b| b.is_ascii_digit()) {
            true => s.parse::<Offset>().map_err(|_| SinceError::Offset),
            false => Err(SinceError::Offset),
        };
        Ok(Self {
            epoch,
            uid: offset(o)?,
            all: a.map(offset).transpose()?,
        })
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.uid)?;
        match self.all {
            Some(a) => write!(f, ":{a}"),
            None => Ok(()),
        }
    }
}

/// Which stream a frame is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The uid's own stream: key `"o"`, `"s":"uid"`.
    Uid,
    /// The broadcast stream: key `"a"`, `"s":"all"`.
    All,
}

impl Stream {
    fn key(self) -> &'static str {
        match self {
            Self::Uid => "o",
            Self::All => "a",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Uid => "uid",
            Self::All => "all",
        }
    }
}

/// The first frame a resume-capable connection gets once bound: its uid, the epoch and its
/// position in both streams; every later `msg` continues from these.
/// `{"pushman":"bound","uid":"u1","e":"00c0ffee00c0ffee","o":17,"a":4}`
pub fn bound_frame(uid: &str, epoch: Epoch, uid_pos: Offset, all_pos: Offset) -> String {
    let uid = json_string(uid);
    format!(r#"{{"pushman":"bound","uid":{uid},"e":"{epoch}","o":{uid_pos},"a":{all_pos}}}"#)
}

/// Sent right after `bound` when the client's `since` could not be resumed in `stream`:
/// `{"pushman":"gap","s":"uid","reason":"evicted"}`. The `bound` frame's position is then the
/// stream's current end; the app should reload its state.
pub fn gap_frame(stream: Stream, reason: GapReason) -> String {
    let reason = match reason {
        GapReason::Epoch => "epoch",
        GapReason::Evicted => "evicted",
        GapReason::Ahead => "ahead",
    };
    format!(
        r#"{{"pushman":"gap","s":"{}","reason":"{reason}"}}"#,
        stream.name()
    )
}

/// One push for a resume-capable connection: `{"pushman":"msg","o":18,"d":"<text>"}` (or
/// `"a"` for a broadcast), where `d` is, as a JSON string, exactly the frame a plain client
/// gets.
pub fn msg_frame(stream: Stream, offset: Offset, payload: &str) -> String {
    let d = json_string(payload);
    format!(r#"{{"pushman":"msg","{}":{offset},"d":{d}}}"#, stream.key())
}

/// `s` as a JSON string literal. serde_json escapes `"`, `\` and control characters, and
/// cannot fail on a `str`.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

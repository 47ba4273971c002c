//! What a backend asked for: one JSON object (a text-port line or an HTTP body) parsed into
//! a [`Command`].
//!
//! # Two modes on one port
//!
//! - **Compatibility** (push.php, byte for byte): an object *without* `"cmd"`.
//!   `{"broadcast":true,…}` is [`Command::CompatBroadcast`]; otherwise `"uid"` must be a
//!   string and the line is [`Command::CompatPush`]. The daemon sends the whole original line
//!   and answers `ok` or `fail` ([`COMPAT_OK`], [`COMPAT_FAIL`]); any parse error is `fail`.
//! - **Extended**: an object with `"cmd": "<name>"`, answered with a JSON object
//!   (`{"ok":true,…}` or [`error_reply`]). Unknown keys are ignored; a `null` value counts as
//!   absent, as with PHP's `isset`; a repeated key keeps its last value, as with `json_decode`.

mod error;
mod field;

pub use error::CommandError;
use field::{
    as_bool, as_f64, as_str, as_u64, as_usize, limit, name, optional, required, uid_list, wrong,
};
pub use field::{DEFAULT_LIMIT, MAX_LIMIT};

use super::json::{self, CompatLine, Data, Fields, Head, Loose, ScanError};
use std::{borrow::Cow, fmt};

/// Compatibility-mode reply when the message reached at least one connection.
pub const COMPAT_OK: &str = "ok";
/// Compatibility-mode reply when it reached none, or the line was not understood.
pub const COMPAT_FAIL: &str = "fail";
/// Longest unknown command name echoed back in [`CommandError::UnknownCommand`].
const MAX_ECHO: usize = 64;

/// One parsed backend request. Strings borrow from the input unless they held escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<'a> {
    /// push.php: send the whole original line to every connection of `uid`.
    CompatPush {
        /// The recipient; never empty.
        uid: Cow<'a, str>,
    },
    /// push.php: send the whole original line to every connection.
    CompatBroadcast,
    /// `push`: send `data` to `target`, now or later.
    Push {
        /// Who receives it.
        target: Target<'a>,
        /// The message text: a JSON string as is, any other value as compact JSON.
        data: Cow<'a, str>,
        /// When to send it.
        when: When,
    },
    /// `cancel`: drop the scheduled push `id`.
    Cancel {
        /// The id `push` returned.
        id: u64,
    },
    /// `scheduled`: list pending pushes, soonest first.
    Scheduled {
        /// At most this many ([`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
        limit: usize,
    },
    /// `join`: add `uid` to `group`.
    Join {
        /// The group.
        group: Cow<'a, str>,
        /// The member.
        uid: Cow<'a, str>,
    },
    /// `leave`: remove `uid` from `group`.
    Leave {
        /// The group.
        group: Cow<'a, str>,
        /// The member.
        uid: Cow<'a, str>,
    },
    /// `members`: list a group's uids.
    Members {
        /// The group.
        group: Cow<'a, str>,
    },
    /// `online`: is `uid` online, and with how many connections.
    Online {
        /// The uid asked about.
        uid: Cow<'a, str>,
    },
    /// `online_list`: one page of online uids, sorted.
    OnlineList {
        /// uids to skip (default 0).
        offset: usize,
        /// Page size ([`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
        limit: usize,
    },
    /// `totals`: counts of uids, connections, groups and scheduled pushes.
    Totals,
    /// `kick`: close every connection of `uid`.
    Kick {
        /// Whose connections.
        uid: Cow<'a, str>,
        /// Told to the client before closing, if given.
        reason: Option<Cow<'a, str>>,
    },
    /// `auth`: log a text-port connection in to the extended API.
    Auth {
        /// The API secret to compare (in constant time) with the configured one.
        secret: Cow<'a, str>,
    },
}

/// Who a `push` goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// Every connection of one uid.
    Uid(Cow<'a, str>),
    /// Every connection of each of these uids.
    Uids(Vec<Cow<'a, str>>),
    /// Every connection of every online member of a group.
    Group(Cow<'a, str>),
    /// Every bound connection.
    All,
}

/// Who a scheduled push goes to (the owned form of [`Target`]): what the server's schedule
/// stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredTarget {
    /// Every connection of one uid.
    Uid(String),
    /// Every connection of each of these uids.
    Uids(Vec<String>),
    /// Every connection of every online member of a group, as it is when the push is due.
    Group(String),
    /// Every bound connection.
    All,
}

impl Target<'_> {
    /// The owned form kept in the schedule.
    pub fn to_stored(&self) -> StoredTarget {
        match self {
            Self::Uid(u) => StoredTarget::Uid(u.to_string()),
            Self::Uids(us) => StoredTarget::Uids(us.iter().map(|u| u.to_string()).collect()),
            Self::Group(g) => StoredTarget::Group(g.to_string()),
            Self::All => StoredTarget::All,
        }
    }
}

/// When a `push` is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// Right away.
    Now,
    /// After this many seconds (finite, ≥ 0, may be fractional).
    Delay(f64),
    /// At this unix time in seconds (finite, ≥ 0, may be fractional; a past time means now).
    At(f64),
}

/// How far ahead a push may be scheduled: 365 days, in milliseconds. A typo such as
/// `delay: 1e12` (31,700 years) is refused instead of sitting in the store forever.
pub const MAX_AHEAD_MS: u64 = 365 * 24 * 3600 * 1000;

impl When {
    /// The unix time in milliseconds to send at, given the current one; `None` for `Now`.
    /// A time not after `now_ms` (`delay: 0`, a past `at`) means now.
    ///
    /// # Errors
    /// [`CommandError::BadWhen`] if it is more than [`MAX_AHEAD_MS`] after `now_ms`.
    pub fn at_ms(self, now_ms: u64) -> Result<Option<u64>, CommandError> {
        // `as` from f64 saturates, and both values are finite and ≥ 0.
        match self {
            Self::Now => Ok(None),
            Self::Delay(secs) => {
                let ms = (secs * 1000.0).ceil() as u64;
                if ms > MAX_AHEAD_MS {
                    return Err(CommandError::BadWhen(
                        "delay must be at most 31536000 s (365 days)",
                    ));
                }
                // `now_ms` is rounded down: adding the millisecond that may already have
                // begun means the push is never sent before `delay` has passed.
                Ok((ms > 0).then(|| now_ms.saturating_add(ms + 1)))
            }
            Self::At(secs) => {
                let at = (secs * 1000.0).ceil() as u64;
                if at > now_ms.saturating_add(MAX_AHEAD_MS) {
                    return Err(CommandError::BadWhen(
                        "at must be at most 365 days (31536000 s) from now",
                    ));
                }
                Ok(Some(at))
            }
        }
    }
}

/// Parses one backend request.
///
/// Compatibility lines are scanned once, for `cmd`, `uid` and `broadcast` only; extended
/// ones a second time for their other fields.
///
/// # Errors
/// [`CommandError`], whose `Display` is meant for [`error_reply`]. In compatibility mode
/// every error means `fail`; [`parse_request`] also says which mode a refused line is in.
pub fn parse(line: &[u8]) -> Result<Command<'_>, CommandError> {
    parse_request(line).map_err(|refused| refused.error)
}

/// How a request is answered: push.php's [`COMPAT_OK`]/[`COMPAT_FAIL`], or a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An object without `"cmd"`: answered `ok` or `fail`.
    Compat,
    /// An object with `"cmd"`: answered `{"ok":true,…}` or [`error_reply`].
    Extended,
}

/// A request [`parse_request`] refused: why, and the mode its answer must be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The mode of the line, so a refusal is answered as its mode's errors are.
    pub mode: Mode,
    /// Why it was refused.
    pub error: CommandError,
}

impl Command<'_> {
    /// The mode this command is answered in.
    pub fn mode(&self) -> Mode {
        match self {
            Self::CompatPush { .. } | Self::CompatBroadcast => Mode::Compat,
            _ => Mode::Extended,
        }
    }
}

/// [`parse`], and for a refused line also its [`Mode`], decided in the same pass: a line
/// that scans is in the mode its `cmd` key says; one too broken (or too deep) to scan is
/// extended if it lexically has a top-level `"cmd"` key ([`is_extended`]), so it still
/// gets a JSON error rather than push.php's `fail`.
///
/// # Errors
/// [`Refused`].
pub fn parse_request(line: &[u8]) -> Result<Command<'_>, Refused> {
    match parse_compat(line) {
        Some(command) => Ok(command),
        None => parse_uncommon(line),
    }
}

/// The common push.php line ([`Command::CompatPush`] or [`Command::CompatBroadcast`]) in
/// one derive-read pass, or `None`: then [`parse_uncommon`] has the answer, every refusal
/// included. A backend's burst is nearly all such lines, and a caller that reads them here
/// first can skip what only the other commands need.
#[inline]
pub fn parse_compat(line: &[u8]) -> Option<Command<'_>> {
    let compat = CompatLine::read(line)?;
    if compat.broadcast == Some(true) {
        return Some(Command::CompatBroadcast);
    }
    let uid = compat.uid().filter(|uid| !uid.is_empty())?;
    Some(Command::CompatPush { uid })
}

/// [`parse_request`] for a line [`parse_compat`] did not take, by the loose scan alone.
///
/// # Errors
/// [`Refused`].
pub fn parse_uncommon(line: &[u8]) -> Result<Command<'_>, Refused> {
    let refused = |mode, error| Refused { mode, error };
    let head = match json::scan::<Head<'_>>(line) {
        Ok(head) => head,
        Err(ScanError::NotJson) if is_extended(line) => {
            return Err(refused(Mode::Extended, CommandError::NotJson))
        }
        Err(e) => return Err(refused(Mode::Compat, e.into())),
    };
    let cmd = match head.cmd {
        Loose::Absent => return compat(head).map_err(|e| refused(Mode::Compat, e)),
        Loose::Str(cmd) => cmd,
        _ => return Err(refused(Mode::Extended, wrong("cmd", "a string"))),
    };
    let extended = |e| refused(Mode::Extended, e);
    let fields = json::scan::<Fields<'_>>(line).map_err(|e| extended(e.into()))?;
    extended_command(&cmd, fields).map_err(extended)
}

/// The extended command `cmd` with its fields in the JSON object `body` (HTTP's
/// `POST /cmd`); a `"cmd"` key in `body` is ignored, and an empty body is `{}`.
///
/// # Errors
/// [`CommandError`], answered as an extended command's.
pub fn parse_body<'a>(cmd: &str, body: &'a [u8]) -> Result<Command<'a>, CommandError> {
    let fields = match json::scan::<Fields<'_>>(body) {
        Err(ScanError::NotJson) if body.iter().all(u8::is_ascii_whitespace) => Fields::default(),
        scanned => scanned?,
    };
    extended_command(cmd, fields)
}

/// The extended command `cmd` with fields from URL query pairs (HTTP's `GET /cmd?...`),
/// already percent-decoded. A value that reads as a non-negative integer or as
/// `true`/`false` is that; anything else is a string. Keys commands do not use are
/// ignored; a repeated key keeps its last value.
///
/// # Errors
/// [`CommandError`], answered as an extended command's.
pub fn parse_query<'a, I>(cmd: &str, pairs: I) -> Result<Command<'a>, CommandError>
where
    I: IntoIterator<Item = (&'a str, Cow<'a, str>)>,
{
    let mut fields = Fields::default();
    for (key, value) in pairs {
        let value = if let Ok(n) = value.parse::<u64>() {
            Loose::UInt(n)
        } else if let Ok(b) = value.parse::<bool>() {
            Loose::Bool(b)
        } else {
            Loose::Str(value)
        };
        fields.set(key, value);
    }
    extended_command(cmd, fields)
}

/// The extended command `cmd` read from `x`.
fn extended_command<'a>(cmd: &str, x: Fields<'a>) -> Result<Command<'a>, CommandError> {
    Ok(match cmd {
        "push" => push(x)?,
        "cancel" => Command::Cancel {
            id: required(x.id, "id", as_u64)?,
        },
        "scheduled" => Command::Scheduled {
            limit: limit(x.limit)?,
        },
        "join" => Command::Join {
            group: name(x.group, "group")?,
            uid: name(x.uid, "uid")?,
        },
        "leave" => Command::Leave {
            group: name(x.group, "group")?,
            uid: name(x.uid, "uid")?,
        },
        "members" => Command::Members {
            group: name(x.group, "group")?,
        },
        "online" => Command::Online {
            uid: name(x.uid, "uid")?,
        },
        "online_list" => Command::OnlineList {
            offset: optional(x.offset, "offset", as_usize)?.unwrap_or(0),
            limit: limit(x.limit)?,
        },
        "totals" => Command::Totals,
        "kick" => Command::Kick {
            uid: name(x.uid, "uid")?,
            reason: optional(x.reason, "reason", as_str)?,
        },
        "auth" => Command::Auth {
            secret: required(x.secret, "secret", as_str)?,
        },
        other => return Err(CommandError::UnknownCommand(echo(other))),
    })
}

/// The push.php reading of a line without `cmd`.
fn compat(head: Head<'_>) -> Result<Command<'_>, CommandError> {
    if head.broadcast == Loose::Bool(true) {
        return Ok(Command::CompatBroadcast);
    }
    Ok(Command::CompatPush {
        uid: name(head.uid, "uid")?,
    })
}

/// `cmd: push`: one target, a payload, and when.
fn push(x: Fields<'_>) -> Result<Command<'_>, CommandError> {
    let mut targets = Vec::with_capacity(1);
    if !x.uid.is_none() {
        targets.push(Target::Uid(name(x.uid, "uid")?));
    }
    if !x.uids.is_none() {
        targets.push(Target::Uids(uid_list(x.uids)?));
    }
    if !x.group.is_none() {
        targets.push(Target::Group(name(x.group, "group")?));
    }
    if optional(x.all, "all", as_bool)? == Some(true) {
        targets.push(Target::All);
    }
    let target = targets.pop().filter(|_| targets.is_empty());
    let target = target.ok_or(CommandError::TargetCount)?;
    let data = match x.data {
        None | Some(Data::Json(serde_json::Value::Null)) => {
            return Err(CommandError::MissingField("data"))
        }
        Some(Data::Str(s)) => s,
        // `Value`'s `Display` is its compact serialization, and cannot fail.
        Some(Data::Json(v)) => Cow::Owned(v.to_string()),
    };
    let delay = optional(x.delay, "delay", as_f64)?;
    let at = optional(x.at, "at", as_f64)?;
    let when = match (delay, at) {
        (None, None) => When::Now,
        (Some(_), Some(_)) => return Err(CommandError::BadWhen("give delay or at, not both")),
        (Some(d), None) if d < 0.0 => return Err(CommandError::BadWhen("delay must be >= 0")),
        (None, Some(t)) if t < 0.0 => return Err(CommandError::BadWhen("at must be >= 0")),
        (Some(d), None) => When::Delay(d),
        (None, Some(t)) => When::At(t),
    };
    Ok(Command::Push { target, data, when })
}

/// Whether `line` asks for the extended protocol: it has a top-level `"cmd"` key. Decided
/// lexically, so a line that [`parse`] refuses (too deep, truncated, wrong types) still gets
/// the reply of its mode: a JSON error, not push.php's `fail`.
pub fn is_extended(line: &[u8]) -> bool {
    json::has_top_level_key(line, b"cmd")
}

/// `s` cut to at most [`MAX_ECHO`] bytes on a char boundary, so a reply never echoes a
/// whole hostile line.
fn echo(s: &str) -> String {
    let mut end = s.len().min(MAX_ECHO);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The extended-mode error reply: `{"ok":false,"error":"<err>"}`, with no line ending (the
/// text port adds `\n`; an HTTP body goes as is).
pub fn error_reply(err: &dyn fmt::Display) -> String {
    serde_json::json!({ "ok": false, "error": err.to_string() }).to_string()
}

/// An extended-mode success reply: `fields` with `"ok": true` added, no line ending. Keys
/// come out sorted (serde_json's map), so replies are deterministic.
pub fn ok_reply(mut fields: serde_json::Map<String, serde_json::Value>) -> String {
    fields.insert("ok".to_owned(), serde_json::Value::Bool(true));
    serde_json::Value::Object(fields).to_string()
}

#[cfg(test)]
mod push_tests;
#[cfg(test)]
mod tests;

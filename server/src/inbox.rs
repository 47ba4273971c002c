//! The per-uid inbox in the daemon (docs/PROTOCOL.md §7): `[inbox]` settings, what a
//! connection asks for in its URL, what it gets when it binds (its position, a gap, the
//! pushes it missed), and the frame each connection gets for a live push. The logic of
//! streams, offsets and bounds is the library's [`pushman::push::inbox`].

use super::state::{unix_ms, Daemon};
use pushman::{
    codec::http::Request,
    push::inbox::{
        self,
        wire::{self, Since, SinceError, Stream},
        Epoch, GapReason, Inbox, Offset, Position, Resume, Start,
    },
    ConnId, Ctx,
};
use serde::Deserialize;

/// `[inbox]` in pushman.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// Keep pushes at all.
    pub(crate) enabled: bool,
    /// Seconds a push is kept.
    pub(crate) ttl: f64,
    /// Pushes kept per stream; the oldest goes first.
    pub(crate) max_per_uid: usize,
    /// Bytes kept over all streams; the oldest push of any stream goes first.
    pub(crate) max_memory: usize,
    /// Seconds an empty stream's position is remembered.
    pub(crate) idle_ttl: f64,
    /// Deliver queued pushes to a uid's first plain connection.
    pub(crate) offline: bool,
    /// The compat reply for a line that only got queued.
    pub(crate) offline_reply: OfflineReply,
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

impl Default for Settings {
    fn default() -> Self {
        let limits = inbox::Config::default();
        Self {
            enabled: false,
            ttl: limits.ttl_ms as f64 / 1000.0,
            max_per_uid: limits.max_per_uid,
            max_memory: limits.max_bytes,
            idle_ttl: limits.idle_ttl_ms as f64 / 1000.0,
            offline: false,
            offline_reply: OfflineReply::Fail,
        }
    }
}

impl Settings {
    /// The library's bounds.
    pub(crate) fn limits(&self) -> inbox::Config {
        inbox::Config {
            ttl_ms: (self.ttl * 1000.0) as u64,
            max_per_uid: self.max_per_uid,
            max_bytes: self.max_memory,
            idle_ttl_ms: (self.idle_ttl * 1000.0) as u64,
        }
    }

    /// Checks what TOML types cannot.
    ///
    /// # Errors
    /// The key and the reason.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let seconds = |t: f64| t.is_finite() && t > 0.0 && t < 1e9;
        if !seconds(self.ttl) || !seconds(self.idle_ttl) {
            return Err("inbox.ttl and inbox.idle_ttl are positive seconds".into());
        }
        if self.max_per_uid == 0 || self.max_memory < 1024 {
            return Err("inbox.max_per_uid must be at least 1, inbox.max_memory 1024".into());
        }
        Ok(())
    }

    /// A new, empty inbox, or `None` when it is off.
    pub(crate) fn open(&self) -> Option<Inbox> {
        self.enabled
            .then(|| Inbox::new(self.limits(), Epoch::random()))
    }
}

/// What a browser asked for in its URL, kept from the handshake until it binds.
#[derive(Debug, Default)]
pub(crate) struct Greeting {
    /// `pushman=1`: tell it when it is bound.
    pub(crate) confirm: bool,
    /// `resume=1` or `since=...`: it reads `msg` frames with offsets.
    pub(crate) resume: bool,
    /// Where it was (`since=EPOCH:O[:A]`).
    pub(crate) since: Option<Result<Since, SinceError>>,
}

impl Greeting {
    /// Reads `pushman`, `resume` and `since` from the handshake's query.
    pub(crate) fn from_request(req: &Request) -> Self {
        let since = req.query_param("since").map(|s| s.parse());
        let resume = since.is_some() || req.query_param("resume").as_deref() == Some("1");
        Self {
            confirm: resume || req.query_param("pushman").as_deref() == Some("1"),
            resume,
            since,
        }
    }

    /// Whether there is anything to remember until the bind.
    pub(crate) fn is_plain(&self) -> bool {
        !self.confirm && !self.resume
    }
}

/// `conn` just bound to `uid` (the registry knows it): sends what it asked for. A
/// resume-capable connection gets its position, gaps and missed pushes; a plain one its
/// bound frame (if asked) and, as its uid's first connection with `inbox.offline`, the
/// queued pushes.
pub(crate) fn on_bind(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, uid: &str, greeting: Greeting) {
    let offline = ctx.state.config.inbox.offline;
    let mut frames = Vec::new();
    match ctx.state.inbox.as_mut() {
        Some(inbox) if greeting.resume => {
            resume(inbox, uid, &greeting, offline, &mut frames);
            ctx.state.resumers.insert(conn);
        }
        inbox => {
            if greeting.confirm {
                frames.push(serde_json::json!({ "pushman": "bound", "uid": uid }).to_string());
            }
            let first = ctx.state.registry.conn_count(uid) == 1;
            if let Some(inbox) = inbox.filter(|_| offline && first) {
                frames.extend(inbox.take_pending(uid).map(|(_, text)| text.to_string()));
            }
        }
    }
    for frame in frames {
        if let Err(e) = ctx.io.send(conn, frame) {
            log::debug!("connection {conn}: frame at bind not sent: {e}");
            break;
        }
    }
}

/// The frames a resume-capable connection starts with: `bound`, a `gap` per stream it
/// cannot resume, then the missed pushes of its uid and the missed broadcasts.
fn resume(inbox: &mut Inbox, uid: &str, greeting: &Greeting, offline: bool, out: &mut Vec<String>) {
    let now = unix_ms();
    let epoch = inbox.epoch();
    let (uid_start, all_start, malformed) = match greeting.since {
        Some(Ok(since)) => (
            Start::After(Position {
                epoch: since.epoch,
                offset: since.uid,
            }),
            since.all.map_or(Start::Live, |offset| {
                Start::After(Position {
                    epoch: since.epoch,
                    offset,
                })
            }),
            false,
        ),
        // Told as an epoch gap: whatever the client held, it cannot be resumed.
        Some(Err(_)) => (Start::Live, Start::Live, true),
        None if offline => (Start::Pending, Start::Live, false),
        None => (Start::Live, Start::Live, false),
    };
    let mut gaps = Vec::new();
    let mut msgs = Vec::new();
    let uid_pos = replay(
        inbox.resume(uid, uid_start, now),
        Stream::Uid,
        &mut gaps,
        &mut msgs,
    );
    let all_pos = replay(
        inbox.resume_all(all_start),
        Stream::All,
        &mut gaps,
        &mut msgs,
    );
    if malformed {
        gaps.push(wire::gap_frame(Stream::Uid, GapReason::Epoch));
    }
    out.push(wire::bound_frame(uid, epoch, uid_pos, all_pos));
    out.append(&mut gaps);
    out.append(&mut msgs);
}

/// Appends a stream's gap or replayed messages; returns the position `bound` reports.
fn replay(
    resume: Resume<'_>,
    stream: Stream,
    gaps: &mut Vec<String>,
    msgs: &mut Vec<String>,
) -> Offset {
    match resume {
        Resume::Messages(replay) => {
            let after = replay.after();
            msgs.extend(replay.map(|(offset, text)| wire::msg_frame(stream, offset, text)));
            after
        }
        Resume::Gap(gap) => {
            gaps.push(wire::gap_frame(stream, gap.reason));
            gap.position
        }
    }
}

/// A live push to one uid, as each of its connections gets it: plain connections the text
/// itself, resume-capable ones a `msg` frame with the offset (built once, on first use).
#[derive(Debug)]
pub(crate) struct Live<'a> {
    text: &'a [u8],
    stream: Stream,
    offset: Option<Offset>,
    msg: Option<String>,
}

impl<'a> Live<'a> {
    /// Keeps `text` in `uid`'s stream (if the inbox is on).
    pub(crate) fn to_uid(state: &mut Daemon, uid: &str, text: &'a [u8]) -> Self {
        let offset = state
            .inbox
            .as_mut()
            .map(|inbox| inbox.append(uid, String::from_utf8_lossy(text), unix_ms()));
        Self::new(text, Stream::Uid, offset)
    }

    /// Keeps a broadcast in the broadcast stream (if the inbox is on).
    pub(crate) fn to_all(state: &mut Daemon, text: &'a [u8]) -> Self {
        let offset = state
            .inbox
            .as_mut()
            .map(|inbox| inbox.append_all(String::from_utf8_lossy(text), unix_ms()));
        Self::new(text, Stream::All, offset)
    }

    fn new(text: &'a [u8], stream: Stream, offset: Option<Offset>) -> Self {
        Self {
            text,
            stream,
            offset,
            msg: None,
        }
    }

    /// The bytes `conn` gets.
    pub(crate) fn frame(&mut self, state: &Daemon, conn: ConnId) -> &[u8] {
        match self.offset {
            Some(offset) if state.resumers.contains(&conn) => self
                .msg
                .get_or_insert_with(|| {
                    wire::msg_frame(self.stream, offset, &String::from_utf8_lossy(self.text))
                })
                .as_bytes(),
            _ => self.text,
        }
    }

    /// After the uid's connections were tried: the push leaves the offline queue if one
    /// took it. Returns whether it stays queued for the uid's next connection.
    pub(crate) fn settle(&self, state: &mut Daemon, uid: &str, taken: bool) -> bool {
        let (Some(inbox), Some(offset)) = (state.inbox.as_mut(), self.offset) else {
            return false;
        };
        if taken {
            inbox.mark_delivered(uid, offset);
            false
        } else {
            inbox.is_pending(uid, offset)
        }
    }
}

/// How often expiry runs, and how many pushes it may drop per run: a backlog of expired
/// pushes never stalls a turn.
pub(crate) const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const EXPIRE_BUDGET: usize = 2_000;

/// The expiry timer.
pub(crate) fn expire(ctx: &mut Ctx<'_, Daemon>) {
    if let Some(inbox) = ctx.state.inbox.as_mut() {
        inbox.expire(unix_ms(), EXPIRE_BUDGET);
    }
}

/// `conn` closed.
pub(crate) fn forget(state: &mut Daemon, conn: ConnId) {
    state.resumers.remove(&conn);
}

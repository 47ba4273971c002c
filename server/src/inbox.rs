//! The per-uid inbox in the daemon (docs/PROTOCOL.md §7): `[inbox]` settings, what a
//! connection asks for in its URL, what it gets when it binds (its position, a gap, the
//! pushes it missed), and the frame each connection gets for a live push. The logic of
//! streams, offsets and bounds is the library's [`pushman::push::inbox`].

use super::state::{unix_ms, Daemon, WallClock};
use pushman::{
    codec::http::Request,
    push::inbox::{
        wire::{self, Since, SinceError, Stream},
        Appended, Epoch, Inbox, Offset, Position, Resume, Start, StreamRef,
    },
    ConnId, Ctx,
};
use std::collections::HashSet;

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
    let (uid_start, all_start) = match greeting.since {
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
        ),
        // An epoch gap (§7): whatever the client held cannot be resumed. A position in an
        // epoch that is not this one makes the inbox say so, and count it.
        Some(Err(_)) => (
            Start::After(Position {
                epoch: Epoch(!epoch.0),
                offset: 0,
            }),
            Start::Live,
        ),
        None if offline => (Start::Pending, Start::Live),
        None => (Start::Live, Start::Live),
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
///
/// A push to a uid is kept in its stream as late as possible: when a resume-capable
/// connection needs the offset, else when the push is settled, after its frames were
/// queued. The stream's cache lines, asked for at once, then arrive while the frames are
/// written (`Inbox::prefetch`): under a burst to 10,000 uids the stream is always cold. Its
/// records reach the durable log the same, before the turn's frames leave.
#[derive(Debug)]
pub(crate) struct Live<'a> {
    text: &'a [u8],
    stream: Stream,
    /// Where a push to a uid is kept (the inbox is on).
    keep: Option<Keep<'a>>,
    offset: Option<Offset>,
    /// Where it was kept, for `settle`.
    appended: Option<Appended>,
    msg: Option<String>,
}

/// Where a push to a uid is to be kept, and when.
#[derive(Debug)]
struct Keep<'a> {
    inbox: &'a mut Inbox,
    /// The uid's stream as the registry remembers it; updated when kept.
    known: Option<&'a mut Option<StreamRef>>,
    uid: &'a str,
    now_ms: u64,
}

impl<'a> Live<'a> {
    /// A push of `text` to `uid`, to be kept in its stream (if the inbox is on). `known` is
    /// the uid's stream as the registry remembers it (see `Registry::for_push`).
    pub(crate) fn to_uid(
        inbox: Option<&'a mut Inbox>,
        known: Option<&'a mut Option<StreamRef>>,
        uid: &'a str,
        text: &'a [u8],
        now_ms: u64,
    ) -> Self {
        let keep = inbox.map(|inbox| {
            if let Some(Some(r)) = known.as_deref() {
                inbox.prefetch(*r);
            }
            Keep {
                inbox,
                known,
                uid,
                now_ms,
            }
        });
        let mut live = Self::new(text, Stream::Uid, None);
        live.keep = keep;
        live
    }

    /// Keeps a broadcast in the broadcast stream (if the inbox is on).
    pub(crate) fn to_all(inbox: Option<&mut Inbox>, text: &'a [u8], now_ms: u64) -> Self {
        let offset = inbox.map(|inbox| inbox.append_all(as_text(text), now_ms));
        Self::new(text, Stream::All, offset)
    }

    fn new(text: &'a [u8], stream: Stream, offset: Option<Offset>) -> Self {
        Self {
            text,
            stream,
            keep: None,
            offset,
            appended: None,
            msg: None,
        }
    }

    /// Keeps the push in its uid's stream if that is still to do; returns its offset.
    fn kept(&mut self) -> Option<Offset> {
        if let Some(keep) = self.keep.as_mut().filter(|_| self.appended.is_none()) {
            let hint = keep.known.as_deref().copied().flatten();
            let text = as_text(self.text);
            let appended = keep.inbox.append_uid_at(hint, keep.uid, &text, keep.now_ms);
            if let Some(known) = keep.known.as_deref_mut() {
                *known = Some(appended.stream());
            }
            self.appended = Some(appended);
            self.offset = Some(appended.offset);
        }
        self.offset
    }

    /// The bytes `conn` gets; `resumers` are the resume-capable connections.
    pub(crate) fn frame(&mut self, resumers: &HashSet<ConnId>, conn: ConnId) -> &[u8] {
        // No resume-capable connection at all (the common case): no lookup per frame.
        if resumers.is_empty() || !resumers.contains(&conn) {
            return self.text;
        }
        match self.kept() {
            Some(offset) => self
                .msg
                .get_or_insert_with(|| wire::msg_frame(self.stream, offset, &as_text(self.text)))
                .as_bytes(),
            None => self.text,
        }
    }

    /// After the uid's connections were tried: keeps the push (if not yet), and it leaves
    /// the offline queue if a connection took it. Returns whether it stays queued for the
    /// uid's next connection. Borrows the `Live` (moving it costs a copy per push).
    pub(crate) fn settle(&mut self, taken: bool) -> bool {
        self.kept();
        match (self.keep.as_mut(), self.appended) {
            (Some(keep), Some(appended)) => keep.inbox.settle(keep.uid, appended, taken),
            _ => false,
        }
    }
}

/// A push's text as a `str`: itself when it is UTF-8 (always, for what the text and HTTP
/// APIs accept; checked at memory speed), else with U+FFFD for each invalid sequence, as
/// before. `String::from_utf8_lossy` alone walks it chunk by chunk, ~20 instructions a byte.
fn as_text(text: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(text) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(text),
    }
}

/// How often expiry runs, and how many pushes it may drop per run: a backlog of expired
/// pushes never stalls a turn.
pub(crate) const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const EXPIRE_BUDGET: usize = 2_000;

/// The expiry timer; it also renews the daemon's [`WallClock`] reading.
pub(crate) fn expire(ctx: &mut Ctx<'_, Daemon>) {
    let clock = WallClock::read();
    ctx.state.clock = clock;
    if let Some(inbox) = ctx.state.inbox.as_mut() {
        // The reading just taken: the turn began before it, so this is its own time.
        inbox.expire(clock.ms(ctx.io.now()), EXPIRE_BUDGET);
    }
}

/// `conn` closed.
pub(crate) fn forget(state: &mut Daemon, conn: ConnId) {
    state.resumers.remove(&conn);
}

//! The per-uid inbox in the daemon (docs/PROTOCOL.md §7): `[inbox]` settings, what a
//! connection asks for in its URL, what it gets when it binds (its position, a gap, the
//! pushes it missed), and the frame each connection gets for a live push. The logic of
//! streams, offsets and bounds is the library's [`pushman::push::inbox`].

use super::state::{unix_ms, Daemon};
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
#[derive(Debug)]
pub(crate) struct Live<'a> {
    text: &'a [u8],
    stream: Stream,
    offset: Option<Offset>,
    /// Where `to_uid` kept it, for `settle`.
    appended: Option<Appended>,
    msg: Option<String>,
}

impl<'a> Live<'a> {
    /// Keeps `text` in `uid`'s stream (if the inbox is on). `known` is the uid's stream as
    /// the registry remembers it (see `Registry::for_push`); it is updated here.
    pub(crate) fn to_uid(
        inbox: Option<&mut Inbox>,
        known: Option<&mut Option<StreamRef>>,
        uid: &str,
        text: &'a [u8],
    ) -> Self {
        let appended = inbox.map(|inbox| {
            let hint = known.as_deref().copied().flatten();
            let appended = inbox.append_uid_at(hint, uid, &as_text(text), unix_ms());
            if let Some(known) = known {
                *known = Some(appended.stream());
            }
            appended
        });
        let mut live = Self::new(text, Stream::Uid, appended.map(|a| a.offset));
        live.appended = appended;
        live
    }

    /// Keeps a broadcast in the broadcast stream (if the inbox is on).
    pub(crate) fn to_all(inbox: Option<&mut Inbox>, text: &'a [u8]) -> Self {
        let offset = inbox.map(|inbox| inbox.append_all(as_text(text), unix_ms()));
        Self::new(text, Stream::All, offset)
    }

    fn new(text: &'a [u8], stream: Stream, offset: Option<Offset>) -> Self {
        Self {
            text,
            stream,
            offset,
            appended: None,
            msg: None,
        }
    }

    /// The bytes `conn` gets; `resumers` are the resume-capable connections.
    pub(crate) fn frame(&mut self, resumers: &HashSet<ConnId>, conn: ConnId) -> &[u8] {
        match self.offset {
            // No resume-capable connection at all (the common case): no lookup per frame.
            Some(offset) if !resumers.is_empty() && resumers.contains(&conn) => self
                .msg
                .get_or_insert_with(|| wire::msg_frame(self.stream, offset, &as_text(self.text)))
                .as_bytes(),
            _ => self.text,
        }
    }

    /// After the uid's connections were tried: the push leaves the offline queue if one
    /// took it. Returns whether it stays queued for the uid's next connection.
    pub(crate) fn settle(&self, inbox: Option<&mut Inbox>, uid: &str, taken: bool) -> bool {
        match (inbox, self.appended) {
            (Some(inbox), Some(appended)) => inbox.settle(uid, appended, taken),
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

//! Backend commands, shared by the text port and the HTTP API: push (now or later), groups,
//! presence, kick, with a receipt in every push reply.

use super::{
    config::OfflineReply,
    inbox::Live,
    state::{unix_ms, Daemon},
    store::schedule::{ScheduleError, ScheduledPush},
};
use pushman::{
    codec::http::Response,
    push::command::{self, Command, Mode, StoredTarget, Target, When},
    ConnId, Ctx, SendError,
};
use serde_json::{json, Value};
use std::{borrow::Cow, time::Instant};

/// What a backend gets back, on either API: the text port writes [`Reply::to_line`], the
/// HTTP API sends [`Reply::to_http`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// push.php compatibility: `ok`, or `fail` for one of two reasons.
    Compat(Compat),
    /// An extended command's success: a JSON object with `"ok": true`.
    Done(Value),
    /// An extended command's failure that reports what was done all the same, e.g.
    /// `{"ok":false,"error":"cluster unavailable","receipt":{..}}` (HTTP 400).
    Failed(Value),
    /// An extended command's failure, `{"ok":false,"error":message}`, and its HTTP status.
    Error {
        /// The HTTP status (400 unless the refusal has a more precise one).
        status: u16,
        /// What the backend is told.
        message: String,
    },
}

/// How a push.php line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compat {
    /// It reached at least one connection (`ok`).
    Delivered,
    /// Nobody it names is connected (`fail`).
    Offline,
    /// The line was not understood, or not allowed (`fail`).
    Refused,
}

impl Compat {
    /// push.php's reply: `ok` or `fail`.
    pub(crate) fn as_line(self) -> &'static str {
        match self {
            Self::Delivered => command::COMPAT_OK,
            Self::Offline | Self::Refused => command::COMPAT_FAIL,
        }
    }
}

impl Reply {
    /// A JSON object built elsewhere (cluster answers): `Done` when its `ok` is `true`,
    /// else `Failed`.
    pub(crate) fn from_json(value: Value) -> Self {
        if value.get("ok") == Some(&Value::Bool(true)) {
            Self::Done(value)
        } else {
            Self::Failed(value)
        }
    }

    /// `{"ok":false,"error":message}`, HTTP 400.
    pub(crate) fn error(message: impl std::fmt::Display) -> Self {
        Self::error_status(400, message)
    }

    /// `{"ok":false,"error":message}` with the HTTP status `status`.
    pub(crate) fn error_status(status: u16, message: impl std::fmt::Display) -> Self {
        Self::Error {
            status,
            message: message.to_string(),
        }
    }

    /// The reply for a line refused in `mode` (unauthorized, malformed): push.php's `fail`
    /// for a compatibility line, a JSON error for an extended one.
    pub(crate) fn refused(mode: Mode, message: impl std::fmt::Display) -> Self {
        match mode {
            Mode::Extended => Self::error(message),
            Mode::Compat => Self::Compat(Compat::Refused),
        }
    }

    /// The reply as one line of the text port, without its `\n`; push.php's `ok` and
    /// `fail` without an allocation (one per line of a burst).
    pub(crate) fn to_line(&self) -> Cow<'static, str> {
        match self {
            Self::Compat(compat) => Cow::Borrowed(compat.as_line()),
            Self::Done(value) | Self::Failed(value) => value.to_string().into(),
            Self::Error { message, .. } => command::error_reply(message).into(),
        }
    }

    /// The reply as an HTTP response: push.php lines get their `ok` / `fail` as text with
    /// 200, 404 when nobody it names is online, 400 when it was not understood; extended
    /// ones their JSON object with 200, or with the error's status.
    pub(crate) fn to_http(&self) -> Response {
        let (status, content_type) = match self {
            Self::Compat(Compat::Delivered) => (200, TEXT),
            Self::Compat(Compat::Offline) => (404, TEXT),
            Self::Compat(Compat::Refused) => (400, TEXT),
            Self::Done(_) => (200, JSON),
            Self::Failed(_) => (400, JSON),
            Self::Error { status, .. } => (*status, JSON),
        };
        Response::new(status)
            .header("Content-Type", content_type)
            .body((self.to_line() + "\n").into_owned())
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// Who a push reached.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// Connections that took the frame (written, or queued behind earlier frames).
    pub(crate) sent: usize,
    /// Target uids with no connection.
    pub(crate) offline: Vec<String>,
    /// Connections skipped because their send buffer was full (slow consumers).
    pub(crate) dropped: usize,
    /// Connections skipped because they were closing (kicked, timed out, going away).
    pub(crate) closing: usize,
    /// Offline uids whose push the inbox keeps for their next connection.
    pub(crate) queued: Vec<String>,
}

impl Receipt {
    fn to_json(&self) -> Value {
        json!({
            "sent": self.sent,
            "offline": self.offline,
            "dropped": self.dropped,
            "closing": self.closing,
            "queued": self.queued,
        })
    }
}

/// Runs one backend line.
pub(crate) fn execute(ctx: &mut Ctx<'_, Daemon>, line: &[u8]) -> Reply {
    match command::parse_request(line) {
        Ok(command) => run_parsed(ctx, command, line),
        Err(refused) => refuse(ctx, refused.mode, &refused.error),
    }
}

/// [`execute`] to the text port's reply line. A push.php push while the inbox is off
/// goes from [`command::parse_compat`] to [`push_unkept`] and its `ok`/`fail` without the
/// [`Reply`] the other commands need: a backend's burst is line after line of these.
pub(crate) fn execute_to_line(ctx: &mut Ctx<'_, Daemon>, line: &[u8]) -> Cow<'static, str> {
    match command::parse_compat(line) {
        Some(Command::CompatPush { uid }) if ctx.state.inbox.is_none() => {
            Cow::Borrowed(push_unkept(ctx, &uid, line).as_line())
        }
        Some(command) => run_parsed(ctx, command, line).to_line(),
        None => match command::parse_uncommon(line) {
            Ok(command) => run_parsed(ctx, command, line),
            Err(refused) => refuse(ctx, refused.mode, &refused.error),
        }
        .to_line(),
    }
}

/// Counts and answers a request that was not understood.
pub(crate) fn refuse(
    ctx: &mut Ctx<'_, Daemon>,
    mode: Mode,
    error: &command::CommandError,
) -> Reply {
    ctx.state.stats.lines_refused += 1;
    log::debug!("backend request refused: {error}");
    Reply::refused(mode, error)
}

/// Runs a parsed command; `line` is what push.php commands send on as is.
pub(crate) fn run_parsed(ctx: &mut Ctx<'_, Daemon>, command: Command<'_>, line: &[u8]) -> Reply {
    match command {
        Command::CompatPush { uid } if ctx.state.inbox.is_none() => {
            Reply::Compat(push_unkept(ctx, &uid, line))
        }
        Command::CompatPush { uid } => {
            let receipt = push_to_uids(ctx, [uid.as_ref()], line);
            count(ctx, &receipt);
            let queued_is_ok = ctx.state.config.inbox.offline_reply == OfflineReply::Ok;
            Reply::Compat(
                if receipt.sent > 0 || (queued_is_ok && !receipt.queued.is_empty()) {
                    Compat::Delivered
                } else {
                    Compat::Offline
                },
            )
        }
        Command::CompatBroadcast => {
            let receipt = push_to_all(ctx, line);
            count(ctx, &receipt);
            // push.php's broadcast has no receiver to fail on.
            Reply::Compat(Compat::Delivered)
        }
        command => run(ctx, command),
    }
}

fn run(ctx: &mut Ctx<'_, Daemon>, command: Command<'_>) -> Reply {
    match command {
        Command::Push { target, data, when } => push(ctx, &target, data.as_bytes(), when),
        Command::Cancel { id } => match ctx.state.schedule.cancel(id) {
            Ok(found) => Reply::Done(json!({ "ok": true, "cancelled": found })),
            Err(e) => Reply::error(e),
        },
        Command::Scheduled { limit } => match ctx.state.schedule.list(limit) {
            Ok(list) => Reply::Done(json!({
                "ok": true,
                "pending": ctx.state.schedule.len(),
                "scheduled": list.into_iter().map(|(id, at, p)| json!({
                    "id": id, "at_ms": at, "target": target_json(&p.target), "data": p.data,
                })).collect::<Vec<_>>(),
            })),
            Err(e) => Reply::error(e),
        },
        Command::Join { group, uid } => {
            let added = ctx.state.registry.join(&group, &uid);
            Reply::Done(json!({ "ok": true, "added": added }))
        }
        Command::Leave { group, uid } => {
            let removed = ctx.state.registry.leave(&group, &uid);
            Reply::Done(json!({ "ok": true, "removed": removed }))
        }
        Command::Members { group } => {
            let members = ctx.state.registry.members(&group);
            Reply::Done(json!({ "ok": true, "group": group, "members": members }))
        }
        Command::Online { uid } => {
            let n = ctx.state.registry.conn_count(&uid);
            Reply::Done(json!({ "ok": true, "uid": uid, "online": n > 0, "connections": n }))
        }
        Command::OnlineList { offset, limit } => {
            let registry = &ctx.state.registry;
            Reply::Done(json!({
                "ok": true,
                "total": registry.uid_total(),
                "offset": offset,
                "uids": registry.online_uids(offset, limit),
            }))
        }
        Command::Totals => Reply::Done(json!({
            "ok": true,
            "uids": ctx.state.registry.uid_total(),
            "connections": ctx.state.registry.conn_total(),
            "groups": ctx.state.registry.groups_total(),
            "scheduled": ctx.state.schedule.len(),
        })),
        Command::Kick { uid, reason } => {
            let reason = reason.as_deref().unwrap_or("kicked");
            let conns: Vec<ConnId> = ctx.state.registry.conns(&uid).collect();
            for &conn in &conns {
                ctx.io.close_with(conn, 4000, reason);
            }
            Reply::Done(json!({ "ok": true, "closed": conns.len() }))
        }
        // Answered by the text port itself, before commands run.
        Command::Auth { .. } => Reply::Done(json!({ "ok": true })),
        Command::CompatPush { .. } | Command::CompatBroadcast => Reply::Compat(Compat::Refused),
    }
}

fn push(ctx: &mut Ctx<'_, Daemon>, target: &Target<'_>, data: &[u8], when: When) -> Reply {
    let now = unix_ms();
    let at = match when.at_ms(now) {
        Ok(at) => at,
        Err(e) => {
            ctx.state.stats.lines_refused += 1;
            return Reply::error(e);
        }
    };
    // Not after now (`delay: 0`, a past `at`): an immediate push, answered with a receipt.
    if let Some(at) = at.filter(|&at| at > now) {
        let stored = ScheduledPush {
            target: target.to_stored(),
            data: String::from_utf8_lossy(data).into_owned(),
        };
        return match ctx.state.schedule.add(at, &stored) {
            Ok(id) => Reply::Done(json!({ "ok": true, "id": id, "at_ms": at })),
            // A store fault is logged by the store, once per outage.
            Err(e) => Reply::error(e),
        };
    }
    let receipt = deliver(ctx, &target.to_stored(), data);
    count(ctx, &receipt);
    Reply::Done(json!({ "ok": true, "receipt": receipt.to_json() }))
}

/// Pushes `data` to `target` now.
pub(crate) fn deliver(ctx: &mut Ctx<'_, Daemon>, target: &StoredTarget, data: &[u8]) -> Receipt {
    match target {
        StoredTarget::Uid(uid) => push_to_uids(ctx, [uid.as_str()], data),
        StoredTarget::Uids(uids) => push_to_uids(ctx, uids.iter().map(String::as_str), data),
        StoredTarget::Group(group) => {
            let members: Vec<String> = ctx
                .state
                .registry
                .members(group)
                .into_iter()
                .map(str::to_string)
                .collect();
            push_to_uids(ctx, members.iter().map(String::as_str), data)
        }
        StoredTarget::All => push_to_all(ctx, data),
    }
}

pub(crate) fn push_to_uids<'u>(
    ctx: &mut Ctx<'_, Daemon>,
    uids: impl IntoIterator<Item = &'u str>,
    data: &[u8],
) -> Receipt {
    let mut receipt = Receipt::default();
    let state = &mut *ctx.state;
    // Only the inbox dates what it keeps: no clock arithmetic per push without it.
    let now_ms = match state.inbox {
        Some(_) => state.clock.ms(ctx.io.now()),
        None => 0,
    };
    for uid in uids {
        // One lookup of the uid serves the registry and the inbox.
        let (conns, known) = match state.registry.for_push(uid) {
            Some(target) => (target.conns, Some(target.stream)),
            None => (&[][..], None),
        };
        let mut live = Live::to_uid(state.inbox.as_mut(), known, uid, data, now_ms);
        let (mut open, mut taken) = (false, false);
        for &conn in conns {
            let result = ctx.io.send(conn, live.frame(&state.resumers, conn));
            open |= !matches!(result, Err(SendError::Closing | SendError::NotFound));
            taken |= result.is_ok();
            tally(&mut receipt, result);
        }
        if live.settle(taken) {
            receipt.queued.push(uid.to_string());
        }
        if !open {
            // No connection, or only closing ones: nobody will read it now.
            receipt.offline.push(uid.to_string());
        }
    }
    receipt
}

/// A push.php push to `uid` while the inbox is off: [`push_to_uids`] for one uid without
/// what only the inbox needs (the receipt's uid lists, the `Live` frame per connection).
/// A backend's burst runs through here line after line; it is counted as any push.
fn push_unkept(ctx: &mut Ctx<'_, Daemon>, uid: &str, line: &[u8]) -> Compat {
    let mut receipt = Receipt::default();
    for conn in ctx.state.registry.conns(uid) {
        tally(&mut receipt, ctx.io.send(conn, line));
    }
    count(ctx, &receipt);
    if receipt.sent > 0 {
        Compat::Delivered
    } else {
        Compat::Offline
    }
}

pub(crate) fn push_to_all(ctx: &mut Ctx<'_, Daemon>, data: &[u8]) -> Receipt {
    let mut receipt = Receipt::default();
    let state = &mut *ctx.state;
    let now_ms = state.clock.ms(ctx.io.now());
    let mut live = Live::to_all(state.inbox.as_mut(), data, now_ms);
    for conn in state.registry.all_conns() {
        tally(
            &mut receipt,
            ctx.io.send(conn, live.frame(&state.resumers, conn)),
        );
    }
    receipt
}

pub(crate) fn tally(receipt: &mut Receipt, result: Result<(), SendError>) {
    match result {
        Ok(()) => receipt.sent += 1,
        Err(SendError::BufferFull) => receipt.dropped += 1,
        Err(SendError::Closing | SendError::NotFound) => receipt.closing += 1,
        Err(SendError::TooLarge) => receipt.dropped += 1,
    }
}

pub(crate) fn count(ctx: &mut Ctx<'_, Daemon>, receipt: &Receipt) {
    let stats = &mut ctx.state.stats;
    if receipt.sent > 0 {
        stats.pushes_ok += 1;
    } else {
        stats.pushes_fail += 1;
    }
    stats.frames_sent += receipt.sent as u64;
    stats.dropped += receipt.dropped as u64;
}

fn target_json(target: &StoredTarget) -> Value {
    match target {
        StoredTarget::Uid(uid) => json!({ "uid": uid }),
        StoredTarget::Uids(uids) => json!({ "uids": uids }),
        StoredTarget::Group(group) => json!({ "group": group }),
        StoredTarget::All => json!({ "all": true }),
    }
}

/// How long pushes that fell due while the server was down wait after a start, so browsers
/// have reconnected when they are delivered.
pub(crate) const RECONNECT_GRACE_MS: u64 = 3000;

/// Delivers scheduled pushes that are due; removes them only after delivery
/// (at-least-once: a crash in between delivers them again after restart). Nothing is
/// delivered while stopping: those pushes wait in the store for the next start.
///
/// Also the store's clock: a store that is down after a fault is reopened from here, with
/// backoff (see `push::store`). Nothing is read while it is down; pushes that fall due then
/// go out late, after the reopen.
pub(crate) fn deliver_due(ctx: &mut Ctx<'_, Daemon>) {
    ctx.state.schedule.tick(Instant::now());
    let now = unix_ms();
    let Some(next) = ctx.state.schedule.next_at() else {
        return;
    };
    let in_grace = now < ctx.state.started_ms + RECONNECT_GRACE_MS && next < ctx.state.started_ms;
    if next > now || in_grace || ctx.io.stopping() {
        return;
    }
    let due = match ctx.state.schedule.due(now, 1000) {
        Ok(due) => due,
        Err(ScheduleError::Corrupt { id }) => {
            // One unreadable entry must not block every later one (nor log each tick): it
            // is dropped, once, with its id.
            log::error!("scheduled push {id} is unreadable (not valid JSON); dropped");
            ctx.state.stats.scheduled_unreadable += 1;
            ctx.state.schedule.delivered(&[id]);
            return;
        }
        Err(e) => {
            if !e.is_store_fault() {
                log::error!("cannot read scheduled pushes: {e}");
            }
            return;
        }
    };
    let mut ids = Vec::with_capacity(due.len());
    for (id, push) in due {
        let receipt = deliver(ctx, &push.target, push.data.as_bytes());
        log::debug!(
            "scheduled push {id} delivered to {} connections",
            receipt.sent
        );
        count(ctx, &receipt);
        ctx.state.stats.scheduled_delivered += 1;
        ids.push(id);
    }
    // A failed removal is retried by the store, and never makes these due again.
    ctx.state.schedule.delivered(&ids);
}

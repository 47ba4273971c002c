//! The inbox in Redis (cluster mode): a tab resumes on whichever node it comes back to.
//!
//! The streams live in Redis (`inbox_scripts.rs`). A push is one script that appends it to
//! each target uid's stream and publishes it, with its offset, to every live node holding
//! the uid, *this one included*: every node delivers from its subscription link, so frames
//! reach each connection in the order Redis ran the scripts, with the same offsets on
//! every node, and no reordering buffer is needed.
//!
//! A connection that needs the past (resume-capable, or a plain one that may get the
//! offline queue) is *held* while its bind script reads it from Redis (the same script
//! writes the uid's route first, so every later push is published here): live pushes that
//! come meanwhile wait in [`RedisInbox::held`], and after the read's frames only those past
//! the read's end are sent (deduplicated by offset). A read that fails closes a
//! resume-capable connection with 1013 (try again later: its client keeps its position and
//! reconnects), and lets a plain one go live (its queue stays in Redis).

use super::{api::array, engine, eval, scripts::Script, Unavailable};
use crate::{api::Receipt, inbox::Greeting, state::Daemon};
use pushman::{
    codec::resp::Value,
    push::inbox::{
        wire::{self, Stream},
        Epoch, GapReason, Offset,
    },
    ConnId, Ctx, SendError,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most live frames held for one connection while its read is in flight (the reply timeout
/// bounds the time; this the memory). Past it the connection is closed with 1013.
const MAX_HELD: usize = 4096;
/// RFC 6455 §7.4.1 (IANA registry): 1013 Try Again Later.
const TRY_AGAIN: u16 = 1013;
/// 1012 Service Restart: the inbox's epoch changed under a connection (Redis lost it).
const RESTART: u16 = 1012;

/// A live push that came while its connection was held.
#[derive(Debug)]
struct Held {
    stream: Stream,
    offset: Offset,
    epoch: Epoch,
    text: String,
}

/// Counters and bounds for `status` and `/metrics` (this node's view; Redis itself is not
/// scanned).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RedisInboxStatus {
    /// The epoch last read from Redis (empty before the first read).
    pub(crate) epoch: String,
    /// `inbox.max_per_uid`: each stream's list is trimmed to it.
    pub(crate) max_per_uid: usize,
    /// `inbox.ttl`, seconds: a stream's list expires this long after its last push.
    pub(crate) ttl_s: f64,
    /// `inbox.idle_ttl`, seconds: a stream's position expires this long after its last push.
    pub(crate) idle_ttl_s: f64,
    /// Pushes appended to uid streams by this node's scripts.
    pub(crate) appended: u64,
    /// Appended for uids no live node held: queued.
    pub(crate) queued: u64,
    /// Broadcasts appended by this node.
    pub(crate) broadcasts: u64,
    /// Appends that pushed the oldest push of a full stream out (`max_per_uid`).
    pub(crate) evicted_uid_cap: u64,
    /// Pushes sent again to resuming connections.
    pub(crate) replayed: u64,
    /// Queued pushes delivered to a uid's first connection.
    pub(crate) queued_delivered: u64,
    /// Positions that could not be resumed (the client got a `gap` frame).
    pub(crate) gaps: u64,
    /// Binds whose read failed (Redis unavailable): resume-capable ones closed with 1013.
    pub(crate) unavailable: u64,
    /// Connections closed because the epoch changed under them.
    pub(crate) epoch_closes: u64,
    /// Redis's `used_memory` (everything in it, not only the inbox), sampled each lease
    /// renewal: the inbox's bound in Redis is `max_per_uid` per stream and the ttls, not a
    /// byte cap (docs/CLUSTER.md).
    pub(crate) redis_used_memory: Option<u64>,
    /// Redis's `maxmemory` (0: none), sampled with it.
    pub(crate) redis_maxmemory: Option<u64>,
    /// Keys in Redis's database (`DBSIZE`: routes, leases and two per inbox stream).
    pub(crate) redis_keys: Option<u64>,
    /// Connections held for their read now.
    pub(crate) held: usize,
    /// Resume-capable connections now.
    pub(crate) resumers: usize,
}

/// The node's side of the inbox in Redis.
#[derive(Debug)]
pub(crate) struct RedisInbox {
    /// `"max_per_uid ttl_ms idle_ttl_ms epoch"`: the scripts' bounds, and the epoch this
    /// node proposes should Redis have none.
    pub(crate) spec: String,
    /// `inbox.offline`.
    offline: bool,
    /// Connections whose read is in flight, with the live frames that came meanwhile.
    held: HashMap<ConnId, Vec<Held>>,
    /// Resume-capable connections and the epoch of their `bound` frame.
    resumers: HashMap<ConnId, Epoch>,
    pub(crate) status: RedisInboxStatus,
}

impl RedisInbox {
    /// For `[inbox]`; proposes a random epoch.
    pub(crate) fn new(settings: &crate::config::InboxSettings) -> Self {
        let mut inbox = Self {
            spec: String::new(),
            offline: false,
            held: HashMap::new(),
            resumers: HashMap::new(),
            status: RedisInboxStatus::default(),
        };
        inbox.set_limits(settings);
        inbox
    }

    /// The bounds of `[inbox]` (a reload): the next scripts use them. A smaller
    /// `max_per_uid` trims each stream at its next push.
    pub(crate) fn set_limits(&mut self, settings: &crate::config::InboxSettings) {
        self.spec = format!(
            "{} {} {} {}",
            settings.max_per_uid,
            settings.ttl.as_millis(),
            settings.idle_ttl.as_millis(),
            Epoch::random()
        );
        self.offline = settings.offline;
        self.status.max_per_uid = settings.max_per_uid;
        self.status.ttl_s = settings.ttl.as_secs_f64();
        self.status.idle_ttl_s = settings.idle_ttl.as_secs_f64();
    }

    /// A new epoch to propose: at every (re)connect, so a Redis that comes back empty
    /// starts an epoch no client holds.
    pub(crate) fn renew_epoch_proposal(&mut self) {
        if let Some(at) = self.spec.rfind(' ') {
            self.spec.truncate(at + 1);
            self.spec.push_str(&Epoch::random().to_string());
        }
    }

    /// The figures now.
    pub(crate) fn report(&self) -> RedisInboxStatus {
        RedisInboxStatus {
            held: self.held.len(),
            resumers: self.resumers.len(),
            ..self.status.clone()
        }
    }
}

/// The Redis inbox, if this node runs one.
pub(crate) fn get<'a>(ctx: &'a mut Ctx<'_, Daemon>) -> Option<&'a mut RedisInbox> {
    ctx.state.cluster.as_mut().and_then(|c| c.inbox.as_mut())
}

/// `conn` just bound to `uid` (`first_here`: its uid's first tab on this node). `Err` hands
/// the greeting back when the Redis inbox has nothing to read for it (inbox off; a plain
/// connection that gets no queue): the caller binds it as without the inbox. Otherwise the
/// bind script writes the route (if `first_here`) and reads; the connection is held.
pub(crate) fn on_bind(
    ctx: &mut Ctx<'_, Daemon>,
    conn: ConnId,
    uid: &str,
    first_here: bool,
    greeting: Greeting,
) -> Result<(), Greeting> {
    let Some(inbox) = get(ctx) else {
        return Err(greeting);
    };
    let none = String::new();
    let (mode, since, all_mode, all_since, epoch) = match (&greeting.since, greeting.resume) {
        (Some(Ok(s)), true) => (
            "after",
            s.uid,
            if s.all.is_some() { "after" } else { "live" },
            s.all.unwrap_or(0),
            s.epoch.to_string(),
        ),
        // A malformed position is an epoch gap (§7): no epoch matches an empty one.
        (Some(Err(_)), true) => ("after", 0, "live", 0, none),
        (None, true) if inbox.offline => ("pending", 0, "live", 0, none),
        (_, true) => ("live", 0, "live", 0, none),
        (_, false) if inbox.offline && first_here => ("first", 0, "live", 0, none),
        (_, false) => return Err(greeting),
    };
    inbox.held.insert(conn, Vec::new());
    let spec = inbox.spec.clone();
    if !greeting.resume && greeting.confirm {
        let bound = serde_json::json!({ "pushman": "bound", "uid": uid }).to_string();
        let _ = ctx.io.send(conn, bound);
    }
    let node = engine::node(ctx);
    let (resume, owned) = (greeting.resume, uid.to_string());
    let then: super::Then = Box::new(move |ctx, reply| {
        on_read(ctx, conn, &owned, resume, first_here, reply);
    });
    let (since, all_since) = (since.to_string(), all_since.to_string());
    let route = if first_here { "1" } else { "0" };
    let args = [
        node.as_str(),
        uid,
        &spec,
        route,
        mode,
        &since,
        all_mode,
        &all_since,
        &epoch,
    ];
    match eval(ctx, Script::Bind, &args, Some(then)) {
        Ok(()) if first_here => engine::count_route_write(ctx),
        Ok(()) => {}
        // Not sent (link down, or too many commands waiting): the plain route write is
        // tried too (the link's coming back up rewrites every route anyway).
        Err(e) => on_read(ctx, conn, uid, resume, first_here, Err(e)),
    }
    Ok(())
}

/// One stream as the bind script read it.
#[derive(Debug)]
struct Read {
    last: Offset,
    gap: Option<GapReason>,
    messages: Vec<(Offset, String)>,
}

impl Read {
    fn parse(v: Option<&Value>) -> Option<Self> {
        let items = array(v?);
        let int = |v: &Value| v.as_int().and_then(|n| u64::try_from(n).ok());
        let gap = match items.get(1)?.as_bytes()? {
            b"" => None,
            b"epoch" => Some(GapReason::Epoch),
            b"ahead" => Some(GapReason::Ahead),
            _ => Some(GapReason::Evicted),
        };
        let messages = items[2..]
            .chunks(2)
            .filter_map(|pair| {
                let text = String::from_utf8_lossy(pair.get(1)?.as_bytes()?).into_owned();
                Some((int(&pair[0])?, text))
            })
            .collect();
        Some(Self {
            last: int(items.first()?)?,
            gap,
            messages,
        })
    }
}

/// The bind script answered (or could not be asked): sends the connection what it missed,
/// then what was held for it.
fn on_read(
    ctx: &mut Ctx<'_, Daemon>,
    conn: ConnId,
    uid: &str,
    resume: bool,
    first_here: bool,
    reply: Result<Value, Unavailable>,
) {
    let Some(held) = get(ctx).and_then(|i| i.held.remove(&conn)) else {
        return; // Closed meanwhile.
    };
    let read = match &reply {
        Ok(Value::Error(e)) => {
            log::error!("cluster inbox: bind script refused: {e}");
            if first_here {
                engine::on_first_tab(ctx, uid);
            }
            None
        }
        Ok(v) => {
            let items = array(v);
            let epoch = items
                .first()
                .and_then(Value::as_bytes)
                .and_then(|e| std::str::from_utf8(e).ok()?.parse::<Epoch>().ok());
            epoch
                .zip(Read::parse(items.get(1)))
                .zip(Read::parse(items.get(2)))
        }
        Err(_) => {
            if first_here {
                engine::on_first_tab(ctx, uid);
            }
            None
        }
    };
    let Some(((epoch, own), all)) = read else {
        if let Some(inbox) = get(ctx) {
            inbox.status.unavailable += 1;
        }
        if resume {
            ctx.io.close_with(conn, TRY_AGAIN, "cluster unavailable");
        } else {
            for h in held {
                let _ = ctx.io.send(conn, h.text);
            }
        }
        return;
    };
    let frames = if resume {
        resumed(ctx, conn, uid, epoch, &own, &all)
    } else {
        own.messages.iter().map(|(_, t)| t.clone()).collect()
    };
    if let Some(inbox) = get(ctx) {
        inbox.status.epoch = epoch.to_string();
        if !resume {
            inbox.status.queued_delivered += own.messages.len() as u64;
        }
    }
    for frame in frames {
        if ctx.io.send(conn, frame).is_err() {
            return;
        }
    }
    for h in held {
        let end = match h.stream {
            Stream::Uid => own.last,
            Stream::All => all.last,
        };
        if h.offset <= end && (resume || h.stream == Stream::Uid) {
            continue; // In the read already.
        }
        let mut cache = None;
        if send_live(ctx, conn, h.stream, h.offset, h.epoch, &h.text, &mut cache).is_err() {
            return;
        }
    }
}

/// A resume-capable connection's first frames: `bound`, gaps, the missed pushes of its
/// uid, the missed broadcasts. It reads `msg` frames from now on.
fn resumed(
    ctx: &mut Ctx<'_, Daemon>,
    conn: ConnId,
    uid: &str,
    epoch: Epoch,
    own: &Read,
    all: &Read,
) -> Vec<String> {
    let mut frames = vec![wire::bound_frame(uid, epoch, start(own), start(all))];
    let mut msgs = Vec::new();
    let mut gaps = 0;
    for (stream, read) in [(Stream::Uid, own), (Stream::All, all)] {
        match read.gap {
            Some(reason) => {
                gaps += 1;
                frames.push(wire::gap_frame(stream, reason));
            }
            None => msgs.extend(
                read.messages
                    .iter()
                    .map(|(o, t)| wire::msg_frame(stream, *o, t)),
            ),
        }
    }
    if let Some(inbox) = get(ctx) {
        inbox.resumers.insert(conn, epoch);
        inbox.status.gaps += gaps;
        inbox.status.replayed += msgs.len() as u64;
    }
    frames.append(&mut msgs);
    frames
}

/// Where a resuming client stands in a stream before its replay (as `bound` says it): just
/// before the first replayed push, or at the stream's end.
fn start(read: &Read) -> Offset {
    match (read.gap, read.messages.first()) {
        (None, Some(first)) => first.0 - 1,
        _ => read.last,
    }
}

/// A live push (offset `offset` of `stream`, epoch `epoch`) for `conn`: held while its read
/// is in flight, a `msg` frame for a resume-capable connection (built once per push in
/// `cache`), the text itself for a plain one.
fn send_live(
    ctx: &mut Ctx<'_, Daemon>,
    conn: ConnId,
    stream: Stream,
    offset: Offset,
    epoch: Epoch,
    text: &str,
    cache: &mut Option<String>,
) -> Result<(), SendError> {
    let Some(inbox) = ctx.state.cluster.as_mut().and_then(|c| c.inbox.as_mut()) else {
        return ctx.io.send(conn, text);
    };
    if let Some(held) = inbox.held.get_mut(&conn) {
        if held.len() >= MAX_HELD {
            inbox.held.remove(&conn);
            ctx.io
                .close_with(conn, TRY_AGAIN, "too many pushes while resuming");
            return Err(SendError::Closing);
        }
        held.push(Held {
            stream,
            offset,
            epoch,
            text: text.to_string(),
        });
        return Ok(());
    }
    match inbox.resumers.get(&conn) {
        Some(&e) if e != epoch => {
            inbox.resumers.remove(&conn);
            inbox.status.epoch_closes += 1;
            ctx.io.close_with(conn, RESTART, "inbox epoch changed");
            Err(SendError::Closing)
        }
        Some(_) => {
            let msg = cache.get_or_insert_with(|| wire::msg_frame(stream, offset, text));
            ctx.io.send(conn, msg.as_bytes())
        }
        None => ctx.io.send(conn, text),
    }
}

/// A push published by a script with the inbox on: `{"k":"uids","u":[uids],"n":[offsets],
/// "e":epoch,"d":text,...}` delivered to this node's connections of each uid.
pub(crate) fn on_push(ctx: &mut Ctx<'_, Daemon>, envelope: &serde_json::Value) -> Receipt {
    let mut receipt = Receipt::default();
    let Some(epoch) = epoch_of(envelope) else {
        return receipt;
    };
    let text = envelope["d"].as_str().unwrap_or_default();
    let (uids, offsets) = (envelope["u"].as_array(), envelope["n"].as_array());
    for (uid, offset) in uids
        .into_iter()
        .flatten()
        .zip(offsets.into_iter().flatten())
    {
        let (Some(uid), Some(offset)) =
            (uid.as_str(), offset.as_str().and_then(|o| o.parse().ok()))
        else {
            continue;
        };
        let conns: Vec<ConnId> = ctx.state.registry.conns(uid).collect();
        let mut cache = None;
        for conn in conns {
            let sent = send_live(ctx, conn, Stream::Uid, offset, epoch, text, &mut cache);
            crate::api::tally(&mut receipt, sent);
        }
    }
    receipt
}

/// A broadcast published with the inbox on (`"a"`: its offset in the broadcast stream).
pub(crate) fn on_broadcast(ctx: &mut Ctx<'_, Daemon>, envelope: &serde_json::Value) -> Receipt {
    let mut receipt = Receipt::default();
    let offset = envelope["a"].as_str().and_then(|a| a.parse().ok());
    let (Some(epoch), Some(offset)) = (epoch_of(envelope), offset) else {
        return receipt;
    };
    let text = envelope["d"].as_str().unwrap_or_default();
    let conns: Vec<ConnId> = ctx.state.registry.all_conns().collect();
    let mut cache = None;
    for conn in conns {
        let sent = send_live(ctx, conn, Stream::All, offset, epoch, text, &mut cache);
        crate::api::tally(&mut receipt, sent);
    }
    receipt
}

fn epoch_of(envelope: &serde_json::Value) -> Option<Epoch> {
    envelope["e"].as_str().and_then(|e| e.parse().ok())
}

/// Samples Redis's memory and key count (two O(1) commands, each lease renewal).
pub(crate) fn sample_redis(ctx: &mut Ctx<'_, Daemon>) {
    use pushman::codec::resp::CommandBuf;
    if get(ctx).is_none() {
        return;
    }
    let info: super::Then = Box::new(|ctx, reply| {
        let Ok(v) = reply else { return };
        let text = v
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
        };
        let (used, max) = (field("used_memory"), field("maxmemory"));
        if let Some(inbox) = get(ctx) {
            inbox.status.redis_used_memory = used;
            inbox.status.redis_maxmemory = max;
        }
    });
    let _ = super::call(ctx, &CommandBuf::new("INFO").arg("memory"), Some(info));
    let keys: super::Then = Box::new(|ctx, reply| {
        let n = reply.ok().and_then(|v| v.as_int()).map(|n| n.max(0) as u64);
        if let Some(inbox) = get(ctx) {
            inbox.status.redis_keys = n;
        }
    });
    let _ = super::call(ctx, &CommandBuf::new("DBSIZE"), Some(keys));
}

/// `conn` closed.
pub(crate) fn forget(state: &mut Daemon, conn: ConnId) {
    if let Some(inbox) = state.cluster.as_mut().and_then(|c| c.inbox.as_mut()) {
        inbox.held.remove(&conn);
        inbox.resumers.remove(&conn);
    }
}

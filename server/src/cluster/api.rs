//! Backend commands in cluster mode: the same wire format as embedded mode
//! (`crate::api`), answered from Redis. Pushes are delivered to this node's connections
//! first, so they work while Redis is away; what needs Redis answers when its reply comes
//! (through a [`Ticket`], in the backend's order), or at once with `fail` /
//! `cluster unavailable` when it cannot be asked.

use super::{acks, call, engine, eval, inbox_push, scripts::Script, Then, Unavailable};
use crate::{
    api::{self, Compat, Receipt, Reply},
    replies::Ticket,
    state::{unix_ms, Daemon},
};
use pushman::{
    codec::resp::{CommandBuf, Value},
    push::command::{self, Command, StoredTarget, Target, When},
    Ctx,
};
use serde_json::{json, Value as Json};

/// Runs one backend line in cluster mode: `Some(reply)` now, or `None` when `ticket` will
/// be answered later.
pub(crate) fn execute(ctx: &mut Ctx<'_, Daemon>, line: &[u8], ticket: Ticket) -> Option<Reply> {
    match command::parse_request(line) {
        Ok(command) => run_parsed(ctx, command, line, ticket),
        Err(refused) => Some(api::refuse(ctx, refused.mode, &refused.error)),
    }
}

/// Runs a parsed command (`line` is its text, what compat pushes send) in cluster mode.
pub(crate) fn run_parsed(
    ctx: &mut Ctx<'_, Daemon>,
    command: Command<'_>,
    line: &[u8],
    ticket: Ticket,
) -> Option<Reply> {
    match command {
        Command::CompatPush { uid } if inbox_on(ctx) => {
            inbox_push::compat_push(ctx, &uid, line, ticket)
        }
        Command::CompatPush { uid } => compat_push(ctx, &uid, line, ticket),
        Command::CompatBroadcast if inbox_on(ctx) => {
            inbox_push::broadcast(ctx, &String::from_utf8_lossy(line), None)
        }
        Command::CompatBroadcast => {
            broadcast(ctx, line);
            Some(Reply::Compat(Compat::Delivered))
        }
        Command::Push { target, data, when } => push(ctx, &target, &data, when, ticket),
        Command::Cancel { id } => ask(
            ctx,
            Script::Cancel,
            &[&id.to_string()],
            ticket,
            |v| json!({ "ok": true, "cancelled": v.as_int() == Some(1) }),
        ),
        Command::Scheduled { limit } => ask(
            ctx,
            Script::ListScheduled,
            &[&limit.to_string()],
            ticket,
            scheduled_json,
        ),
        Command::Join { group, uid } => ask(
            ctx,
            Script::Join,
            &[&group, &uid],
            ticket,
            |v| json!({ "ok": true, "added": v.as_int() == Some(1) }),
        ),
        Command::Leave { group, uid } => ask(
            ctx,
            Script::Leave,
            &[&group, &uid],
            ticket,
            |v| json!({ "ok": true, "removed": v.as_int() == Some(1) }),
        ),
        Command::Members { group } => {
            let key = ctx
                .state
                .cluster
                .as_ref()
                .map(|c| c.key(&format!("group:{group}")));
            let cmd = CommandBuf::new("SMEMBERS").arg(key.unwrap_or_default());
            let group = group.to_string();
            reply_later(ctx, &cmd, ticket, move |v| {
                let mut members = strings(&v);
                members.sort_unstable();
                json!({ "ok": true, "group": group, "members": members })
            })
        }
        Command::Online { uid } => {
            let local = ctx.state.registry.conn_count(&uid);
            let counted = Receipt {
                sent: local,
                ..Receipt::default()
            };
            let kind = acks::Kind::Online(uid.to_string());
            routed(
                ctx,
                "count",
                "",
                &uid,
                ticket,
                counted,
                kind,
                Reply::error(Unavailable),
            )
        }
        Command::OnlineList { offset, limit } => ask(
            ctx,
            Script::OnlineList,
            &[&offset.to_string(), &limit.to_string()],
            ticket,
            move |v| {
                let items = array(&v);
                json!({ "ok": true, "total": items.first().and_then(Value::as_int).unwrap_or(0),
                        "offset": offset, "uids": items.get(1).map(strings).unwrap_or_default() })
            },
        ),
        Command::Totals => ask(ctx, Script::Totals, &[], ticket, |v| {
            let n: Vec<i64> = array(&v).iter().map(|x| x.as_int().unwrap_or(0)).collect();
            let at = |i: usize| n.get(i).copied().unwrap_or(0);
            json!({ "ok": true, "uids": at(0), "connections": at(1), "groups": at(2),
                    "scheduled": at(3), "nodes": at(4) })
        }),
        Command::Kick { uid, reason } => {
            let reason = reason.as_deref().unwrap_or("kicked").to_string();
            let closed = engine::kick_local(ctx, &uid, &reason);
            let counted = Receipt {
                sent: closed,
                ..Receipt::default()
            };
            let down = Reply::from_json(
                json!({ "ok": false, "error": Unavailable.to_string(), "closed": closed }),
            );
            routed(
                ctx,
                "kick",
                &reason,
                &uid,
                ticket,
                counted,
                acks::Kind::Kick,
                down,
            )
        }
        Command::Auth { .. } => Some(Reply::from_json(json!({ "ok": true }))),
    }
}

/// Whether pushes go through the inbox in Redis.
fn inbox_on(ctx: &mut Ctx<'_, Daemon>) -> bool {
    super::inbox::get(ctx).is_some()
}

/// Publishes `kind` with `data` to the other live nodes holding `uid`, which answer with
/// their counts (closed tabs, tabs); `ticket` gets the sum with this node's `counted` as
/// `kind` formats it, or `down` when Redis cannot be asked.
#[allow(clippy::too_many_arguments)]
fn routed(
    ctx: &mut Ctx<'_, Daemon>,
    kind: &str,
    data: &str,
    uid: &str,
    ticket: Ticket,
    counted: Receipt,
    what: acks::Kind,
    down: Reply,
) -> Option<Reply> {
    let node = engine::node(ctx);
    let req = acks::expect_kind(ctx, ticket, counted, what);
    let req_arg = req.to_string();
    let unavailable = down.clone();
    let then: Then = Box::new(move |ctx, reply| match reply {
        Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
        Ok(v) => acks::routed(ctx, req, None, &array(&v)),
        Err(_) => acks::fail(ctx, req, unavailable),
    });
    match eval(
        ctx,
        Script::Push,
        &[&node, kind, data, &req_arg, uid],
        Some(then),
    ) {
        Ok(()) => None,
        Err(_) => {
            acks::forget(ctx, req);
            Some(down)
        }
    }
}

/// push.php's line: the whole line to every tab of `uid` on every node; `ok` iff a
/// connection anywhere is bound to it. Answered at once when a tab here took it.
fn compat_push(ctx: &mut Ctx<'_, Daemon>, uid: &str, line: &[u8], ticket: Ticket) -> Option<Reply> {
    let receipt = api::push_to_uids(ctx, [uid], line);
    api::count(ctx, &receipt);
    let node = engine::node(ctx);
    let data = String::from_utf8_lossy(line).into_owned();
    let here = receipt.sent > 0;
    let then: Option<Then> = (!here).then(|| {
        Box::new(
            move |ctx: &mut Ctx<'_, Daemon>, reply: Result<Value, Unavailable>| {
                let online = match &reply {
                    Ok(v) => array(v).first().and_then(Value::as_int).unwrap_or(0) > 0,
                    Err(_) => false,
                };
                let outcome = if online {
                    Compat::Delivered
                } else {
                    Compat::Offline
                };
                ticket.answer(ctx, Reply::Compat(outcome));
            },
        ) as Then
    });
    let asked = eval(ctx, Script::Push, &[&node, "uids", &data, "", uid], then).is_ok();
    match (here, asked) {
        (true, _) => Some(Reply::Compat(Compat::Delivered)),
        (false, true) => None,
        (false, false) => Some(Reply::Compat(Compat::Offline)),
    }
}

/// To every bound connection of every node: here at once, the others through `P all`.
fn broadcast(ctx: &mut Ctx<'_, Daemon>, data: &[u8]) -> (Receipt, bool) {
    let receipt = api::push_to_all(ctx, data);
    api::count(ctx, &receipt);
    let node = engine::node(ctx);
    let channel = ctx
        .state
        .cluster
        .as_ref()
        .map(|c| c.key("all"))
        .unwrap_or_default();
    let envelope = json!({ "k": "all", "d": String::from_utf8_lossy(data), "o": node, "u": [] });
    let cmd = CommandBuf::new("PUBLISH")
        .arg(channel)
        .arg(envelope.to_string());
    let published = call(ctx, &cmd, None).is_ok();
    (receipt, published)
}

/// `push` to `all`: delivered here at once, published to every node by one script that
/// also names the live nodes; the receipt adds the counts of those that answer within
/// [`acks::ACK_WAIT`] and names the others.
fn broadcast_counted(
    ctx: &mut Ctx<'_, Daemon>,
    data: &str,
    node: &str,
    ticket: Ticket,
) -> Option<Reply> {
    let local = api::push_to_all(ctx, data.as_bytes());
    api::count(ctx, &local);
    let req = acks::expect(ctx, ticket, local.clone());
    let (me, here) = (node.to_string(), local.clone());
    let then: Then = Box::new(move |ctx, reply| match reply {
        Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
        Ok(v) => {
            let mut nodes = array(&v).get(1).map(strings).unwrap_or_default();
            nodes.retain(|n| *n != me);
            acks::published(ctx, req, here, nodes);
        }
        Err(e) => acks::fail(ctx, req, unavailable_with(&here, e)),
    });
    let req_arg = req.to_string();
    match eval(
        ctx,
        Script::Broadcast,
        &[node, data, "", &req_arg],
        Some(then),
    ) {
        Ok(()) => None,
        Err(e) => {
            acks::forget(ctx, req);
            Some(unavailable_with(&local, e))
        }
    }
}

/// `push`: scheduled in Redis, or delivered here now and routed to the other nodes.
fn push(
    ctx: &mut Ctx<'_, Daemon>,
    target: &Target<'_>,
    data: &str,
    when: When,
    ticket: Ticket,
) -> Option<Reply> {
    let now = unix_ms();
    let at = match when.at_ms(now) {
        Ok(at) => at,
        Err(e) => {
            ctx.state.stats.lines_refused += 1;
            return Some(Reply::error(e));
        }
    };
    let target = target.to_stored();
    if let Some(at) = at.filter(|&at| at > now) {
        let (t, v) = match &target {
            StoredTarget::Uid(u) => ("uid", json!(u)),
            StoredTarget::Uids(us) => ("uids", json!(us)),
            StoredTarget::Group(g) => ("group", json!(g)),
            StoredTarget::All => ("all", Json::Null),
        };
        let payload = json!({ "t": t, "v": v, "d": data }).to_string();
        return ask(
            ctx,
            Script::Schedule,
            &[&at.to_string(), &payload],
            ticket,
            move |v| json!({ "ok": true, "id": v.as_int().unwrap_or(0), "at_ms": at }),
        );
    }
    if inbox_on(ctx) {
        return match target {
            StoredTarget::All => inbox_push::broadcast(ctx, data, Some(ticket)),
            StoredTarget::Group(g) => inbox_push::push(ctx, "group", &[g], data, ticket),
            StoredTarget::Uid(uid) => inbox_push::push(ctx, "uids", &[uid], data, ticket),
            StoredTarget::Uids(uids) => inbox_push::push(ctx, "uids", &uids, data, ticket),
        };
    }
    let node = engine::node(ctx);
    match target {
        StoredTarget::All => broadcast_counted(ctx, data, &node, ticket),
        StoredTarget::Group(group) => {
            let req = acks::expect(ctx, ticket, Receipt::default());
            let data_owned = data.to_string();
            let then: Then = Box::new(move |ctx, reply| match reply {
                Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
                Ok(v) => {
                    let items = array(&v);
                    let members = items.get(3).map(strings).unwrap_or_default();
                    let local = local_only(ctx, &members, data_owned.as_bytes());
                    acks::routed(ctx, req, Some(local), &items);
                }
                Err(e) => acks::fail(ctx, req, Reply::error(e)),
            });
            let req_arg = req.to_string();
            match eval(
                ctx,
                Script::Push,
                &[&node, "group", data, &req_arg, &group],
                Some(then),
            ) {
                Ok(()) => None,
                Err(e) => {
                    acks::forget(ctx, req);
                    Some(Reply::error(e))
                }
            }
        }
        StoredTarget::Uid(uid) => push_uids(ctx, vec![uid], data, &node, ticket),
        StoredTarget::Uids(uids) => push_uids(ctx, uids, data, &node, ticket),
    }
}

fn push_uids(
    ctx: &mut Ctx<'_, Daemon>,
    uids: Vec<String>,
    data: &str,
    node: &str,
    ticket: Ticket,
) -> Option<Reply> {
    let local = local_only(ctx, &uids, data.as_bytes());
    let all_here = local.offline.is_empty();
    let req = acks::expect(ctx, ticket, local.clone());
    let req_arg = req.to_string();
    let mut args: Vec<&str> = vec![node, "uids", data, &req_arg];
    args.extend(uids.iter().map(String::as_str));
    let local_copy = local.clone();
    let then: Then = Box::new(move |ctx, reply| match reply {
        Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
        Ok(v) => acks::routed(ctx, req, None, &array(&v)),
        Err(_) if local_copy.offline.is_empty() => acks::fail(ctx, req, ok_receipt(&local_copy)),
        Err(e) => acks::fail(ctx, req, unavailable_with(&local_copy, e)),
    });
    match eval(ctx, Script::Push, &args, Some(then)) {
        Ok(()) => None,
        Err(e) => {
            acks::forget(ctx, req);
            Some(if all_here {
                ok_receipt(&local)
            } else {
                unavailable_with(&local, e)
            })
        }
    }
}

/// Delivers to this node's tabs of `uids`; `offline` lists the uids with none here.
fn local_only(ctx: &mut Ctx<'_, Daemon>, uids: &[String], data: &[u8]) -> Receipt {
    let receipt = api::push_to_uids(ctx, uids.iter().map(String::as_str), data);
    api::count(ctx, &receipt);
    receipt
}

fn ok_receipt(receipt: &Receipt) -> Reply {
    Reply::from_json(json!({ "ok": true, "receipt": acks::receipt_json(receipt, &[], &[]) }))
}

fn unavailable_with(receipt: &Receipt, e: Unavailable) -> Reply {
    Reply::from_json(
        json!({ "ok": false, "error": e.to_string(), "receipt": acks::receipt_json(receipt, &[], &[]) }),
    )
}

/// Runs `script` and answers `ticket` with `f(reply)`; `Some` at once if Redis cannot be
/// asked.
fn ask(
    ctx: &mut Ctx<'_, Daemon>,
    script: Script,
    args: &[&str],
    ticket: Ticket,
    f: impl FnOnce(Value) -> Json + 'static,
) -> Option<Reply> {
    match eval(ctx, script, args, Some(answer_with(ticket, f))) {
        Ok(()) => None,
        Err(e) => Some(Reply::error(e)),
    }
}

fn reply_later(
    ctx: &mut Ctx<'_, Daemon>,
    cmd: &CommandBuf,
    ticket: Ticket,
    f: impl FnOnce(Value) -> Json + 'static,
) -> Option<Reply> {
    match call(ctx, cmd, Some(answer_with(ticket, f))) {
        Ok(()) => None,
        Err(e) => Some(Reply::error(e)),
    }
}

fn answer_with(ticket: Ticket, f: impl FnOnce(Value) -> Json + 'static) -> Then {
    Box::new(move |ctx, reply| {
        let reply = match reply {
            Ok(Value::Error(e)) => Reply::error(format!("redis: {e}")),
            Ok(v) => Reply::from_json(f(v)),
            Err(e) => Reply::error(e),
        };
        ticket.answer(ctx, reply);
    })
}

fn scheduled_json(v: Value) -> Json {
    let items = array(&v);
    let pending = items.first().and_then(Value::as_int).unwrap_or(0);
    let list: Vec<Json> = items
        .get(1)
        .map(array)
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            let e = array(entry);
            let text = |i: usize| {
                e.get(i)
                    .and_then(Value::as_bytes)
                    .map(String::from_utf8_lossy)
            };
            let payload: Json = text(2)
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Json::Null);
            let target = match payload["t"].as_str() {
                Some("uid") => json!({ "uid": payload["v"] }),
                Some("uids") => json!({ "uids": payload["v"] }),
                Some("group") => json!({ "group": payload["v"] }),
                _ => json!({ "all": true }),
            };
            json!({
                "id": text(0).and_then(|s| s.parse::<u64>().ok()),
                "at_ms": text(1).and_then(|s| s.parse::<u64>().ok()),
                "target": target,
                "data": payload["d"],
            })
        })
        .collect();
    json!({ "ok": true, "pending": pending, "scheduled": list })
}

pub(super) fn array(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    array(v)
        .iter()
        .filter_map(|x| {
            x.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        })
        .collect()
}

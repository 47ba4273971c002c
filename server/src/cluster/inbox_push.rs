//! Backend pushes with the inbox in Redis: one `EVALSHA` each, which appends to the
//! streams and publishes to every live node holding a target, this one included
//! (`inbox.rs` says why). Nothing is delivered before Redis has the push: while Redis is
//! unavailable a push reaches nobody and answers `fail` / `cluster unavailable`, so every
//! push answered `ok` can be resumed.

use super::{
    acks,
    api::{array, strings},
    engine, eval,
    inbox::get,
    scripts::Script,
    Then, Unavailable,
};
use crate::{
    api::{Compat, Receipt, Reply},
    config::OfflineReply,
    replies::Ticket,
    state::Daemon,
};
use pushman::{codec::resp::Value, Ctx};
use serde_json::json;

/// The script's reply counted: appends, queued uids, trims.
fn count(ctx: &mut Ctx<'_, Daemon>, items: &[Value]) -> Vec<String> {
    let offline = items.get(1).map(strings).unwrap_or_default();
    let targeted = items.get(3).map(array).map_or(0, |u| u.len()) as u64;
    let trimmed = items.get(4).and_then(Value::as_int).unwrap_or(0) as u64;
    if let Some(inbox) = get(ctx) {
        inbox.status.appended += targeted;
        inbox.status.queued += offline.len() as u64;
        inbox.status.evicted_uid_cap += trimmed;
    }
    if targeted > 0 && items.first().and_then(Value::as_int) == Some(0) {
        ctx.state.stats.pushes_fail += 1;
    }
    offline
}

/// The inbox's bounds and epoch proposal for the scripts (empty when off).
fn spec(ctx: &mut Ctx<'_, Daemon>) -> String {
    get(ctx).map(|i| i.spec.clone()).unwrap_or_default()
}

/// push.php's line: `ok` iff a connection anywhere is bound to `uid` (or, with
/// `inbox.offline_reply = "ok"`, the line was queued for it), once Redis has it.
pub(crate) fn compat_push(
    ctx: &mut Ctx<'_, Daemon>,
    uid: &str,
    line: &[u8],
    ticket: Ticket,
) -> Option<Reply> {
    let (node, spec) = (engine::node(ctx), spec(ctx));
    let data = String::from_utf8_lossy(line).into_owned();
    let queued_is_ok = ctx.state.config.inbox.offline_reply == OfflineReply::Ok;
    let then: Then = Box::new(move |ctx, reply| {
        let delivered = match reply {
            Ok(v @ Value::Array(_)) => {
                let items = array(&v);
                let queued = !count(ctx, &items).is_empty();
                items.first().and_then(Value::as_int).unwrap_or(0) > 0 || queued && queued_is_ok
            }
            _ => false,
        };
        let outcome = if delivered {
            Compat::Delivered
        } else {
            Compat::Offline
        };
        ticket.answer(ctx, Reply::Compat(outcome));
    });
    let args = [node.as_str(), "uids", &data, "", &spec, uid];
    match eval(ctx, Script::PushInbox, &args, Some(then)) {
        Ok(()) => None,
        Err(_) => Some(Reply::Compat(Compat::Offline)),
    }
}

/// `push` to `uids` (`kind` = `"uids"`) or a group (`"group"`, `targets` = its name): a
/// receipt once every node that holds a target has answered with its counts (this one
/// too), or after [`acks::ACK_WAIT`]; `queued` lists the offline uids, kept for them.
pub(crate) fn push(
    ctx: &mut Ctx<'_, Daemon>,
    kind: &str,
    targets: &[String],
    data: &str,
    ticket: Ticket,
) -> Option<Reply> {
    let (node, spec) = (engine::node(ctx), spec(ctx));
    let req = acks::expect(ctx, ticket, Receipt::default());
    let then: Then = Box::new(move |ctx, reply| match reply {
        Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
        Ok(v) => {
            let items = array(&v);
            let offline = count(ctx, &items);
            let nodes = items.get(2).map(strings).unwrap_or_default();
            let local = Receipt {
                offline: offline.clone(),
                queued: offline,
                ..Receipt::default()
            };
            acks::published(ctx, req, local, nodes);
        }
        Err(e) => acks::fail(ctx, req, Reply::error(e)),
    });
    let req_arg = req.to_string();
    let mut args: Vec<&str> = vec![&node, kind, data, &req_arg, &spec];
    args.extend(targets.iter().map(String::as_str));
    match eval(ctx, Script::PushInbox, &args, Some(then)) {
        Ok(()) => None,
        Err(e) => {
            acks::forget(ctx, req);
            Some(Reply::error(e))
        }
    }
}

/// A broadcast: appended to the broadcast stream (inbox on) and published to every node.
/// With a `ticket` (`push` with `all`), the receipt counts every live node that answered
/// within [`acks::ACK_WAIT`] (this one too) and names the others; without (a push.php
/// broadcast), `ok` once it is sent to Redis, `fail` if it cannot be.
pub(crate) fn broadcast(
    ctx: &mut Ctx<'_, Daemon>,
    data: &str,
    ticket: Option<Ticket>,
) -> Option<Reply> {
    let (node, spec) = (engine::node(ctx), spec(ctx));
    let Some(ticket) = ticket else {
        let sent = eval(ctx, Script::Broadcast, &[&node, data, &spec, ""], None).is_ok();
        if sent {
            if let Some(inbox) = get(ctx) {
                inbox.status.broadcasts += 1;
            }
        }
        return Some(Reply::Compat(if sent {
            Compat::Delivered
        } else {
            Compat::Offline
        }));
    };
    let req = acks::expect(ctx, ticket, Receipt::default());
    let then: Then = Box::new(move |ctx, reply| match reply {
        Ok(Value::Error(e)) => acks::fail(ctx, req, Reply::error(format!("redis: {e}"))),
        Ok(v) => {
            if let Some(inbox) = get(ctx) {
                inbox.status.broadcasts += 1;
            }
            let nodes = array(&v).get(1).map(strings).unwrap_or_default();
            acks::published(ctx, req, Receipt::default(), nodes);
        }
        Err(e) => acks::fail(ctx, req, unavailable(e)),
    });
    let req_arg = req.to_string();
    match eval(
        ctx,
        Script::Broadcast,
        &[&node, data, &spec, &req_arg],
        Some(then),
    ) {
        Ok(()) => None,
        Err(e) => {
            acks::forget(ctx, req);
            Some(unavailable(e))
        }
    }
}

fn unavailable(e: Unavailable) -> Reply {
    Reply::from_json(json!({ "ok": false, "error": e.to_string(),
                             "receipt": acks::receipt_json(&Receipt::default(), &[], &[]) }))
}

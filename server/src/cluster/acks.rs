//! Receipts that count what other nodes delivered: a routed `push` carries a request id;
//! each node it was published to delivers, then publishes its counts back to the origin's
//! inbox. The origin answers once every node it published to has answered, or when
//! [`ACK_WAIT`] runs out, naming the nodes that did not (`unanswered`). A receipt never
//! claims more than the nodes that answered counted.

use super::api::strings;
use crate::{
    api::{Receipt, Reply},
    replies::Ticket,
    state::Daemon,
};
use pushman::{codec::resp::Value, Ctx};
use serde_json::{json, Value as Json};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// How long a push waits for the other nodes' counts before answering without them. It
/// also bounds the memory of waiting pushes (their rate times this).
pub(crate) const ACK_WAIT: Duration = Duration::from_millis(500);

/// What the counts are of, and so how the reply reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A push: a receipt (`sent` = connections that took it).
    Push,
    /// A kick: `closed` = connections closed.
    Kick,
    /// `online` for this uid: `connections` = its connections everywhere.
    Online(String),
}

/// One push waiting for counts.
#[derive(Debug)]
struct Wait {
    ticket: Ticket,
    kind: Kind,
    /// This node's counts, then the answered nodes' added in.
    receipt: Receipt,
    /// The nodes it was published to: unknown until the script's reply.
    expected: Option<Vec<String>>,
    /// Nodes whose counts came (possibly before the script's reply was read).
    answered: Vec<String>,
    deadline: Instant,
}

/// Pushes waiting for counts, by request id.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    next: u64,
    waiting: HashMap<u64, Wait>,
}

/// Registers a push answered through `ticket` with this node's `receipt`; returns its
/// request id.
pub(crate) fn expect(ctx: &mut Ctx<'_, Daemon>, ticket: Ticket, receipt: Receipt) -> u64 {
    expect_kind(ctx, ticket, receipt, Kind::Push)
}

/// As [`expect`], for counts of another `kind`.
pub(crate) fn expect_kind(
    ctx: &mut Ctx<'_, Daemon>,
    ticket: Ticket,
    receipt: Receipt,
    kind: Kind,
) -> u64 {
    let deadline = ctx.io.now() + ACK_WAIT;
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return 0;
    };
    let acks = &mut cluster.acks;
    acks.next += 1;
    let req = acks.next;
    let wait = Wait {
        ticket,
        kind,
        receipt,
        expected: None,
        answered: Vec::new(),
        deadline,
    };
    acks.waiting.insert(req, wait);
    req
}

/// Forgets `req` (the push was answered another way).
pub(crate) fn forget(ctx: &mut Ctx<'_, Daemon>, req: u64) {
    if let Some(c) = ctx.state.cluster.as_mut() {
        c.acks.waiting.remove(&req);
    }
}

/// The script answered: the nodes it published to and the uids no live node holds.
/// `local` replaces this node's counts (a group push delivers here only now).
pub(crate) fn routed(ctx: &mut Ctx<'_, Daemon>, req: u64, local: Option<Receipt>, items: &[Value]) {
    let Some(wait) = ctx
        .state
        .cluster
        .as_mut()
        .and_then(|c| c.acks.waiting.get_mut(&req))
    else {
        return;
    };
    if let Some(local) = local {
        let answered = std::mem::replace(&mut wait.receipt, local);
        add(&mut wait.receipt, &answered);
    }
    let nobody = items.get(1).map(strings).unwrap_or_default();
    wait.receipt.offline.retain(|u| nobody.contains(u));
    wait.expected = Some(items.get(2).map(strings).unwrap_or_default());
    finish_if_done(ctx, req);
}

/// A script published push `req` to `nodes` (with the inbox, this node among them): wait
/// for their counts; `local` replaces what this node counted so far (answers already in are
/// added to it).
pub(crate) fn published(ctx: &mut Ctx<'_, Daemon>, req: u64, local: Receipt, nodes: Vec<String>) {
    let Some(wait) = ctx
        .state
        .cluster
        .as_mut()
        .and_then(|c| c.acks.waiting.get_mut(&req))
    else {
        return;
    };
    let answered = std::mem::replace(&mut wait.receipt, local);
    add(&mut wait.receipt, &answered);
    wait.expected = Some(nodes);
    finish_if_done(ctx, req);
}

/// The push cannot be routed: answer `reply` instead.
pub(crate) fn fail(ctx: &mut Ctx<'_, Daemon>, req: u64, reply: Reply) {
    let wait = ctx
        .state
        .cluster
        .as_mut()
        .and_then(|c| c.acks.waiting.remove(&req));
    if let Some(wait) = wait {
        wait.ticket.answer(ctx, reply);
    }
}

/// Node `from` delivered push `req`: its counts.
pub(crate) fn on_ack(ctx: &mut Ctx<'_, Daemon>, req: u64, from: &str, counts: &Receipt) {
    let Some(wait) = ctx
        .state
        .cluster
        .as_mut()
        .and_then(|c| c.acks.waiting.get_mut(&req))
    else {
        return; // Answered already (late, or waited for no longer).
    };
    if wait.answered.iter().any(|n| n == from) {
        return;
    }
    wait.answered.push(from.to_string());
    add(&mut wait.receipt, counts);
    finish_if_done(ctx, req);
}

/// Answers the pushes whose wait ran out.
pub(crate) fn tick(ctx: &mut Ctx<'_, Daemon>, now: Instant) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    let due: Vec<u64> = cluster
        .acks
        .waiting
        .iter()
        .filter(|(_, w)| w.deadline <= now && w.expected.is_some())
        .map(|(&req, _)| req)
        .collect();
    for req in due {
        answer(ctx, req);
    }
}

fn add(receipt: &mut Receipt, counts: &Receipt) {
    receipt.sent += counts.sent;
    receipt.dropped += counts.dropped;
    receipt.closing += counts.closing;
}

fn finish_if_done(ctx: &mut Ctx<'_, Daemon>, req: u64) {
    let done = ctx
        .state
        .cluster
        .as_ref()
        .and_then(|c| c.acks.waiting.get(&req))
        .is_some_and(|w| {
            w.expected
                .as_ref()
                .is_some_and(|e| e.iter().all(|n| w.answered.contains(n)))
        });
    if done {
        answer(ctx, req);
    }
}

fn answer(ctx: &mut Ctx<'_, Daemon>, req: u64) {
    let Some(wait) = ctx
        .state
        .cluster
        .as_mut()
        .and_then(|c| c.acks.waiting.remove(&req))
    else {
        return;
    };
    let expected = wait.expected.unwrap_or_default();
    let unanswered: Vec<String> = expected
        .iter()
        .filter(|n| !wait.answered.contains(n))
        .cloned()
        .collect();
    let r = &wait.receipt;
    let reply = match wait.kind {
        Kind::Push => {
            json!({ "ok": true, "receipt": receipt_json(r, &wait.answered, &unanswered) })
        }
        Kind::Kick => json!({ "ok": true, "closed": r.sent, "nodes": wait.answered,
                              "unanswered": unanswered }),
        Kind::Online(uid) => json!({ "ok": true, "uid": uid, "online": r.sent > 0,
                                     "connections": r.sent, "nodes": wait.answered,
                                     "unanswered": unanswered }),
    };
    wait.ticket.answer(ctx, Reply::from_json(reply));
}

/// A receipt: `sent`, `dropped`, `closing` summed over this node and the nodes that
/// answered (`nodes`); `unanswered`: nodes published to that did not answer in time.
pub(crate) fn receipt_json(r: &Receipt, nodes: &[String], unanswered: &[String]) -> Json {
    json!({ "sent": r.sent, "offline": r.offline, "dropped": r.dropped, "closing": r.closing,
            "queued": r.queued, "nodes": nodes, "unanswered": unanswered })
}

/// Parses an acknowledgement's counts (`s`, `dr`, `c` of the inbox envelope).
pub(crate) fn counts(v: &Json) -> Receipt {
    let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
    Receipt {
        sent: n("s"),
        dropped: n("dr"),
        closing: n("c"),
        ..Receipt::default()
    }
}

//! What the cluster does with Redis: routes (written when a uid gets its first tab on this
//! node or loses its last), the node's lease, its inbox, and claiming due scheduled
//! pushes. Commands per event are listed in docs/CLUSTER.md.

use super::{call, claim_due, eval, lease_due, scripts::Script, Then};
use crate::state::Daemon;
use pushman::{codec::resp::CommandBuf, ConnId, Ctx};
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

/// Route writes per `EVALSHA` when re-registering every uid after a reconnect.
const RESYNC_BATCH: usize = 500;
/// Scheduled pushes claimed per script run.
const CLAIM_BATCH: &str = "100";
const CLAIM_BATCH_N: i64 = 100;

/// The command link is (again) up: this node's routes are written anew (uids that left
/// while Redis was away are dropped), and the lease renewed.
pub(crate) fn on_link_up(ctx: &mut Ctx<'_, Daemon>) {
    let mut uids: Vec<String> = ctx
        .state
        .registry
        .online_uids(0, usize::MAX)
        .into_iter()
        .map(str::to_owned)
        .collect();
    uids.sort_unstable();
    let node = node(ctx);
    let mut reset = "1";
    let mut chunks = uids.chunks(RESYNC_BATCH).peekable();
    if chunks.peek().is_none() {
        let _ = eval(ctx, Script::RouteAdd, &[&node, reset], None);
    }
    for chunk in chunks {
        let mut args: Vec<&str> = vec![&node, reset];
        args.extend(chunk.iter().map(String::as_str));
        let _ = eval(ctx, Script::RouteAdd, &args, None);
        reset = "0";
    }
    log::info!("cluster: {} uids routed to node {node}", uids.len());
    if let Some(c) = ctx.state.cluster.as_mut() {
        c.routes_fresh = true;
        if let Some(inbox) = c.inbox.as_mut() {
            inbox.renew_epoch_proposal();
        }
    }
}

/// This node's id (empty outside cluster mode).
pub(super) fn node(ctx: &Ctx<'_, Daemon>) -> String {
    ctx.state
        .cluster
        .as_ref()
        .map(|c| c.node.clone())
        .unwrap_or_default()
}

/// A graceful stop: the lease and this node's routes go now, so the others answer `fail`
/// for its uids at once instead of until the lease runs out.
pub(crate) fn on_stop(ctx: &mut Ctx<'_, Daemon>) {
    let node = node(ctx);
    let Some(key) = ctx
        .state
        .cluster
        .as_ref()
        .map(|c| c.key(&format!("node:{node}")))
    else {
        return;
    };
    let _ = call(ctx, &CommandBuf::new("DEL").arg(key), None);
    let _ = eval(ctx, Script::RouteAdd, &[&node, "1"], None);
}

/// A uid got its first connection on this node.
pub(crate) fn on_first_tab(ctx: &mut Ctx<'_, Daemon>, uid: &str) {
    let node = node(ctx);
    if eval(ctx, Script::RouteAdd, &[&node, "0", uid], None).is_ok() {
        count_route_write(ctx);
    }
}

/// A uid's last connection on this node closed.
pub(crate) fn on_last_tab(ctx: &mut Ctx<'_, Daemon>, uid: &str) {
    let node = node(ctx);
    if eval(ctx, Script::RouteDel, &[&node, uid], None).is_ok() {
        count_route_write(ctx);
    }
}

pub(super) fn count_route_write(ctx: &mut Ctx<'_, Daemon>) {
    if let Some(c) = ctx.state.cluster.as_mut() {
        c.counters.route_writes += 1;
    }
}

/// Renews the lease and claims due pushes, when due.
pub(crate) fn tick(ctx: &mut Ctx<'_, Daemon>, now: Instant) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    if lease_due(cluster, now) {
        let node = cluster.node.clone();
        let ms = cluster.lease.as_millis().to_string();
        let janitor = std::mem::take(&mut cluster.janitor_due);
        let value = json!({
            "conns": ctx.state.registry.conn_total(),
            "uids": ctx.state.registry.uid_total(),
        })
        .to_string();
        let then: Then = Box::new(move |ctx, reply| {
            let Some(c) = ctx.state.cluster.as_mut() else {
                return;
            };
            let Ok(reply) = reply else {
                return;
            };
            c.lease_ok = Some(ctx.io.now());
            let routes_fresh = std::mem::take(&mut c.routes_fresh);
            if reply.as_int() == Some(0) && !routes_fresh {
                log::warn!("cluster: this node's lease had lapsed; writing its routes again");
                on_link_up(ctx);
            }
        });
        let _ = eval(ctx, Script::Lease, &[&node, &value, &ms], Some(then));
        // The subscription link carries no replies otherwise: a ping shows it is alive
        // (unanswered, it is dropped after the reply timeout and made again).
        super::callbacks::send_raw(ctx, super::Which::Sub, &[b"PING"], None);
        if janitor {
            let _ = eval(ctx, Script::Janitor, &[&node], None);
        }
        super::inbox::sample_redis(ctx);
    }
    super::acks::tick(ctx, now);
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    if !ctx.io.stopping() && claim_due(cluster, now) {
        let then: Then = Box::new(|ctx, reply| {
            let now = ctx.io.now();
            if let Some(c) = ctx.state.cluster.as_mut() {
                c.claiming = false;
                let items = match &reply {
                    Ok(v) => super::api::array(v),
                    Err(_) => Vec::new(),
                };
                let at = |i: usize| items.get(i).and_then(|v| v.as_int());
                let claimed = at(0).unwrap_or(0).max(0);
                c.counters.claimed += claimed as u64;
                // A full batch: more may be due. Otherwise sleep until the next one.
                let wait = match at(1) {
                    _ if claimed >= CLAIM_BATCH_N => Duration::ZERO,
                    Some(ms) if ms >= 0 => Duration::from_millis(ms as u64),
                    _ => super::MAX_CLAIM_WAIT,
                };
                c.next_claim = match std::mem::take(&mut c.nudged) {
                    true => now,
                    false => now + wait.min(super::MAX_CLAIM_WAIT),
                };
            }
        });
        let spec = super::inbox::get(ctx).map(|i| i.spec.clone());
        let spec = spec.unwrap_or_default();
        if eval(ctx, Script::Claim, &[CLAIM_BATCH, &spec], Some(then)).is_err() {
            if let Some(c) = ctx.state.cluster.as_mut() {
                c.claiming = false;
            }
        }
    }
}

/// Delivers a message published to this node (see `scripts.rs` for who sends what):
/// `{"k": kind, "u": uids here, "d": frame or kick reason, "o": origin node, "r": request
/// id wanting an acknowledgement}`; `ack` messages carry counts back (`s`, `dr`, `c`).
pub(crate) fn on_inbox(ctx: &mut Ctx<'_, Daemon>, payload: &[u8]) {
    let envelope: Json = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("cluster: unreadable inbox message ({e}); dropped");
            return;
        }
    };
    let me = node(ctx);
    let text = |k: &str| envelope[k].as_str().unwrap_or_default();
    let uids: Vec<&str> = envelope["u"]
        .as_array()
        .map(|u| u.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    match text("k") {
        // With the inbox: the push has its offsets (`n`); the origin delivers here too.
        "uids" if envelope.get("n").is_some() => {
            let receipt = super::inbox::on_push(ctx, &envelope);
            crate::api::count(ctx, &receipt);
            acknowledge(ctx, &envelope, &me, &receipt);
        }
        "all" if envelope.get("a").is_some() => {
            let receipt = super::inbox::on_broadcast(ctx, &envelope);
            crate::api::count(ctx, &receipt);
            acknowledge(ctx, &envelope, &me, &receipt);
        }
        "uids" => {
            let receipt = crate::api::push_to_uids(ctx, uids, text("d").as_bytes());
            crate::api::count(ctx, &receipt);
            acknowledge(ctx, &envelope, &me, &receipt);
        }
        "kick" => {
            let closed = uids.iter().map(|uid| kick_local(ctx, uid, text("d"))).sum();
            let counted = crate::api::Receipt {
                sent: closed,
                ..Default::default()
            };
            acknowledge(ctx, &envelope, &me, &counted);
        }
        "count" => {
            let tabs = uids
                .iter()
                .map(|uid| ctx.state.registry.conn_count(uid))
                .sum();
            let counted = crate::api::Receipt {
                sent: tabs,
                ..Default::default()
            };
            acknowledge(ctx, &envelope, &me, &counted);
        }
        "all" if text("o") != me => {
            let receipt = crate::api::push_to_all(ctx, text("d").as_bytes());
            crate::api::count(ctx, &receipt);
            acknowledge(ctx, &envelope, &me, &receipt);
        }
        "all" => {}
        // A new earliest scheduled push: claim when it is due, not at the next idle wake.
        "sched" => {
            if let Some(c) = ctx.state.cluster.as_mut() {
                c.next_claim = ctx.io.now();
                c.nudged = c.claiming;
            }
        }
        "ack" => {
            let req = text("r").parse::<u64>().unwrap_or(0);
            super::acks::on_ack(ctx, req, text("o"), &super::acks::counts(&envelope));
        }
        other => log::warn!("cluster: inbox message of unknown kind {other:?}; dropped"),
    }
}

/// Sends this node's `counts` back to the origin of `envelope`, if it asked (`r`).
fn acknowledge(ctx: &mut Ctx<'_, Daemon>, envelope: &Json, me: &str, counts: &crate::api::Receipt) {
    let (Some(req), Some(origin)) = (envelope["r"].as_str(), envelope["o"].as_str()) else {
        return;
    };
    if origin == me {
        // The inbox publishes to the origin too: its counts need no round trip.
        super::acks::on_ack(ctx, req.parse().unwrap_or(0), me, counts);
        return;
    }
    let ack = json!({ "k": "ack", "r": req, "o": me, "s": counts.sent,
                      "dr": counts.dropped, "c": counts.closing });
    let Some(channel) = ctx
        .state
        .cluster
        .as_ref()
        .map(|c| c.key(&format!("inbox:{origin}")))
    else {
        return;
    };
    let _ = call(
        ctx,
        &CommandBuf::new("PUBLISH").arg(channel).arg(ack.to_string()),
        None,
    );
}

/// Closes this node's connections of `uid`; returns how many.
pub(crate) fn kick_local(ctx: &mut Ctx<'_, Daemon>, uid: &str, reason: &str) -> usize {
    let conns: Vec<ConnId> = ctx.state.registry.conns(uid).collect();
    for &conn in &conns {
        ctx.io.close_with(conn, 4000, reason);
    }
    conns.len()
}

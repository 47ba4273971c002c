//! The Redis links' callbacks: login and setup on connect, replies matched to their
//! commands (first in, first out), subscription messages, and failing what was in flight
//! when a link drops.

use super::{
    engine,
    link::{State, Waiting},
    scripts::Script,
    Then, Unavailable, Which,
};
use crate::state::Daemon;
use pushman::{
    codec::resp::{encode_command, Value},
    ConnId, Ctx, Message,
};

/// Writes a setup command (login, scripts, subscribe) on a link that is not `Up` yet.
pub(super) fn send_raw(
    ctx: &mut Ctx<'_, Daemon>,
    which: Which,
    args: &[&[u8]],
    then: Option<Then>,
) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    let mut bytes = Vec::new();
    encode_command(args, &mut bytes);
    let now = ctx.io.now();
    let link = cluster.link(which);
    if let Some(conn) = link.conn {
        // Tracked like any command, so an unanswered one (a silent Redis, a dead socket)
        // drops the link after the reply timeout. `SUBSCRIBE` counts as answered once
        // both confirmations came; a `PING` on the subscription link by its `pong`.
        if ctx.io.send(conn, &bytes).is_ok() {
            link.waiting.push_back(Waiting { sent: now, then });
        }
    }
}

/// A reply that must not be an error: otherwise the link is dropped (and retried).
fn expect_ok(what: &'static str, which: Which) -> Option<Then> {
    Some(Box::new(move |ctx, reply| {
        if let Ok(Value::Error(e)) = reply {
            log::error!("redis: {what} refused: {e}");
            let Some(link) = ctx.state.cluster.as_mut().map(|c| c.link(which)) else {
                return;
            };
            // Down at once, so nothing pipelined behind it brings the link up.
            link.state = State::Down;
            if let Some(conn) = link.conn {
                ctx.io.destroy(conn);
            }
        }
    }))
}

pub(super) fn on_connect(ctx: &mut Ctx<'_, Daemon>, conn: ConnId) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    let Some(which) = cluster.which(conn) else {
        return;
    };
    let url = cluster.url.clone();
    if let Some(password) = &url.password {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &url.user {
            args.push(user.as_bytes());
        }
        args.push(password.as_bytes());
        send_raw(ctx, which, &args, expect_ok("AUTH", which));
    }
    if url.db != 0 {
        let db = url.db.to_string();
        send_raw(
            ctx,
            which,
            &[b"SELECT", db.as_bytes()],
            expect_ok("SELECT", which),
        );
    }
    match which {
        Which::Cmd => {
            for script in Script::ALL {
                let source = script.source();
                send_raw(
                    ctx,
                    which,
                    &[b"SCRIPT", b"LOAD", source.as_bytes()],
                    expect_ok("SCRIPT LOAD", which),
                );
            }
            // Up once everything before it succeeded (Redis answers in order): a refused
            // AUTH or SELECT marks the link down first, and it is dropped.
            let ready: Then = Box::new(move |ctx, reply| {
                let Some(cluster) = ctx.state.cluster.as_mut() else {
                    return;
                };
                if reply.is_err() || cluster.cmd.state != State::Connecting {
                    return;
                }
                cluster.cmd.state = State::Up;
                cluster.cmd.established();
                log::info!("redis {}: command link up", cluster.url.addr);
                engine::on_link_up(ctx);
                engine::tick(ctx, ctx.io.now());
            });
            send_raw(ctx, which, &[b"PING"], Some(ready));
        }
        Which::Sub => {
            let Some(c) = ctx.state.cluster.as_ref() else {
                return;
            };
            let (inbox, all) = (c.key(&format!("inbox:{}", c.node)), c.key("all"));
            send_raw(
                ctx,
                which,
                &[b"SUBSCRIBE", inbox.as_bytes(), all.as_bytes()],
                None,
            );
        }
    }
}

pub(super) fn on_message(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, msg: Message<'_>) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    let Some(which) = cluster.which(conn) else {
        return;
    };
    let values = match cluster.link(which).receive(msg.as_bytes()) {
        Ok(values) => values,
        Err(e) => {
            log::error!("redis: {e}; reconnecting");
            ctx.io.destroy(conn);
            return;
        }
    };
    for value in values {
        match which {
            Which::Sub => on_subscription(ctx, value),
            Which::Cmd => {
                let Some(cluster) = ctx.state.cluster.as_mut() else {
                    return;
                };
                let Some(waiting) = cluster.cmd.waiting.pop_front() else {
                    log::error!("redis: a reply nobody asked for; reconnecting");
                    ctx.io.destroy(conn);
                    return;
                };
                cluster.cmd.rtt = Some(ctx.io.now().saturating_duration_since(waiting.sent));
                if let Value::Error(e) = &value {
                    if e.starts_with("NOSCRIPT") {
                        // Someone flushed the scripts: a reconnect loads them again.
                        log::warn!("redis: {e}; reconnecting to load the scripts");
                        ctx.io.destroy(conn);
                    }
                }
                if let Some(then) = waiting.then {
                    then(ctx, Ok(value));
                }
            }
        }
    }
}

/// A value on the subscription link: a login reply, a subscribe confirmation or a
/// message on one of this node's channels.
fn on_subscription(ctx: &mut Ctx<'_, Daemon>, value: Value) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    if let Value::Array(items) = &value {
        match items.first().and_then(Value::as_bytes) {
            Some(b"message") => {
                cluster.counters.inbox += 1;
                if let Some(payload) = items.get(2).and_then(Value::as_bytes) {
                    engine::on_inbox(ctx, payload);
                }
                return;
            }
            Some(b"subscribe") => {
                cluster.subscribed += 1;
                if cluster.subscribed == 2 {
                    cluster.sub.waiting.pop_front();
                    cluster.sub.state = State::Up;
                    cluster.sub.established();
                    // A fresh lease right away: this node receives again.
                    cluster.next_lease = ctx.io.now();
                    // Nudges may have been missed while unsubscribed.
                    cluster.next_claim = ctx.io.now();
                    log::info!("redis {}: subscribed", cluster.url.addr);
                    // Not at the next tick: until the lease is written, pushes to this
                    // node's uids answer `fail`.
                    engine::tick(ctx, ctx.io.now());
                }
                return;
            }
            // The answer to a keep-alive `PING` in subscribed mode: `["pong", ""]`.
            Some(b"pong") => {}
            _ => {}
        }
    }
    if let Some(waiting) = cluster.sub.waiting.pop_front() {
        if let Some(then) = waiting.then {
            then(ctx, Ok(value));
        }
    }
}

pub(super) fn on_close(ctx: &mut Ctx<'_, Daemon>, conn: ConnId) {
    let Some(cluster) = ctx.state.cluster.as_mut() else {
        return;
    };
    let Some(which) = cluster.which(conn) else {
        return;
    };
    let now = ctx.io.now();
    let was_up = cluster.link(which).state == State::Up;
    if which == Which::Sub {
        cluster.subscribed = 0;
    }
    if which == Which::Cmd {
        cluster.claiming = false;
    }
    let lost = cluster.link(which).lost(now);
    if was_up && ctx.io.stopping() {
        log::info!("redis {}: link closed (stopping)", cluster.url.addr);
    } else if was_up {
        log::warn!(
            "redis {}: {} link lost; {} commands unanswered; reconnecting",
            cluster.url.addr,
            if which == Which::Cmd {
                "command"
            } else {
                "subscription"
            },
            lost.len()
        );
    }
    for waiting in lost {
        if let Some(then) = waiting.then {
            then(ctx, Err(Unavailable));
        }
    }
}

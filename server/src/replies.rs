//! Replies that wait for Redis (cluster mode), delivered in each backend's order.
//!
//! A text-API connection's lines are answered in the order they came, though their Redis
//! round trips overlap: each line takes a slot; a reply fills its slot; filled slots at
//! the front go out. Embedded mode never defers, and a connection with nothing pending
//! keeps the direct path (no slot is kept). An HTTP request that waits stops its
//! connection's reading until it is answered (the next pipelined request waits in turn).

use crate::{api::Reply, state::Daemon};
use pushman::{ConnId, Ctx};
use std::{borrow::Cow, collections::VecDeque};

/// Replies waiting on one text-API connection: slot `base` is the front.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    base: u64,
    slots: VecDeque<Option<Cow<'static, str>>>,
    /// Reading was paused for [`MAX_PENDING`] unanswered lines; resumed below half of it.
    paused: bool,
}

/// Past this many unanswered lines, a connection is not read from until replies drain.
const MAX_PENDING: usize = 1024;

/// Where a deferred reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// Text API: the connection and its line's slot.
    Text { conn: ConnId, slot: u64 },
    /// HTTP API: the connection (paused until answered); `head` drops the body.
    Http { conn: ConnId, head: bool },
}

impl Ticket {
    /// The ticket the next line of text-API connection `conn` gets.
    pub(crate) fn next_text(ctx: &Ctx<'_, Daemon>, conn: ConnId) -> Self {
        let slot = ctx
            .state
            .text_pending
            .get(&conn)
            .map_or(0, |p| p.base + p.slots.len() as u64);
        Self::Text { conn, slot }
    }

    /// The reply arrived (for a reply available at once, too: it may have to wait for
    /// earlier ones).
    pub(crate) fn answer(self, ctx: &mut Ctx<'_, Daemon>, reply: Reply) {
        match self {
            Self::Text { conn, slot } => text_answer(ctx, conn, slot, reply.to_line()),
            Self::Http { conn, head } => {
                let mut response = reply.to_http();
                if head {
                    response = response.without_body();
                }
                let _ = ctx.io.respond(conn, &response);
                ctx.io.resume_recv(conn);
            }
        }
    }

    /// The reply will come later: hold its place.
    pub(crate) fn defer(self, ctx: &mut Ctx<'_, Daemon>) {
        match self {
            Self::Text { conn, slot } => {
                let pending = ctx.state.text_pending.entry(conn).or_default();
                if pending.slots.is_empty() {
                    pending.base = slot;
                }
                pending.slots.push_back(None);
                if pending.slots.len() >= MAX_PENDING && !pending.paused {
                    pending.paused = true;
                    ctx.io.pause_recv(conn);
                }
            }
            Self::Http { conn, .. } => ctx.io.pause_recv(conn),
        }
    }
}

fn text_answer(ctx: &mut Ctx<'_, Daemon>, conn: ConnId, slot: u64, line: Cow<'static, str>) {
    let Some(pending) = ctx.state.text_pending.get_mut(&conn) else {
        // Nothing waits ahead of it.
        let _ = ctx.io.send(conn, line.as_bytes());
        return;
    };
    let Some(index) = slot.checked_sub(pending.base).map(|i| i as usize) else {
        return;
    };
    if index >= pending.slots.len() {
        // A reply available at once, behind deferred ones.
        pending.slots.push_back(Some(line));
    } else {
        pending.slots[index] = Some(line);
    }
    while let Some(Some(_)) = pending.slots.front() {
        if let Some(Some(line)) = pending.slots.pop_front() {
            pending.base += 1;
            let _ = ctx.io.send(conn, line.as_bytes());
        }
    }
    // Resumed once half drained (not only by the answer that found it full: answers
    // mostly come one at a time, and the next ones would never see it full again).
    let left = pending.slots.len();
    if pending.paused && left < MAX_PENDING / 2 {
        pending.paused = false;
        ctx.io.resume_recv(conn);
    }
    if left == 0 {
        ctx.state.text_pending.remove(&conn);
    }
}

//! Workerman's classic push.php, line for line in spirit.
//!
//! Browsers connect to `ws://HOST:1234` and send their uid as the first message. Any backend
//! writes `{"uid":"uid1","percent":"88%"}\n` to `HOST:5678`; that line is pushed to every tab
//! of uid1 and the backend reads `ok` (some tab took it) or `fail`. A line with
//! `"broadcast":true` goes to every uid. Run: `cargo run --example push -- [WS] [TEXT]`.

use pushman::{ConnId, Ctx, Message, Worker};
use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
};

/// `$worker->uidConnections`, but a uid may have several tabs.
type UidConnections = HashMap<String, BTreeSet<ConnId>>;

/// The fields read of a backend's line, borrowed from it: no allocation per push.
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    uid: Option<Uid<'a>>,
    #[serde(default)]
    broadcast: bool,
}

/// A uid, copied only if it has escapes (serde borrows a `Cow` field, not an optional one).
#[derive(serde::Deserialize)]
struct Uid<'a>(#[serde(borrow)] Cow<'a, str>);

fn main() -> pushman::Result<()> {
    let mut args = std::env::args().skip(1);
    let ws_addr = args.next().unwrap_or_else(|| "0.0.0.0:1234".into());
    let text_addr = args.next().unwrap_or_else(|| "0.0.0.0:5678".into());
    let mut worker = Worker::new(&format!("websocket://{ws_addr}"))?;

    // Once the worker runs, open the internal text port for backends.
    worker.on_worker_start(move |ctx| {
        let mut inner_text_worker = Worker::new(&format!("text://{text_addr}"))?;
        inner_text_worker.on_message(|ctx, connection, buffer| {
            let line = buffer.as_bytes();
            // The line goes on as a WebSocket text frame, so all of it must be UTF-8, not
            // only the strings serde keeps: `from_str` after one check of the whole line.
            let parsed = std::str::from_utf8(line).map(serde_json::from_str::<Line<'_>>);
            let ok = match parsed {
                Ok(Ok(data)) if data.broadcast => broadcast(ctx, line),
                Ok(Ok(Line { uid: Some(uid), .. })) => send_message_by_uid(ctx, &uid.0, line),
                _ => false, // not UTF-8, not JSON, no uid, or a field of the wrong type
            };
            let _ = ctx.io.send(connection, if ok { "ok" } else { "fail" });
        });
        let addr = ctx.io.listen(inner_text_worker)?;
        println!("push: text port on {addr}");
        Ok(())
    });

    // The first message of a connection is its uid (no verification, as in the original).
    worker.on_message(|ctx, connection, data| {
        let Message::Text(uid) = data else { return };
        if ctx.io.data::<String>(connection).is_none() {
            let tabs = ctx.state.entry(uid.to_string()).or_default();
            tabs.insert(connection);
            ctx.io.set_data(connection, uid.to_string());
        }
    });

    // Unbind only this connection: a reconnecting tab's new socket stays bound.
    worker.on_close(|ctx, connection| {
        let Some(uid) = ctx.io.take_data::<String>(connection) else {
            return;
        };
        if let Some(conns) = ctx.state.get_mut(&uid) {
            conns.remove(&connection);
            if conns.is_empty() {
                ctx.state.remove(&uid);
            }
        }
    });

    let mut runtime = pushman::Runtime::new(UidConnections::new())?;
    let addr = runtime.listen(worker)?;
    println!("push: websocket port on {addr}");
    runtime.run()
}

/// Pushes `message` to every connection that has sent its uid; true if one took it.
fn broadcast(ctx: &mut Ctx<'_, UidConnections>, message: &[u8]) -> bool {
    let connections = ctx.state.values().flatten();
    connections.fold(false, |any, c| ctx.io.send(*c, message).is_ok() | any)
}

/// Pushes `message` to every tab of `uid`; true if at least one took it.
fn send_message_by_uid(ctx: &mut Ctx<'_, UidConnections>, uid: &str, message: &[u8]) -> bool {
    let connections = ctx.state.get(uid).into_iter().flatten();
    connections.fold(false, |any, c| ctx.io.send(*c, message).is_ok() | any)
}

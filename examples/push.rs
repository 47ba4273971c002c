//! Workerman's classic push.php, line for line in spirit.
//!
//! Browsers connect to `ws://HOST:1234` and send their uid as the first message. Any backend
//! writes `{"uid":"uid1","percent":"88%"}\n` to `HOST:5678`; that line is pushed to every tab
//! of uid1 and the backend reads `ok` (some tab took it) or `fail`. A line with
//! `"broadcast":true` goes to every uid.
//!
//! ```text
//! cargo run --release --example push -- [WS_ADDR] [TEXT_ADDR]
//! ```

use pushman::{ConnId, Ctx, Message, Worker};
use std::collections::{BTreeSet, HashMap};

/// `$worker->uidConnections`, but a uid may have several tabs.
#[derive(Default)]
struct Push {
    uid_connections: HashMap<String, BTreeSet<ConnId>>,
}

fn main() -> pushman::Result<()> {
    let mut args = std::env::args().skip(1);
    let ws_addr = args.next().unwrap_or_else(|| "0.0.0.0:1234".into());
    let text_addr = args.next().unwrap_or_else(|| "0.0.0.0:5678".into());

    let mut worker = Worker::new(&format!("websocket://{ws_addr}"))?;

    // Once the worker runs, open the internal text port for backends.
    worker.on_worker_start(move |ctx| {
        let mut inner_text_worker = Worker::new(&format!("text://{text_addr}"))?;
        inner_text_worker.on_message(|ctx, connection, buffer| {
            let ok = match uid_of(buffer.as_bytes()) {
                Some(Target::Everyone) => broadcast(ctx, buffer.as_bytes()),
                Some(Target::Uid(uid)) => send_message_by_uid(ctx, &uid, buffer.as_bytes()),
                None => false,
            };
            let _ = ctx.io.send(connection, if ok { "ok" } else { "fail" });
        });
        let addr = ctx.io.listen(inner_text_worker)?;
        println!("push: text port on {addr}");
        Ok(())
    });

    // The first message of a connection is its uid (no verification, as in the original).
    worker.on_message(|ctx, connection, data| {
        if ctx.io.data::<String>(connection).is_some() {
            return;
        }
        let Message::Text(uid) = data else { return };
        ctx.state
            .uid_connections
            .entry(uid.to_string())
            .or_default()
            .insert(connection);
        ctx.io.set_data(connection, uid.to_string());
    });

    // Unbind only this connection: a reconnecting tab's new socket stays bound.
    worker.on_close(|ctx, connection| {
        let Some(uid) = ctx.io.take_data::<String>(connection) else {
            return;
        };
        if let Some(conns) = ctx.state.uid_connections.get_mut(&uid) {
            conns.remove(&connection);
            if conns.is_empty() {
                ctx.state.uid_connections.remove(&uid);
            }
        }
    });

    let mut runtime = pushman::Runtime::new(Push::default())?;
    let addr = runtime.listen(worker)?;
    println!("push: websocket port on {addr}");
    runtime.run()
}

/// Who a backend line is for.
enum Target {
    Everyone,
    Uid(String),
}

/// Reads `"uid"` (or `"broadcast":true`) from a JSON line; `None` for anything malformed.
fn uid_of(line: &[u8]) -> Option<Target> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    if value.get("broadcast").and_then(|b| b.as_bool()) == Some(true) {
        return Some(Target::Everyone);
    }
    Some(Target::Uid(value.get("uid")?.as_str()?.to_string()))
}

/// Pushes `message` to every connection that has sent its uid.
fn broadcast(ctx: &mut Ctx<'_, Push>, message: &[u8]) -> bool {
    let mut any = false;
    for connection in ctx.state.uid_connections.values().flatten() {
        any |= ctx.io.send(*connection, message).is_ok();
    }
    any
}

/// Pushes `message` to every tab of `uid`; true if at least one took it.
fn send_message_by_uid(ctx: &mut Ctx<'_, Push>, uid: &str, message: &[u8]) -> bool {
    let Some(connections) = ctx.state.uid_connections.get(uid) else {
        return false;
    };
    let mut any = false;
    for connection in connections {
        any |= ctx.io.send(*connection, message).is_ok();
    }
    any
}

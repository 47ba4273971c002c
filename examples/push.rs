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
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
};

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
enum Target<'a> {
    Everyone,
    Uid(Cow<'a, str>),
}

/// Reads `"uid"` (or `"broadcast":true`) from a JSON line; `None` for anything malformed.
/// The uid is borrowed from the line unless it has escapes: no allocation per push.
fn uid_of(line: &[u8]) -> Option<Target<'_>> {
    let fields: Fields<'_> = serde_json::from_slice(line).ok()?;
    if fields.broadcast {
        return Some(Target::Everyone);
    }
    fields.uid
}

/// The two fields push.php reads from a JSON object; every other value is skipped unread.
/// Like a `serde_json::Value` lookup: a non-boolean `broadcast` or a non-string `uid` is as
/// good as absent, and a repeated key's last value wins.
struct Fields<'a> {
    broadcast: bool,
    uid: Option<Target<'a>>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            broadcast: false,
            uid: None,
        };
        while let Some(Str(key, _)) = map.next_key::<Str<'de>>()? {
            match key.as_deref() {
                Some("broadcast") => fields.broadcast = map.next_value::<Str<'de>>()?.1,
                Some("uid") => fields.uid = map.next_value::<Str<'de>>()?.0.map(Target::Uid),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// Any JSON value: the string (borrowed if it has no escapes), and whether it is `true`.
struct Str<'a>(Option<Cow<'a, str>>, bool);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Str(Some(Cow::Borrowed(v)), false))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Str(Some(Cow::Owned(v.to_owned())), false))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Str<'de>, E> {
        Ok(Str(None, v))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Str<'de>, E> {
        Ok(Str(None, false))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Str<'de>, E> {
        Ok(Str(None, false))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Str<'de>, E> {
        Ok(Str(None, false))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Str<'de>, E> {
        Ok(Str(None, false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Str<'de>, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Str(None, false))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Str<'de>, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Str(None, false))
    }
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

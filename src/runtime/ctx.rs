//! `Ctx`: what every callback receives: the shared application state and the reactor.

use super::io::Io;

/// The argument of every callback: Workerman's `global $worker` made safe.
///
/// The two fields borrow independently, so a callback can walk its state while sending:
///
/// ```
/// # use pushman::{ConnId, Ctx};
/// # use std::collections::HashMap;
/// fn send_to_uid(ctx: &mut Ctx<'_, HashMap<String, Vec<ConnId>>>, uid: &str, msg: &str) -> bool {
///     let Some(conns) = ctx.state.get(uid) else { return false };
///     conns.iter().fold(false, |ok, &conn| ctx.io.send(conn, msg).is_ok() | ok)
/// }
/// ```
#[derive(Debug)]
pub struct Ctx<'a, S> {
    /// The application state shared by every worker of the reactor.
    pub state: &'a mut S,
    /// Connections, timers, listening and stopping.
    pub io: &'a mut Io<S>,
}

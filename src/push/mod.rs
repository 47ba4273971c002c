//! push.php semantics without sockets: who is online ([`registry`]), what a backend asked
//! ([`command`]) and client tokens ([`token`]). The `pushman` server (the `server/` crate)
//! keeps scheduled pushes durable.

pub mod command;
pub mod inbox;
mod json;
pub mod registry;
pub mod token;

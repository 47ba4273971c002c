//! push.php semantics without sockets: who is online ([`registry`]), what a backend asked
//! ([`command`]), scheduled pushes ([`schedule`], kept healthy by [`store`]) and client
//! tokens ([`token`]).

pub mod command;
mod field;
pub mod inbox;
mod json;
pub mod registry;
pub mod schedule;
pub mod store;
pub mod token;

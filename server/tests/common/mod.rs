//! Helpers shared by the server's integration tests: clients with timeouts (the library's
//! tests' own copy, included by path), and the real `pushman` binary on port 0 ([`daemon`]).
#![allow(dead_code, unreachable_pub)]

#[path = "../../../tests/common/clients.rs"]
mod clients;
pub use clients::*;
#[path = "../../../tests/common/tls.rs"]
pub mod tls;

pub mod cluster;
pub mod daemon;

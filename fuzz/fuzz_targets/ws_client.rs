//! Fuzzes `drivers::ws_client`; the same driver replays the seeds on stable (`tests/fuzz_seeds.rs`).
#![no_main]

#[path = "../drivers.rs"]
mod drivers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| drivers::ws_client(data));

//! What a retained inbox message really costs, measured on the process's resident memory,
//! against what the inbox's byte cap counts. A bench binary (its own process), because RSS
//! is the whole process's: `cargo bench --bench inbox_memory`.

use pushman::push::inbox::{Config, Epoch, Inbox};

/// Resident set size in bytes, from `/proc/self/statm` (pages × 4096).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    // Every inbox stays alive to the end: freed memory would be reused by the next one and
    // hide its growth from RSS.
    let mut keep = Vec::new();
    let mut undercounted = false;
    // (uids, kept per uid, pushes per uid, payload): the last shape pushes three times what
    // a stream keeps, so every stream has turned over twice (the steady state of a busy
    // inbox: evicted fronts, buffers compacted and regrown).
    for (uids, per_uid, pushes, payload) in [
        (10_000, 20, 20, 100),
        (10_000, 20, 20, 20),
        (1_000, 100, 100, 500),
        (100_000, 1, 1, 50),
        (2_000, 100, 100, 10),
        (10_000, 20, 60, 100),
    ] {
        let cfg = Config {
            max_per_uid: per_uid,
            max_bytes: usize::MAX,
            ..Config::default()
        };
        let before = rss();
        let mut ib = Inbox::new(cfg, Epoch(1));
        let text = "x".repeat(payload);
        for m in 0..pushes {
            for u in 0..uids {
                ib.append(&format!("user-{u:06}"), text.as_str(), m as u64);
            }
        }
        let used = rss().saturating_sub(before);
        let n = uids * per_uid;
        let counted = ib.stats().bytes;
        println!(
            "{n} messages of {payload} B kept in {uids} uids ({pushes} pushed each): RSS +{used} B = {} B/message; \
             counted {counted} B = {} B/message; overhead {} B/message",
            used / n,
            counted / n,
            used.saturating_sub(n * payload) / n,
        );
        undercounted |= used > counted;
        keep.push(ib);
    }
    if undercounted {
        eprintln!("the byte cap undercounts real memory in at least one shape");
        std::process::exit(1);
    }
}

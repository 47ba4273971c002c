//! The memory inbox's cost per push on the daemon's hot path, apart from sockets: an
//! `append_uid_at` of a ~40-byte line to a random one of 10,000 uids (with the uid's
//! stream reference, as the registry keeps it, prefetched first), then its `settle` as
//! taken (every uid online), as `bench/run.sh --sweep` drives it. Two phases: filling (the caps not
//! reached) and full (every append also evicts the oldest push of some uid: the 64 MiB cap).
//! `cargo bench --bench inbox_push`; for instruction counts, which the shared machine's load
//! does not move: `valgrind --tool=callgrind target/release/deps/inbox_push-* --quick`.

use pushman::push::inbox::{Config, Epoch, Inbox, StreamRef};
use std::time::Instant;

const UIDS: u64 = 10_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let uids: Vec<String> = (0..UIDS).map(|u| format!("user-{u}")).collect();
    // INBOX_MIB: another memory cap (default: the daemon's, 64 MiB).
    let mut config = Config::default();
    if let Some(mib) = std::env::var("INBOX_MIB")
        .ok()
        .and_then(|m| m.parse::<usize>().ok())
    {
        config.max_bytes = mib << 20;
    }
    let mut inbox = Inbox::new(config, Epoch(1));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut now = 1_700_000_000_000u64;
    let mut n = 0u64;
    let mut known: Vec<Option<StreamRef>> = vec![None; UIDS as usize];
    let mut push = |inbox: &mut Inbox, count: u64| {
        for _ in 0..count {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let index = (rng % UIDS) as usize;
            let uid = &uids[index];
            // The daemon asks for the stream's cache lines first and appends after the
            // push's frames are queued; building the line stands in for that work here.
            if let Some(r) = known[index] {
                inbox.prefetch(r);
            }
            n += 1;
            now += u64::from(n % 64 == 0); // ~64 pushes per ms: 64k/s
            let line = format!(r#"{{"seq":{n},"to":"{uid}","pad":"xxxxxxxx"}}"#);
            // As the daemon's `Live::to_uid` and `settle` do, the text being UTF-8.
            let text = std::str::from_utf8(line.as_bytes()).unwrap_or_default();
            // The daemon's registry keeps each online uid's stream reference.
            let appended = inbox.append_uid_at(known[index], uid, text, now);
            known[index] = Some(appended.stream());
            inbox.settle(uid, appended, true);
        }
    };
    // Filling: the first 200,000 pushes (about 26 MiB counted).
    let fill = if quick { 100_000 } else { 200_000 };
    let t = Instant::now();
    push(&mut inbox, fill);
    let filling = t.elapsed().as_nanos() as f64 / fill as f64;
    // Up to the memory cap.
    while inbox.stats().evicted_memory == 0 {
        push(&mut inbox, 10_000);
    }
    let full_n = if quick { 200_000 } else { 2_000_000 };
    let t = Instant::now();
    push(&mut inbox, full_n);
    let full = t.elapsed().as_nanos() as f64 / full_n as f64;
    let s = inbox.stats();
    println!(
        "filling: {filling:.0} ns/push; full: {full:.0} ns/push ({} kept, {} B counted, \
         {} B/push, {} evicted for memory)",
        s.messages,
        s.bytes,
        s.bytes / s.messages.max(1),
        s.evicted_memory
    );
}

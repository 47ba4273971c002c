//! Push lines and their bookkeeping: every line carries a sequence number from which the
//! harness regenerates the exact bytes and the uid it was for, so each frame a client
//! receives is checked byte for byte, counted once, and timed.

use std::io::Write;

/// Verification state of one phase: what was sent, what arrived, how late.
#[derive(Debug)]
pub struct Book {
    /// Number of clients (uids `u0..u{n-1}`).
    pub n: usize,
    /// Characters of padding in each line.
    pub pad: usize,
    /// First seq of the phase; seqs below it are strays from an earlier phase.
    pub base: u64,
    /// Next seq to send.
    pub next: u64,
    /// Per seq (from `base`): how many times it was received.
    pub counts: Vec<u8>,
    /// Per seq: when it was written, in ns since the harness's epoch.
    pub sent_ns: Vec<u64>,
    /// Latencies of first receipts, in ns.
    pub latencies: Vec<u64>,
    /// Frames received (unicast and broadcast, duplicates included).
    pub delivered: u64,
    /// Frames whose bytes differ from the line sent, or that reached the wrong uid.
    pub corrupted: u64,
    /// Intact-looking frames of an earlier phase that arrived late (not counted as corrupt).
    pub strays: u64,
    /// Broadcast in flight: its seq, and per client whether it arrived.
    pub bcast: Option<(u64, Vec<u8>)>,
    /// Clients the current broadcast reached, and the time of the last receipt.
    pub bcast_got: usize,
    pub bcast_last_ns: u64,
    /// Scratch for regenerating lines.
    scratch: Vec<u8>,
}

/// splitmix64: a fast, good-enough mix so that seq → uid looks random.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Book {
    pub fn new(n: usize, pad: usize) -> Self {
        Self {
            n,
            pad,
            base: 0,
            next: 0,
            counts: Vec::new(),
            sent_ns: Vec::new(),
            latencies: Vec::new(),
            delivered: 0,
            corrupted: 0,
            strays: 0,
            bcast: None,
            bcast_got: 0,
            bcast_last_ns: 0,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Starts a phase: new seqs from here on, counters zeroed.
    pub fn reset(&mut self) {
        self.base = self.next;
        self.counts.clear();
        self.sent_ns.clear();
        self.latencies.clear();
        self.delivered = 0;
        self.corrupted = 0;
        self.strays = 0;
        self.bcast = None;
    }

    /// The uid a unicast seq is for: random, yet reproducible from the seq alone.
    pub fn uid_of(&self, seq: u64) -> usize {
        (mix(seq) % self.n as u64) as usize
    }

    /// Writes the unicast line for `seq` (without `\n`) into `out`.
    pub fn unicast_line(&self, seq: u64, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{{\"uid\":\"u{}\",\"seq\":{seq},\"pad\":\"",
            self.uid_of(seq)
        );
        pad(seq, self.pad, out);
        out.extend_from_slice(b"\"}");
    }

    /// Writes the broadcast line for `seq` (without `\n`) into `out`.
    pub fn broadcast_line(&self, seq: u64, out: &mut Vec<u8>) {
        let _ = write!(out, "{{\"broadcast\":true,\"seq\":{seq},\"pad\":\"");
        pad(seq, self.pad, out);
        out.extend_from_slice(b"\"}");
    }

    /// Takes the next seq, recording it as sent at `now_ns`.
    pub fn take_seq(&mut self, now_ns: u64) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.counts.push(0);
        self.sent_ns.push(now_ns);
        seq
    }

    /// Sent seqs never received (after the drain).
    pub fn lost(&self) -> u64 {
        self.counts.iter().filter(|&&c| c == 0).count() as u64
    }

    /// Extra receipts of seqs already received.
    pub fn duplicated(&self) -> u64 {
        self.counts
            .iter()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum()
    }

    /// Whether every seq sent has arrived at least once.
    pub fn all_received(&self) -> bool {
        self.counts.iter().all(|&c| c > 0)
    }

    /// Checks and records one text frame that `client` received at `now_ns`.
    pub fn on_frame(&mut self, client: usize, payload: &[u8], now_ns: u64) {
        self.delivered += 1;
        let Some(seq) = seq_of(payload) else {
            self.corrupted += 1;
            return;
        };
        if seq < self.base {
            self.strays += 1;
            return;
        }
        let mut expect = std::mem::take(&mut self.scratch);
        expect.clear();
        let is_bcast = payload.starts_with(b"{\"broadcast\"");
        if is_bcast {
            self.broadcast_line(seq, &mut expect);
        } else if seq >= self.base && seq < self.next {
            self.unicast_line(seq, &mut expect);
        }
        let intact = expect == payload;
        self.scratch = expect;
        if !intact {
            self.corrupted += 1;
            return;
        }
        if is_bcast {
            self.on_broadcast(client, seq, now_ns);
            return;
        }
        if self.uid_of(seq) != client {
            self.corrupted += 1;
            return;
        }
        let i = (seq - self.base) as usize;
        if self.counts[i] == 0 {
            self.latencies.push(now_ns.saturating_sub(self.sent_ns[i]));
        }
        self.counts[i] = self.counts[i].saturating_add(1);
    }

    fn on_broadcast(&mut self, client: usize, seq: u64, now_ns: u64) {
        match &mut self.bcast {
            Some((s, got)) if *s == seq => {
                if got[client] == 0 {
                    self.bcast_got += 1;
                    self.bcast_last_ns = now_ns;
                }
                got[client] = got[client].saturating_add(1);
            }
            // A broadcast that is not the current one: late, hence a duplicate or stray.
            _ => self.corrupted += 1,
        }
    }

    /// Begins tracking broadcast `seq` across all clients.
    pub fn start_broadcast(&mut self, seq: u64) {
        self.bcast = Some((seq, vec![0; self.n]));
        self.bcast_got = 0;
        self.bcast_last_ns = 0;
    }

    /// Clients that got the current broadcast more than once (extra copies).
    pub fn broadcast_duplicates(&self) -> u64 {
        self.bcast.as_ref().map_or(0, |(_, got)| {
            got.iter().map(|&c| u64::from(c.saturating_sub(1))).sum()
        })
    }
}

/// Padding varies with the seq so a frame mixed up with another one cannot match.
fn pad(seq: u64, len: usize, out: &mut Vec<u8>) {
    out.extend((0..len as u64).map(|i| b'a' + ((seq + i) % 26) as u8));
}

/// The number after `"seq":` in a line.
fn seq_of(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq\":";
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// p-th percentile (0..=100) of `sorted`, in µs.
pub fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_verifies_against_itself_only_at_its_uid() {
        let mut book = Book::new(100, 8);
        book.reset();
        let seq = book.take_seq(0);
        let mut line = Vec::new();
        book.unicast_line(seq, &mut line);
        let uid = book.uid_of(seq);
        book.on_frame(uid, &line, 5);
        assert_eq!((book.corrupted, book.lost(), book.duplicated()), (0, 0, 0));
        book.on_frame(uid, &line, 6);
        assert_eq!(book.duplicated(), 1);
        book.on_frame((uid + 1) % 100, &line, 7);
        line[3] ^= 1;
        book.on_frame(uid, &line, 8);
        assert_eq!(book.corrupted, 2);
        assert_eq!(book.latencies, vec![5]);
    }
}

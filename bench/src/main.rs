//! `pushman-bench`: drives a push server speaking the push.php protocol (WebSocket clients
//! that send their uid first; JSON lines on a text port answered `ok`/`fail`) and measures
//! connects/s, memory per idle connection, unicast throughput with byte-for-byte checks,
//! push latency at fixed rates, broadcast fan-out, and the server's CPU share per phase.
//!
//! It knows the server only by its two addresses and its pid, so it measures pushman,
//! tokio-ref and Workerman alike. One thread, one mio `Poll`: see `gen.rs`.
//!
//! Prints a table, then one JSON line with every figure (last line of stdout).

mod book;
mod gen;
mod peer;
mod phases;
mod sys;
mod tls;

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use std::{net::IpAddr, net::SocketAddr, process::ExitCode};

#[derive(Debug, Parser)]
#[command(about = "Load generator for push.php-protocol servers (loopback only)")]
struct Args {
    /// The server's WebSocket address.
    #[arg(long)]
    ws: SocketAddr,
    /// The server's text (backend) address.
    #[arg(long)]
    text: SocketAddr,
    /// The server's pid, for its RSS and CPU time.
    #[arg(long)]
    pid: String,
    /// WebSocket clients (uids u0..uN-1); at most ~19,900 with a 20,000 open-files limit.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Pipelined backend connections on the text port.
    #[arg(long, default_value_t = 4)]
    backends: usize,
    /// Seconds of each timed phase (unicast, and each latency rate).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Source addresses the clients bind to, round-robin.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
    )]
    sources: Vec<IpAddr>,
    /// Which phases to run (connect always runs: the others need the clients).
    #[arg(long, value_enum, default_value_t = Phase::All)]
    phase: Phase,
    /// Pushes outstanding per backend in the unicast phase.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Instead of the phases: connect, then one unicast run per `BACKENDSxWINDOW` row (each
    /// `--duration` long, drained before the next), e.g. `1x1,4x4,4x32,4x256,4x1024`.
    /// Backends beyond `--backends` are opened as needed.
    #[arg(long, value_delimiter = ',', value_parser = parse_row)]
    sweep: Vec<Row>,
    /// Padding characters in each pushed line.
    #[arg(long, default_value_t = 16)]
    pad: usize,
    /// Fixed rates (pushes/s) of the latency phase.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    rates: Vec<f64>,
    /// Broadcasts in the broadcast phase.
    #[arg(long, default_value_t = 5)]
    broadcasts: usize,
    /// Clients speak wss:// (rustls; any server certificate is accepted).
    #[arg(long)]
    tls: bool,
    /// A label copied into the JSON line (e.g. the server's name).
    #[arg(long, default_value = "")]
    label: String,
    /// The pushman daemon's HTTP API: its `/status` is read around each unicast run, for
    /// the inbox's figures (commits of a durable inbox per second, bytes per kept push).
    #[arg(long)]
    status: Option<SocketAddr>,
}

/// One row of a sweep: how many backends, each with how many pushes outstanding.
#[derive(Debug, Clone, Copy)]
struct Row {
    backends: usize,
    window: usize,
}

fn parse_row(s: &str) -> Result<Row, String> {
    let (b, w) = s
        .split_once('x')
        .ok_or_else(|| format!("{s}: expected BACKENDSxWINDOW, e.g. 4x256"))?;
    let num = |v: &str| v.parse::<usize>().ok().filter(|&n| n > 0);
    match (num(b), num(w)) {
        (Some(backends), Some(window)) => Ok(Row { backends, window }),
        _ => Err(format!(
            "{s}: backends and window must be positive integers"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    All,
    Connect,
    Unicast,
    Latency,
    Broadcast,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushman-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let nofile = sys::raise_nofile();
    if (nofile as usize) < args.conns + args.backends + 64 {
        eprintln!(
            "pushman-bench: open-files limit {nofile} is too low for {} clients",
            args.conns
        );
    }
    let mut g = gen::Gen::new(args.ws, args.conns, args.pad, args.tls)?;
    let backends = args
        .sweep
        .iter()
        .map(|r| r.backends)
        .fold(args.backends, usize::max);
    g.connect_backends(args.text, backends)?;
    let wants = |p: Phase| args.phase == Phase::All || args.phase == p;
    let mut out = json!({
        "label": args.label,
        "conns": args.conns,
        "backends": args.backends,
        "duration": args.duration,
        "sources": args.sources.len(),
    });
    out["connect"] = phases::connect(&mut g, &args.pid, &args.sources)?;
    if !args.sweep.is_empty() {
        let mut rows = Vec::new();
        for row in &args.sweep {
            let before = args.status.map(sys::daemon_status);
            let start = std::time::Instant::now();
            let mut v =
                phases::unicast(&mut g, &args.pid, args.duration, row.backends, row.window)?;
            if let (Some(before), Some(addr)) = (before, args.status) {
                inbox_figures(&before, &sys::daemon_status(addr), start.elapsed(), &mut v);
            }
            v["backends"] = json!(row.backends);
            v["in_flight"] = json!(row.backends * row.window);
            rows.push(v);
        }
        out["sweep"] = json!(rows);
        g.shutdown();
        print_table(&out);
        println!("{out}");
        return Ok(());
    }
    if wants(Phase::Unicast) {
        let before = args.status.map(sys::daemon_status);
        let start = std::time::Instant::now();
        out["unicast"] =
            phases::unicast(&mut g, &args.pid, args.duration, args.backends, args.window)?;
        if let (Some(before), Some(addr)) = (before, args.status) {
            let after = sys::daemon_status(addr);
            inbox_figures(&before, &after, start.elapsed(), &mut out["unicast"]);
        }
    }
    if wants(Phase::Latency) {
        let runs: Vec<Value> = args
            .rates
            .iter()
            .map(|&rate| phases::latency(&mut g, &args.pid, args.duration, rate))
            .collect::<Result<_, _>>()?;
        out["latency"] = json!(runs);
    }
    if wants(Phase::Broadcast) {
        out["broadcast"] = phases::broadcast(&mut g, &args.pid, args.broadcasts)?;
    }
    g.shutdown();
    print_table(&out);
    println!("{out}");
    Ok(())
}

/// The daemon's inbox over a run (from its `/status` before and after): commits (syncs)
/// of a durable inbox per second of the run and its drain, records per commit, and the
/// bytes the inbox counts per kept push at the end.
fn inbox_figures(before: &Value, after: &Value, elapsed: std::time::Duration, v: &mut Value) {
    let delta = |key: &str| {
        after["inbox_journal"][key].as_f64().unwrap_or(0.0)
            - before["inbox_journal"][key].as_f64().unwrap_or(0.0)
    };
    if after["inbox_journal"].is_object() {
        let commits = delta("commits");
        v["commits_per_sec"] = json!(commits / elapsed.as_secs_f64());
        v["records_per_commit"] = json!(delta("records") / commits.max(1.0));
        v["commit_us"] = json!(delta("commit_us") / commits.max(1.0));
        v["journal_failures"] = json!(delta("failures"));
        v["journal_snapshots"] = json!(delta("snapshots"));
    }
    let inbox = &after["inbox"];
    if let (Some(bytes), Some(messages)) = (inbox["bytes"].as_f64(), inbox["messages"].as_f64()) {
        v["inbox_messages"] = json!(messages);
        v["inbox_bytes_per_message"] = json!(bytes / messages.max(1.0));
        if let Some(log) = after["inbox_journal"]["bytes"].as_f64() {
            v["journal_bytes_per_message"] = json!(log / messages.max(1.0));
        }
    }
}

/// A phase's lost / duplicated / corrupted frames and `fail` answers, as one table row.
fn print_errors(label: &str, phase: &Value) {
    let counts = format!(
        "{}/{}/{}/{}",
        phase["lost"], phase["duplicated"], phase["corrupted"], phase["fail"]
    );
    println!("{label:<34} {counts:>14}");
}

/// A human-readable summary of `out`.
fn print_table(out: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.1}"));
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.0}%", x * 100.0))
    };
    let c = &out["connect"];
    println!(
        "{:<34} {:>14} {:>12} {:>10}",
        "metric", "value", "server cpu", "gen cpu"
    );
    println!(
        "{:<34} {:>14} {:>12} {:>10}",
        format!("connects/s ({} clients)", c["clients"]),
        f(&c["per_sec"]),
        pct(&c["server_cpu"]),
        pct(&c["gen_cpu"])
    );
    println!(
        "{:<34} {:>14}",
        "bytes per idle connection",
        f(&c["bytes_per_conn"])
    );
    if let Some(u) = out.get("unicast") {
        let row = |name: &str, key: &str| {
            println!(
                "{:<34} {:>14} {:>12} {:>10}",
                name,
                f(&u[key]),
                pct(&u["server_cpu"]),
                pct(&u["gen_cpu"])
            )
        };
        row("unicast pushes/s acked", "acked_per_sec");
        row("unicast pushes/s delivered", "delivered_per_sec");
        print_errors("lost/dup/corrupt/fail", u);
    }
    for l in out
        .get("latency")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "{:<34} {:>14} {:>12} {:>10}",
            format!("latency @{}/s p50/p99/p99.9 µs", l["rate"]),
            format!(
                "{}/{}/{}",
                f(&l["p50_us"]),
                f(&l["p99_us"]),
                f(&l["p999_us"])
            ),
            pct(&l["server_cpu"]),
            pct(&l["gen_cpu"])
        );
        print_errors("  lost/dup/corrupt/fail", l);
    }
    for row in out
        .get("sweep")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "{:<34} {:>14} {:>12} {:>10}",
            format!("sweep {}x{} delivered/s", row["backends"], row["window"]),
            f(&row["delivered_per_sec"]),
            pct(&row["server_cpu"]),
            pct(&row["gen_cpu"])
        );
        print_errors("  lost/dup/corrupt/fail", row);
        if row.get("commits_per_sec").is_some() {
            println!(
                "{:<34} {:>14}",
                "  commits/s (records, µs each)",
                format!(
                    "{} ({}, {} µs)",
                    f(&row["commits_per_sec"]),
                    f(&row["records_per_commit"]),
                    f(&row["commit_us"])
                )
            );
        }
        if row.get("inbox_bytes_per_message").is_some() {
            println!(
                "{:<34} {:>14}",
                "  inbox bytes per kept push",
                f(&row["inbox_bytes_per_message"])
            );
        }
    }
    if let Some(b) = out.get("broadcast") {
        println!(
            "{:<34} {:>14} {:>12} {:>10}",
            "broadcast deliveries/s",
            f(&b["deliveries_per_sec"]),
            pct(&b["server_cpu"]),
            pct(&b["gen_cpu"])
        );
        println!(
            "{:<34} {:>14}",
            "broadcast median ms to last",
            f(&b["median_to_last_ms"])
        );
        print_errors("  lost/dup/corrupt/fail", b);
    }
}

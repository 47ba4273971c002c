#!/usr/bin/env python3
"""Medians per server of pushman-bench JSON lines, side by side, with ratios of each pushman
server to tokio-ref and to the ceiling server. Lines of a sweep (`--sweep`) give one row per
burst depth instead."""
import json, statistics, sys

rows = [  # (label, path, higher is better)
    ("connects/s", ("connect", "per_sec"), True),
    ("server CPU µs per connect", ("connect", "server_us_per_conn"), False),
    ("generator CPU in connect", ("connect", "gen_cpu"), False),
    ("bytes per idle connection", ("connect", "bytes_per_conn"), False),
    ("unicast pushes/s delivered", ("unicast", "delivered_per_sec"), True),
    ("unicast pushes/s acked", ("unicast", "acked_per_sec"), True),
    ("unicast server CPU", ("unicast", "server_cpu"), False),
    ("unicast generator CPU", ("unicast", "gen_cpu"), False),
    ("server CPU µs per push", ("unicast", "server_us_per_push"), False),
    ("latency p50 µs @1k/s", ("latency", 0, "p50_us"), False),
    ("latency p99 µs @1k/s", ("latency", 0, "p99_us"), False),
    ("latency p50 µs @10k/s", ("latency", 1, "p50_us"), False),
    ("latency p99 µs @10k/s", ("latency", 1, "p99_us"), False),
    ("latency p99.9 µs @10k/s", ("latency", 1, "p999_us"), False),
    ("server CPU @10k/s", ("latency", 1, "server_cpu"), False),
    ("broadcast deliveries/s", ("broadcast", "deliveries_per_sec"), True),
    ("broadcast ms to last (median)", ("broadcast", "median_to_last_ms"), False),
]

def get(d, path):
    for p in path:
        try:
            d = d[p]
        except (KeyError, IndexError, TypeError):
            return None
    return d

def derived(d):
    """Server CPU µs per delivered push and per connect: less sensitive to a busy host, or to
    a generator that is the bottleneck, than rates are."""
    u = d.get("unicast") or {}
    if u.get("server_cpu") and u.get("delivered_per_sec"):
        u["server_us_per_push"] = u["server_cpu"] / u["delivered_per_sec"] * 1e6
    c = d.get("connect") or {}
    if c.get("server_cpu") and c.get("clients"):
        c["server_us_per_conn"] = c["server_cpu"] * c["secs"] / c["clients"] * 1e6
    return d

def errors(d):
    total = 0
    for phase in [d.get("unicast")] + (d.get("latency") or []) + [d.get("broadcast")]:
        if phase:
            total += sum(phase.get(k, 0) for k in ("lost", "duplicated", "corrupted"))
    return total

def sweep_table(runs):
    """Delivered/s per depth and server (medians), ratios, and both CPU shares per cell."""
    labels = list(runs)
    refs = [r for r in ("tokio-ref", "ceiling") if r in runs]
    ours = [l for l in labels if l not in refs]
    cells = {}  # (label, backends, window) -> [row, ...]
    order = []
    for label, ds in runs.items():
        for d in ds:
            for row in d["sweep"]:
                key = (row["backends"], row["window"])
                if key not in order:
                    order.append(key)
                cells.setdefault((label,) + key, []).append(row)
    def m(label, key, field):
        vals = [r[field] for r in cells.get((label,) + key, []) if isinstance(r.get(field), (int, float))]
        return statistics.median(vals) if vals else None
    n = max(len(ds) for ds in runs.values())
    short = {"tokio-ref": "tokio", "ceiling": "ceil"}
    ratio_cols = [(l, r) for r in refs for l in ours]
    if "pushman" in ours and "daemon" in ours:
        ratio_cols.append(("daemon", "pushman"))
    # The inbox's cost: each inbox mode against the daemon without it, same run.
    ratio_cols += [(l, "daemon") for l in ("daemon+inbox", "daemon+durable") if l in ours and "daemon" in ours]
    print(f"unicast delivered/s by burst depth, median of {n}; cells: rate (server CPU / generator CPU)")
    head = f"{'in flight':>10} {'BxW':>7}" + "".join(f"{l:>24}" for l in labels)
    head += "".join(f"{(short.get(l, l) + '/' + short.get(r, r)):>13}" for l, r in ratio_cols)
    print(head)
    for key in order:
        line = f"{key[0] * key[1]:>10} {str(key[0]) + 'x' + str(key[1]):>7}"
        for l in labels:
            v, s, g = (m(l, key, f) for f in ("delivered_per_sec", "server_cpu", "gen_cpu"))
            cell = "-" if v is None else f"{v:,.0f} ({(s or 0) * 100:.0f}/{(g or 0) * 100:.0f}%)"
            line += f"{cell:>24}"
        for l, r in ratio_cols:
            a, b = m(l, key, "delivered_per_sec"), m(r, key, "delivered_per_sec")
            line += f"{(f'{a / b:.2f}' if a is not None and b else '-'):>13}"
        print(line)
    inbox = [l for l in labels if any("inbox_bytes_per_message" in r for d in runs[l] for r in d["sweep"])]
    if inbox:
        print("inbox figures (median): commits/s of the durable log, records per commit, bytes per kept push")
        for key in order:
            line = f"{key[0] * key[1]:>10} {str(key[0]) + 'x' + str(key[1]):>7}"
            for l in inbox:
                c, r, b = (m(l, key, f) for f in ("commits_per_sec", "records_per_commit", "inbox_bytes_per_message"))
                cell = (f"{c:,.0f}/s x {r:,.0f}, " if c is not None else "") + (f"{b:,.0f} B" if b is not None else "-")
                line += f"{l + ': ' + cell:>44}"
            print(line)
    for l in labels:
        bad = sum(sum(r.get(k, 0) for k in ("lost", "duplicated", "corrupted"))
                  for d in runs[l] for r in d["sweep"])
        print(f"{l}: lost+duplicated+corrupted over all runs = {bad}")

runs = {}
for line in open(sys.argv[1]):
    d = derived(json.loads(line))
    runs.setdefault(d["label"], []).append(d)
if any("sweep" in d for ds in runs.values() for d in ds):
    sweep_table({l: [d for d in ds if "sweep" in d] for l, ds in runs.items()})
    sys.exit(0)
labels = list(runs)
# Ratios against the reference (tokio-ref) and the kernel's ceiling, where they were run.
refs = [r for r in ("tokio-ref", "ceiling") if r in runs]
ours = [l for l in labels if l not in refs]

def med(label, path):
    vals = [v for v in (get(d, path) for d in runs.get(label, [])) if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None

def fmt(v):
    return "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")

ratio_cols = [(l, r) for r in refs for l in ours]
short = {"tokio-ref": "tokio", "ceiling": "ceil"}
# A TLS run beside its plain twin (daemon-tls and daemon): what TLS costs, same run.
for l in [l for l in labels if l.endswith("-tls") and l[:-4] in runs]:
    ratio_cols.append((l, l[:-4]))
    short[l[:-4]] = "plain"
n = max(len(r) for r in runs.values())
header = f"{'metric (median of ' + str(n) + ')':<32}" + "".join(f"{l:>11}" for l in labels)
header += "".join(f"{l + '/' + short[r]:>15}" for l, r in ratio_cols)
print(header)
for name, path, _ in rows:
    vals = {l: med(l, path) for l in labels}
    line = f"{name:<32}" + "".join(f"{fmt(vals[l]):>11}" for l in labels)
    for l, r in ratio_cols:
        a, b = vals[l], vals[r]
        line += f"{(f'{a / b:.2f}' if a is not None and b else '-'):>15}"
    print(line)
for l in labels:
    print(f"{l}: lost+duplicated+corrupted over all runs = {sum(errors(d) for d in runs[l])}")

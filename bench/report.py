"""Turn a results JSON (run.py) into the console table and docs/benchmarks.md."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

OURS = "ms2"
FLOOR = "floor"
RATE_SCENARIOS = ("fanout-100", "fanout-1000", "echo")
PEERS = ("ms1", "sio", "wsb", "node")

METHOD = """\
## How it is measured

- Servers run pinned to core 0 (`taskset -c 0`), one load generator process pinned to
  core 1 (`bench/loadgen.py`: one asyncio event loop on
  uvloop, a minimal WebSocket client in `bench/wsclient.py` that parses frame headers in
  place and creates no object per frame). Both raise `RLIMIT_NOFILE` to the hard limit;
  clients connect from 127.0.0.2-9 so that ports never run short.
- Every message carries a sequence number and a pad; after each timed phase every
  receiver's messages are decoded and checked for loss, duplication, order and content.
  A run with any problem makes `make bench` fail (listed under "Problems" below).
- Fan-out and echo: every server runs at once (idle ones cost no CPU); the generator
  connects to all of them, runs a warm-up round on each, then timed round 1 on each server
  in turn, round 2 starting with the next server, and so on. Load from elsewhere on the
  machine thus falls on every server alike. Idle memory and slow consumer start a fresh
  server for each run. The tables give the median of the timed rounds and, in brackets,
  their range (min-max).
- The same app (the events `join`, `publish`, `echo`) is written for each server:
  `bench/servers/ms_app.py` (microsockets 1.0.0 and 2.x), `sio_app.py`, `ws_broadcast.py`,
  `node_ws.js`. Messages are JSON text frames of about 100 bytes.

Scenarios:

1. **fan-out**: N receivers join one room; a sender writes 100 `publish` frames in one
   go; deliveries/s = N x 100 / (last delivery - first send). N = 100 and 1,000.
2. **echo**: 100 clients, each in a closed loop of 1,000 request/response round-trips per
   round (`ws.emit` back, not an ack, so every server does the same work); round-trips/s over
   the wall time, and the latency of each round-trip (p50, p99).
3. **idle memory**: server RSS with 1,000 and then 10,000 open connections that have each
   joined a room, minus the RSS after startup and a warm-up; divided by the count.
4. **slow consumer**: fan-out to 100 receivers plus one whose socket stops being read
   (its receive buffer set to 4 KiB): the sender publishes the next 100 messages when the
   reading receivers have all the previous ones, for 8 s with the extra receiver reading,
   then for 8 s with it stalled. Messages here are ~1,000 bytes, so that the stalled
   client's backlog (several MB) outgrows what the kernel's socket buffers absorb on
   loopback (up to 4 MiB) and the server itself has to deal with it. Reported: the
   readers' rate while stalled / while not, the server's RSS over the stalled phase, and
   what happened to the stalled client.

## Profiling

`python bench/profile.py fanout-1000` (or `fanout-100`, `echo`; `--server ms1` for 1.0.0)
runs one server under py-spy while the generator drives it and prints the functions with
the most samples and the server's CPU time per delivered message.
`python bench/profile.py memory` traces allocations with tracemalloc and prints the source
lines that hold the most memory per idle connection. Both need the venvs `make bench` makes.
"""


def median_range(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    return statistics.median(values), min(values), max(values)


def _runs(result: dict[str, Any] | None, field: str) -> list[float]:
    if not result or "runs" not in result:
        return []
    return [run[field] for run in result["runs"] if run.get(field) == run.get(field)]


def metric(result: dict[str, Any] | None, field: str = "rate") -> float:
    return median_range(_runs(result, field))[0]


def fmt_range(result: dict[str, Any] | None, field: str = "rate", digits: int = 0) -> str:
    values = _runs(result, field)
    if not values:
        return "failed" if result else "-"
    mid, lo, hi = median_range(values)
    return f"{mid:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


def idle_point(result: dict[str, Any] | None, count: int) -> float:
    for point in (result or {}).get("points", []):
        if point["connections"] == count:
            return float(point["per_conn_kib"])
    return float("nan")


def slow_summary(result: dict[str, Any] | None) -> dict[str, Any]:
    if not result or "phases" not in result:
        return {}
    stall_start = result["phases"]["reading"]["t_end"]
    during = [kib for t, kib in result["rss"] if t >= stall_start] or [0]
    before = [kib for t, kib in result["rss"] if t < stall_start] or during
    code = result["stalled_close_code"]
    if code:
        fate = f"closed with {code}"
    elif result.get("stalled_open", True):
        fate = "kept open"
    else:
        fate = "dropped (no close frame)"
    return {
        "ratio": result["ratio"],
        "growth_mib": (max(during) - before[-1]) / 1024,
        "peak_mib": max(during) / 1024,
        "fate": fate,
        "received": result["stalled_received"],
        "published": result["published"],
    }


def headline(name: str, result: dict[str, Any]) -> str:
    """One short line for the progress output."""
    if "error" in result:
        return "FAILED"
    if name.startswith("fanout"):
        return f"{metric(result):,.0f} deliveries/s"
    if name == "echo":
        return f"{metric(result):,.0f} rt/s p99 {metric(result, 'p99_ms'):.1f} ms"
    if name == "idle":
        last = result["points"][-1]
        return f"{last['per_conn_kib']:.1f} KiB/conn @{last['connections']}"
    if name == "slow":
        summary = slow_summary(result)
        return f"x{summary['ratio']:.2f}, +{summary['growth_mib']:.1f} MiB"
    if name == "flood":
        return (
            f"rt p50 {result['before_ms']['p50']:.1f} -> {result['during_ms']['p50']:.1f} ms, "
            f"back in {fmt_seconds(result['recovery_s'])}"
        )
    return "done"


def fmt_seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def is_variant(key: str) -> bool:
    """Rows of the settings table: ours with one setting changed, and the bare ASGI floor."""
    return key.startswith(OURS + "-") or key == FLOOR


def rows(data: dict[str, Any], variants: bool = False) -> list[list[str]]:
    """The results table: the main comparison, or ours and its variants."""
    header = [
        "server",
        "fan-out 100 (msg/s)",
        "fan-out 1000 (msg/s)",
        "echo (rt/s)",
        "echo p50 / p99 (ms)",
        "idle KiB/conn 1k / 10k",
        "slow: rate kept, RSS",
    ]
    out = [header]
    for key, by_name in data["results"].items():
        if is_variant(key) != variants and not (variants and key == OURS):
            continue
        slow = slow_summary(by_name.get("slow"))
        echo = by_name.get("echo")
        out.append(
            [
                data["targets"][key]["label"],
                fmt_range(by_name.get("fanout-100")),
                fmt_range(by_name.get("fanout-1000")),
                fmt_range(echo),
                f"{metric(echo, 'p50_ms'):.2f} / {metric(echo, 'p99_ms'):.2f}" if echo else "-",
                " / ".join(
                    f"{p['per_conn_kib']:.1f}" for p in by_name.get("idle", {}).get("points", [])
                )
                or "-",
                f"{slow['ratio']:.0%}, +{slow['growth_mib']:.1f} MiB, {slow['fate']}"
                if slow
                else "-",
            ]
        )
    return out


def table(data: dict[str, Any]) -> str:
    """A plain-text table for the console: the main comparison, then ours and its variants."""
    grid = rows(data)
    if any(is_variant(key) for key in data["results"]):
        grid += [[""] * len(grid[0]), *rows(data, variants=True)[1:]]
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in grid
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines += [f"{name}: {text}" for name, text in target_lines(data)]
    return "\n".join(lines)


def markdown_table(grid: list[list[str]]) -> str:
    lines = ["| " + " | ".join(grid[0]) + " |", "|" + " --- |" * len(grid[0])]
    lines += ["| " + " | ".join(row) + " |" for row in grid[1:]]
    return "\n".join(lines)


def _ratio(ours: float, peer: float) -> float:
    return ours / peer if peer and peer == peer else float("nan")


def paired(
    ours: dict[str, Any] | None, theirs: dict[str, Any] | None, field: str = "rate"
) -> tuple[float, float, float]:
    """Median, min and max of the round-by-round ratios ours/theirs. Rounds are interleaved,
    so round i of both servers ran side by side, under the same load from elsewhere."""
    a = [run[field] for run in (ours or {}).get("runs", [])]
    b = [run[field] for run in (theirs or {}).get("runs", [])]
    pairs = zip(a, b, strict=False)  # a failed server may have fewer rounds
    return median_range([x / y for x, y in pairs if x == x and y == y and y])


def fmt_paired(stats: tuple[float, float, float]) -> str:
    mid, lo, hi = stats
    return f"{mid:.2f}x ({lo:.2f}-{hi:.2f})"


def target_lines(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Each target of issue 6 with its measured ratio (median of paired rounds, range), and
    whether it is met."""
    res = data["results"]
    if OURS not in res:
        return []
    ours = res[OURS]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    floor = res.get(FLOOR, {})

    def against_floor(name: str, peer: str) -> str:
        """How the bare ASGI app and ours compare on `name`: the ceiling on the same uvicorn."""
        if name not in floor:
            return ""
        ceiling = paired(floor[name], res[peer][name])[0]
        share = paired(ours.get(name), floor[name])[0]
        return f"; the bare ASGI app on the same uvicorn: {ceiling:.2f}x, ours {share:.2f}x of it"

    out = []
    for peer, goal in (("ms1", 1.3), ("sio", 4.0), ("wsb", 0.9)):
        if peer in res and "fanout-1000" in res[peer]:
            stats = paired(ours.get("fanout-1000"), res[peer]["fanout-1000"])
            label = f"fan-out-1000 vs {data['targets'][peer]['label']} (>= {goal}x)"
            context = against_floor("fanout-1000", peer) if peer == "wsb" else ""
            out.append((label, f"{fmt_paired(stats)}{context} {verdict(stats[0] >= goal)}"))
    if "ms1" in res and "echo" in res["ms1"]:
        stats = paired(ours.get("echo"), res["ms1"]["echo"])
        context = against_floor("echo", "ms1")
        out.append(
            (
                "echo throughput vs microsockets 1.0.0 (>= 1.1x)",
                f"{fmt_paired(stats)}{context} {verdict(stats[0] >= 1.1)}",
            )
        )
        stats = paired(ours.get("echo"), res["ms1"]["echo"], "p99_ms")
        out.append(
            (
                "echo p99, ours / microsockets 1.0.0 (<= 1.0x)",
                f"{fmt_paired(stats)} {verdict(stats[0] <= 1.0)}",
            )
        )
    for library, goal in (("msgspec", 0.9), ("pydantic", None)):
        typed = res.get(f"{OURS}-{library}", {}).get("echo")
        if typed and "echo" in ours:
            stats = paired(typed, ours["echo"])
            aim = f" (>= {goal}x)" if goal else " (stated)"
            out.append(
                (
                    f"echo with a typed handler ({library}) vs untyped{aim}",
                    fmt_paired(stats) + (f" {verdict(stats[0] >= goal)}" if goal else ""),
                )
            )
    if "ms1" in res and "idle" in res["ms1"] and "idle" in ours:
        m_ours = idle_point(ours.get("idle"), 10000)
        m_old = idle_point(res["ms1"].get("idle"), 10000)
        r = _ratio(m_ours, m_old)
        m_floor = idle_point(floor.get("idle"), 10000)
        note = (
            f"; the bare ASGI app on the same uvicorn needs {m_floor:.1f}"
            if m_floor == m_floor
            else ""
        )
        out.append(
            (
                "idle memory/conn at 10k vs microsockets 1.0.0 (<= 0.8x)",
                f"{r:.2f}x ({m_ours:.1f} vs {m_old:.1f} KiB{note}) {verdict(r <= 0.8)}",
            )
        )
    slow = slow_summary(ours.get("slow"))
    if slow:
        out.append(
            (
                "slow consumer: readers keep >= 90% of their rate",
                f"{slow['ratio']:.0%} {verdict(slow['ratio'] >= 0.9)}",
            )
        )
        out.append(
            (
                "slow consumer: RSS bounded (growth < 8 MiB)",
                f"+{slow['growth_mib']:.1f} MiB, stalled client {slow['fate']} "
                f"{verdict(slow['growth_mib'] < 8)}",
            )
        )
    return out


def ratio_table(data: dict[str, Any]) -> str:
    """microsockets 2.x against each peer, per metric, as "better by" factors (> 1: ours wins)."""
    res = data["results"]
    if OURS not in res:
        return ""
    ours = res[OURS]
    header = [
        "ours vs",
        "fan-out 100 (ours/peer)",
        "fan-out 1000 (ours/peer)",
        "echo rt/s (ours/peer)",
        "echo p99 (peer/ours)",
        "idle 10k (peer/ours)",
    ]
    grid = [header]
    for peer in PEERS:
        if peer not in res:
            continue
        theirs = res[peer]
        cells = [fmt_paired(paired(ours.get(n), theirs.get(n))) for n in RATE_SCENARIOS]
        p99 = paired(theirs.get("echo"), ours.get("echo"), "p99_ms")
        idle = _ratio(idle_point(theirs.get("idle"), 10000), idle_point(ours.get("idle"), 10000))
        label = data["targets"][peer]["label"]
        grid.append([label, *cells, fmt_paired(p99), f"{idle:.2f}x"])
    return markdown_table(grid)


def efficiency(data: dict[str, Any]) -> str:
    """Work per CPU-second of the server: what is left when other load steals the core."""
    grid = [["server", "fan-out 1000: deliveries per server CPU-s", "echo: rt per server CPU-s"]]
    for key, by_name in data["results"].items():
        cells = []
        for name in ("fanout-1000", "echo"):
            runs = (by_name.get(name) or {}).get("runs", [])
            per_cpu = [r["rate"] / r["server_cpu"] for r in runs if r.get("server_cpu")]
            cells.append(f"{median_range(per_cpu)[0]:,.0f}" if per_cpu else "-")
        if cells != ["-", "-"]:
            grid.append([data["targets"][key]["label"], *cells])
    return markdown_table(grid)


def headroom(data: dict[str, Any]) -> str:
    """Per throughput scenario: the fastest server against ours, and the generator's CPU
    share in their rounds. The generator is not the bottleneck when it drives some server
    harder than ours, or keeps idle time on its core while driving ours."""
    grid = [["scenario", "fastest server", "its rate", "loadgen CPU", "ours", "loadgen CPU",
             "highest round seen"]]  # fmt: skip
    res = data["results"]
    for name in RATE_SCENARIOS:
        ran = {k: r[name] for k, r in res.items() if r.get(name, {}).get("runs")}
        if not ran:
            continue
        best = max(ran, key=lambda k: metric(ran[k]))
        top = max(run["rate"] for r in ran.values() for run in r["runs"])
        ours = ran.get(OURS)
        grid.append(
            [
                name,
                data["targets"][best]["label"],
                f"{metric(ran[best]):,.0f}",
                f"{metric(ran[best], 'loadgen_cpu'):.0%}",
                f"{metric(ours):,.0f}" if ours else "-",
                f"{metric(ours, 'loadgen_cpu'):.0%}" if ours else "-",
                f"{top:,.0f}",
            ]
        )
    return markdown_table(grid)


def slow_table(data: dict[str, Any]) -> str:
    grid = [
        [
            "server",
            "readers' rate reading / stalled (msg/s)",
            "kept",
            "RSS peak (MiB)",
            "RSS growth (MiB)",
            "stalled client",
            "it received / published",
        ]
    ]
    for key, by_name in data["results"].items():
        result = by_name.get("slow")
        slow = slow_summary(result)
        if not slow:
            continue
        phases = result["phases"]  # type: ignore[index]
        grid.append(
            [
                data["targets"][key]["label"],
                f"{phases['reading']['rate']:,.0f} / {phases['stalled']['rate']:,.0f}",
                f"{slow['ratio']:.0%}",
                f"{slow['peak_mib']:.1f}",
                f"{slow['growth_mib']:+.1f}",
                slow["fate"],
                f"{slow['received']:,} / {slow['published']:,}",
            ]
        )
    return markdown_table(grid)


def flood_table(data: dict[str, Any]) -> str:
    grid = [
        [
            "server",
            "flooders x frames/s",
            "honest echo p50 / p99 before (ms)",
            "during (ms)",
            "replies during",
            "back under 2x p50 after",
            "server CPU",
        ]
    ]
    for key, by_name in data["results"].items():
        result = by_name.get("flood")
        if not result or "error" in result:
            continue
        before, during = result["before_ms"], result["during_ms"]
        rate = data["scenarios"]["flood"].get("rate", 10_000)
        grid.append(
            [
                data["targets"][key]["label"],
                f"{result['flooders']} x {rate:,.0f}",
                f"{before['p50']:.2f} / {before['p99']:.2f}",
                f"{during['p50']:.1f} / {during['p99']:.1f}",
                str(result["during_replies"]),
                fmt_seconds(result["recovery_s"]),
                f"{result['server_cpu']:.0%}",
            ]
        )
    return markdown_table(grid)


def write(data: dict[str, Any], docs: Path) -> None:
    m = data["machine"]
    parts = [
        "# Benchmarks",
        "",
        f"Measured by `{data['command']}` on {data['date']} in {data['seconds']} s. "
        "Rerun it to reproduce; raw numbers are in `bench/results/latest.json`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}; load average {m['load_before'][0]:.2f} before and "
        f"{m['load_after'][0]:.2f} after (the machine is shared: other work on it shows as "
        "a wider range). Server on core 0, load generator on core 1.",
        "",
        "![fan-out](bench-fanout.png)",
        "![memory](bench-memory.png)",
        "",
        "## Results",
        "",
        "Median (min-max) over the timed rounds; msg/s are deliveries to receivers.",
        "",
        markdown_table(rows(data)),
        "",
        "## uvicorn settings for microsockets 2.x",
        "",
        "The same app with one thing changed per row: uvicorn's WebSocket implementation",
        "(`--ws`), or the stdlib json codec instead of orjson. The first row is the setting",
        "used everywhere above. The last row is a bare ASGI app (`bench/servers/asgi_floor.py`)",
        "on the same uvicorn doing the least each scenario needs (a room of per-connection",
        "queues for fan-out, each echo frame sent back unparsed): the rates and the memory per",
        "connection that no library on that server can beat. docs/performance.md says what",
        "was measured and changed to come close to it.",
        "",
        markdown_table(rows(data, variants=True)),
        "",
        "## Targets (issue 6)",
        "",
        markdown_table([["target", "measured"], *[[a, b] for a, b in target_lines(data)]]),
        "",
        "## microsockets 2.x against each peer",
        "",
        "Each cell is the median of the round-by-round ratios (the rounds of all servers are",
        "interleaved, so round i of both ran side by side), with their range.",
        "",
        ratio_table(data),
        "",
        "The same work per CPU-second of the server process (user + system time; the kernel's",
        "loopback work done in softirq context is not in it). Less sensitive to other load on",
        "the machine than the rates above, since time the server spent descheduled drops out:",
        "",
        efficiency(data),
        "",
        "## Slow consumer",
        "",
        slow_table(data),
        "",
        "## Flood at the rate limit",
        "",
        "Connections each sending `ms:ping` at microsockets' default `rate_limit` (none over",
        "it), and one honest client's echo round trip before, during and after the flood",
        "(bench/scenarios.py `flood`; docs/security.md, CPU fairness).",
        "",
        flood_table(data),
        "",
        "## The load generator is not the bottleneck",
        "",
        'Rates are medians (msg/s, or round-trips/s for echo); "loadgen CPU" is the',
        "generator's CPU share during those rounds (100% = its core fully busy); the last",
        "column is the highest rate the generator sustained in any round of the run.",
        "",
        headroom(data),
        "",
    ]
    if data.get("redis"):
        parts += [
            "## Redis fan-out (bench/redis_fanout.py)",
            "",
            "1,000 receivers over two uvicorn processes sharing a room through Redis, against",
            "one process with the in-memory room manager (see the script's docstring):",
            "",
            "```",
            *data["redis"],
            "```",
            "",
        ]
    parts += [
        "## Servers, settings and versions",
        "",
        f"Every uvicorn app runs with `{data['uvicorn_flags']}` and the `--ws` shown; uvicorn's",
        "defaults otherwise (ping interval 20 s, backlog 2048). The exact commands:",
        "",
    ]
    for target in data["targets"].values():
        versions = ", ".join(f"{k} {v}" for k, v in target["versions"].items())
        parts += [f"- **{target['label']}** ({versions})", f"  `{target['command']}`"]
    parts += ["", METHOD]
    if data["problems"]:
        parts += ["## Problems", "", *[f"- {p}" for p in data["problems"]], ""]
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "benchmarks.md").write_text("\n".join(parts))

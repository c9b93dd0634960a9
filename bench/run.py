"""`make bench`: every server through every scenario, side by side, then the report.

Servers run pinned to core 0, the load generator (loadgen.py) pinned to core 1. For fan-out
and echo all servers run at once and the generator interleaves their rounds; idle memory
and slow consumer get a fresh server each. Results go to bench/results/ (JSON), the report to
docs/benchmarks.md and the plots to docs/bench-*.png.

    python bench/run.py                 # the full run (about 10 minutes)
    python bench/run.py --smoke         # tiny sizes, main dev venv only, no docs written
    python bench/run.py --only ms2,wsb  # a subset of servers (keys as in the table)
    python bench/run.py --worktree      # ours with uncommitted changes (default: HEAD)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import envs
import report
import targets
from process import Server, free_port, pinned

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVER_CORE, LOADGEN_CORE = 0, 1

# name: (loadgen scenario, parameters). fanout and echo run all servers at once, interleaved
# round by round; idle and slow start a fresh server for each.
FULL = {
    "fanout-100": ("fanout", {"receivers": 100, "messages": 100, "rounds": 7}),
    "fanout-1000": ("fanout", {"receivers": 1000, "messages": 100, "rounds": 7}),
    "echo": ("echo", {"clients": 100, "requests": 1000, "rounds": 7}),
    "idle": ("idle", {"counts": [1000, 10000]}),
    "slow": ("slow", {"receivers": 100, "messages": 100, "size": 1000, "seconds": 8.0}),
    "flood": ("flood", {"flooders": 50, "seconds": 3.0}),
}
SMOKE = {
    "fanout-100": ("fanout", {"receivers": 20, "messages": 20, "rounds": 2}),
    "echo": ("echo", {"clients": 5, "requests": 20, "rounds": 2}),
    "idle": ("idle", {"counts": [20, 40], "settle": 0.2}),
    "slow": ("slow", {"receivers": 10, "messages": 20, "seconds": 0.5, "grace": 0.5}),
    "flood": ("flood", {"flooders": 2, "rate": 1000.0, "seconds": 0.3, "baseline": 0.2}),
}
INTERLEAVED = ("fanout", "echo")


def run_loadgen(
    scenario: str,
    params: dict,
    servers: list[tuple[targets.Target, Server]],
    python: str,
    logs: Path,
) -> dict[str, dict]:
    """One load generator run against running servers: {target key: result}."""
    described = [
        {"key": t.key, "port": s.port, "dialect": t.dialect, "pid": s.pid} for t, s in servers
    ]
    argv = pinned(
        [
            python,
            str(BENCH / "loadgen.py"),
            scenario,
            "--targets",
            json.dumps(described),
            "--params",
            json.dumps(params),
        ],
        LOADGEN_CORE,
    )
    with open(logs / "loadgen.log", "ab") as log:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=900)
    if done.returncode != 0:
        error = {"error": f"load generator exited with {done.returncode}; see {logs}/loadgen.log"}
        return {t.key: error for t, _ in servers}
    return json.loads(done.stdout)


def start(target: targets.Target, logs: Path) -> Server:
    port = free_port()
    return Server(
        target.command(port),
        port,
        env=target.environ(),
        log=logs / f"{target.key}.log",
        core=SERVER_CORE,
    )


def run_all(plan: dict, main: list, variants: list, python: str, logs: Path) -> dict:
    """Every scenario of `plan` on the servers that take part in it (Target.takes);
    {target key: {scenario name: result}}."""
    everyone = main + variants
    results: dict[str, dict] = {t.key: {} for t in everyone}
    interleaved = [(n, sc, p) for n, (sc, p) in plan.items() if sc in INTERLEAVED]
    with contextlib.ExitStack() as stack:
        running = [
            (t, stack.enter_context(start(t, logs)))
            for t in everyone
            if any(t.takes(name) for name, _, _ in interleaved)
        ]
        for name, scenario, params in interleaved:
            servers = [(t, s) for t, s in running if t.takes(name)]
            t0 = time.monotonic()
            found = run_loadgen(scenario, params, servers, python, logs)
            for target, _ in servers:
                results[target.key][name] = found[target.key]
                progress(target, name, found[target.key])
            print(f"bench: {name} took {time.monotonic() - t0:.0f} s", flush=True)
    for name, (scenario, params) in plan.items():
        if scenario in INTERLEAVED:
            continue
        for target in [t for t in everyone if t.takes(name)]:
            t0 = time.monotonic()
            with start(target, logs) as server:
                found = run_loadgen(scenario, params, [(target, server)], python, logs)
            results[target.key][name] = found[target.key]
            progress(target, name, found[target.key], time.monotonic() - t0)
    return results


def progress(target: targets.Target, name: str, result: dict, seconds: float | None = None) -> None:
    took = "" if seconds is None else f"  ({seconds:.0f} s)"
    print(f"bench: {target.label:<36} {name:<12} {report.headline(name, result):>30}{took}")


def redis_lines() -> list[str] | None:
    """What bench/redis_fanout.py (Redis vs in-memory fan-out; optional) prints for people."""
    script = BENCH / "redis_fanout.py"
    if not script.exists():
        return None
    print("bench: bench/redis_fanout.py (Redis vs in-memory fan-out)", flush=True)
    try:
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return ["bench/redis_fanout.py: timed out after 300 s"]
    lines = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode != 0 or not lines:
        return [f"bench/redis_fanout.py failed ({done.returncode}): {done.stderr[-300:]}"]
    return [line for line in lines if not line.startswith("{")]  # its last line is JSON


def problems(results: dict) -> list[str]:
    """Every lost, duplicated, reordered or corrupted message, and every failed run."""
    found = []
    for key, by_scenario in results.items():
        for name, result in by_scenario.items():
            if "error" in result:
                found.append(f"{key} {name}: {result['error']}")
                continue
            bad = {k: v for k, v in result.get("checks", {}).items() if v}
            if bad:
                found.append(f"{key} {name}: {bad}")
    return found


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 2**20, 1),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "load_before": os.getloadavg(),
    }


def write_docs(data: dict, results: Path, docs: Path) -> None:
    """docs/benchmarks.md and the plots (drawn with the peers venv's matplotlib)."""
    report.write(data, docs)
    plots = [str(envs.python("peers")), str(BENCH / "plots.py"), str(results), str(docs)]
    subprocess.run(plots, check=False)
    print(f"\nbench: wrote {docs / 'benchmarks.md'} ({data['seconds']} s of measuring)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, main venv only")
    parser.add_argument("--only", help="comma-separated server keys (ms2, ms1, sio, wsb, node)")
    parser.add_argument("--no-variants", action="store_true", help="skip the ms2 variants")
    parser.add_argument("--scenarios", help="comma-separated scenario names (fanout-1000, echo...)")
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="measure microsockets as it is in the work tree, not as committed at HEAD",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure microsockets as committed at REV, in the same run (a refactor's A/B)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="results folder")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="report folder")
    parser.add_argument("--report", type=Path, help="only rewrite the docs from this JSON")
    args = parser.parse_args()
    if args.report:
        write_docs(json.loads(args.report.read_text()), args.report, args.docs)
        return 0
    started = time.monotonic()

    if args.smoke:
        plan, main_targets, variants = SMOKE, targets.smoke_targets(), []
        loadgen_python = sys.executable
    else:
        with_node = envs.ensure_all()
        source = targets.REPO if args.worktree else envs.snapshot(targets.REPO)
        plan, main_targets = FULL, targets.main_targets(with_node, source)
        variants = [] if args.no_variants else targets.variants(source)
        if args.baseline:
            variants.append(targets.baseline(envs.snapshot(targets.REPO, args.baseline)))
        loadgen_python = str(envs.python("peers"))
    if args.only:
        keys = args.only.split(",")
        main_targets = [t for t in main_targets if t.key in keys]
        variants = [t for t in variants if t.key in keys]

    if args.scenarios:
        plan = {name: plan[name] for name in args.scenarios.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    results = run_all(plan, main_targets, variants, loadgen_python, logs)

    data = {
        "command": "make bench" if not args.smoke else "python bench/run.py --smoke",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {**machine(), "load_after": os.getloadavg()},
        "cores": {"server": SERVER_CORE, "loadgen": LOADGEN_CORE},
        "uvicorn_flags": " ".join(targets.UVICORN_FLAGS),
        "scenarios": {name: params for name, (_, params) in plan.items()},
        "targets": {
            t.key: {"label": t.label, "command": t.shown(), "versions": t.versions()}
            for t in main_targets + variants
        },
        "results": results,
        "problems": problems(results),
        "redis": None if args.smoke or args.only or args.scenarios else redis_lines(),
        "seconds": round(time.monotonic() - started),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (args.out / f"{stamp}.json", args.out / "latest.json"):
        path.write_text(json.dumps(data, indent=1))
    print()
    print(report.table(data))
    for line in data["redis"] or []:
        print(f"redis fan-out: {line}")
    if not args.smoke:
        write_docs(data, args.out / "latest.json", args.docs)
    for problem in data["problems"]:
        print(f"bench: PROBLEM {problem}")
    return 1 if data["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

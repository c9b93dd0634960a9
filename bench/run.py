"""`make bench`: every server through every scenario, side by side, then the report.

Each scenario gets a fresh server process pinned to core 0 and a load generator process
(loadgen.py) pinned to core 1. Results go to bench/results/ (JSON), the report to
docs/benchmarks.md and the plots to docs/bench-*.png.

    python bench/run.py                 # the full run (about 10 minutes)
    python bench/run.py --smoke         # tiny sizes, main dev venv only, no docs written
    python bench/run.py --only ms2,wsb  # a subset of servers (keys as in the table)
"""

from __future__ import annotations

import argparse
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

# (name, scenario, parameters): the full run, and the smoke run of tests/test_bench_smoke.py.
FULL = [
    ("fanout-100", "fanout", {"receivers": 100, "messages": 100, "rounds": 7}),
    ("fanout-1000", "fanout", {"receivers": 1000, "messages": 100, "rounds": 7}),
    ("echo", "echo", {"clients": 100, "requests": 300, "rounds": 5}),
    ("idle", "idle", {"counts": [1000, 10000]}),
    ("slow", "slow", {"receivers": 100, "messages": 100, "seconds": 8.0}),
]
VARIANT_SCENARIOS = ("fanout-1000", "echo")
SMOKE = [
    ("fanout-100", "fanout", {"receivers": 20, "messages": 20, "rounds": 2}),
    ("echo", "echo", {"clients": 5, "requests": 20, "rounds": 2}),
    ("idle", "idle", {"counts": [20, 40], "settle": 0.2}),
    ("slow", "slow", {"receivers": 10, "messages": 20, "seconds": 0.5, "grace": 0.5}),
]


def run_scenario(
    target: targets.Target, scenario: str, params: dict, loadgen_python: str, logs: Path
) -> dict:
    """One fresh server, one load generator run; the generator's JSON, or {"error": ...}."""
    port = free_port()
    with Server(
        target.command(port),
        port,
        env=target.environ(),
        log=logs / f"{target.key}.log",
        core=SERVER_CORE,
    ) as server:
        argv = pinned(
            [
                loadgen_python,
                str(BENCH / "loadgen.py"),
                scenario,
                "--port",
                str(port),
                "--dialect",
                target.dialect,
                "--server-pid",
                str(server.pid),
                "--params",
                json.dumps(params),
            ],
            LOADGEN_CORE,
        )
        with open(logs / "loadgen.log", "ab") as log:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=600)
    if done.returncode != 0:
        return {"error": f"load generator exited with {done.returncode}; see {logs}/loadgen.log"}
    return json.loads(done.stdout)


def redis_line() -> str | None:
    """The summary line of bench/redis_fanout.py (another scenario, optional), if present."""
    script = BENCH / "redis_fanout.py"
    if not script.exists():
        return None
    try:
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        return "bench/redis_fanout.py: timed out after 300 s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return f"bench/redis_fanout.py: failed ({done.returncode}): {done.stderr[-300:]}"
    return lines[-1]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, main venv only")
    parser.add_argument("--only", help="comma-separated server keys (ms2, ms1, sio, wsb, node)")
    parser.add_argument("--no-variants", action="store_true", help="skip the ms2 variants")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="results folder")
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="report folder")
    args = parser.parse_args()
    started = time.monotonic()

    if args.smoke:
        plan = [(t, SMOKE) for t in targets.smoke_targets()]
        loadgen_python = sys.executable
    else:
        with_node = envs.ensure_all()
        variant_plan = [s for s in FULL if s[0] in VARIANT_SCENARIOS]
        plan = [(t, FULL) for t in targets.main_targets(with_node)]
        if not args.no_variants:
            plan += [(t, variant_plan) for t in targets.variants()]
        loadgen_python = str(envs.python("peers"))
    if args.only:
        keys = args.only.split(",")
        plan = [(t, s) for t, s in plan if t.key in keys]

    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    results: dict[str, dict] = {}
    for target, scenarios in plan:
        results[target.key] = {}
        for name, scenario, params in scenarios:
            print(f"bench: {target.label:<40} {name:<12}", end="", flush=True)
            t0 = time.monotonic()
            result = run_scenario(target, scenario, params, loadgen_python, logs)
            results[target.key][name] = result
            print(f" {report.headline(name, result):>28}  ({time.monotonic() - t0:.0f} s)")

    data = {
        "command": "make bench" if not args.smoke else "python bench/run.py --smoke",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {**machine(), "load_after": os.getloadavg()},
        "cores": {"server": SERVER_CORE, "loadgen": LOADGEN_CORE},
        "uvicorn_flags": " ".join(targets.UVICORN_FLAGS),
        "scenarios": {name: params for name, _, params in (SMOKE if args.smoke else FULL)},
        "targets": {
            t.key: {"label": t.label, "command": t.shown(), "versions": t.versions()}
            for t, _ in plan
        },
        "results": results,
        "problems": problems(results),
        "redis": None if args.smoke else redis_line(),
        "seconds": round(time.monotonic() - started),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (args.out / f"{stamp}.json", args.out / "latest.json"):
        path.write_text(json.dumps(data, indent=1))
    print()
    print(report.table(data))
    if not args.smoke:
        report.write(data, args.docs)
        subprocess.run(
            [
                str(envs.python("peers")),
                str(BENCH / "plots.py"),
                str(args.out / "latest.json"),
                str(args.docs),
            ],
            check=False,
        )
        print(f"\nbench: wrote {args.docs / 'benchmarks.md'} in {data['seconds']} s")
    for problem in data["problems"]:
        print(f"bench: PROBLEM {problem}")
    return 1 if data["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

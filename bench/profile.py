"""Where microsockets 2.x spends its time: py-spy on the server while the generator drives it.

    python bench/profile.py fanout-1000      # or fanout-100, echo (needs `make bench`'s venvs)
    python bench/profile.py memory           # what 2,000 idle connections allocate
    python bench/profile.py echo --server ms1     # any of them for microsockets 1.0.0

Prints the functions with the most samples (own and inclusive, by function, lines merged)
and the server's CPU time per delivered message; writes the raw py-spy stacks to
bench/results/profile-SERVER-NAME.txt. `memory` traces allocations with tracemalloc and prints the
source lines that hold the most memory per open connection.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import envs
import run
import targets
from process import cpu_seconds

OUT = Path(__file__).resolve().parent / "results"


def function(frame: str) -> str:
    """'send (uvicorn/protocols/x.py:12)' -> 'uvicorn/protocols/x.py send'."""
    name, _, where = frame.partition(" (")
    return f"{where.rsplit(':', 1)[0]} {name}"


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [function(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    lines = [f"{total} samples while the server was busy"]
    for title, counter in (("own time", own), ("inclusive time", inclusive)):
        lines += ["", f"top {top} by {title}:"]
        lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


def pick(key: str, commit: str | None) -> targets.Target:
    """A server of the main comparison by key (ms2, ms1, sio, wsb); ours from the work tree,
    or from `commit` when given."""
    source = envs.snapshot(targets.REPO, commit) if commit else targets.REPO
    (target,) = [t for t in targets.main_targets(False, source) if t.key == key]
    return target


def memory(key: str, commit: str | None, top: int, count: int = 2000) -> int:
    """tracemalloc snapshots before and with `count` idle joined connections; the diff."""
    base = OUT / f"tracemalloc-{key}"
    target = pick(key, commit)
    target = dataclasses.replace(target, env={**target.env, "BENCH_TRACEMALLOC": str(base)})
    with run.start(target, OUT / "logs") as server:
        server.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
        described = [{"key": key, "port": server.port, "dialect": "ms", "pid": server.pid}]
        params = {"counts": [count], "settle": 20.0}
        loadgen = subprocess.Popen(
            [
                str(envs.python("peers")),
                str(Path(__file__).parent / "loadgen.py"),
                "idle",
                "--targets",
                json.dumps(described),
                "--params",
                json.dumps(params),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while len(os.listdir(f"/proc/{server.pid}/fd")) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)
        server.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
        time.sleep(3)
        loadgen.wait(timeout=120)
    before = tracemalloc.Snapshot.load(f"{base}.0")
    after = tracemalloc.Snapshot.load(f"{base}.1")
    diff = after.compare_to(before, "lineno")
    total = sum(d.size_diff for d in diff)
    print(f"{count} idle joined connections: {total / count:,.0f} bytes per connection traced")
    print("(Python allocations only; RSS adds the allocator's and the kernel's overhead)\n")
    for stat in diff[:top]:
        frame = stat.traceback[0]
        where = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
        print(
            f"{stat.size_diff / count:8,.0f} B/conn  {stat.count_diff / count:5.1f} blocks  {where}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=["fanout-100", "fanout-1000", "echo", "memory"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--server", default="ms2", help="ms2 (ours), ms1, sio or wsb")
    parser.add_argument(
        "--commit", help="profile microsockets as committed here (default: work tree)"
    )
    args = parser.parse_args()
    envs.ensure_all()
    if args.name == "memory":
        return memory(args.server, args.commit, args.top)
    scenario, params = run.FULL[args.name]
    params = {**params, "rounds": args.rounds}
    target = pick(args.server, args.commit)
    OUT.mkdir(exist_ok=True)
    raw = OUT / f"profile-{args.server}-{args.name}.txt"
    spy = str(envs.python("ms2").parent / "py-spy")
    with run.start(target, OUT / "logs") as server:
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--nonblocking",
                "-p",
                str(server.pid),
                "-r",
                "500",
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cpu0 = cpu_seconds(server.pid)
        found = run.run_loadgen(
            scenario, params, [(target, server)], str(envs.python("peers")), OUT / "logs"
        )[target.key]
        cpu = cpu_seconds(server.pid) - cpu0
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
    if "error" in found:
        print(found["error"])
        return 1
    per_round = params.get("receivers", 1) * params.get("messages", params.get("requests", 1))
    per_round *= params.get("clients", 1)
    delivered = per_round * (args.rounds + 1)
    print(f"{args.name}: {delivered:,} messages, server CPU {cpu:.2f} s (py-spy's own share")
    print(f"included): {1e6 * cpu / delivered:.2f} us of server CPU per delivered message\n")
    print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load generator: one process, one event loop, one scenario; prints its result as JSON.

Usage: python loadgen.py SCENARIO --targets JSON [--params JSON]
where JSON lists the servers: [{"key": "ms2", "port": 8000, "dialect": "ms", "pid": 123}].
fanout and echo take several servers and interleave their rounds (rates.py); idle and slow
take one (scenarios.py). run.py starts it pinned to its own core. Uses uvloop when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys

import rates
import scenarios
from dialects import DIALECTS
from fleet import Target

SCENARIOS = {
    "fanout": rates.fanout,
    "echo": rates.echo,
    "idle": scenarios.idle,
    "slow": scenarios.slow,
    "flood": scenarios.flood,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--targets", required=True, help="the servers, as JSON")
    parser.add_argument("--params", default="{}", help="keyword arguments of the scenario")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    targets = [
        Target(t["key"], t["port"], DIALECTS[t["dialect"]], t["pid"])
        for t in json.loads(args.targets)
    ]
    scenario = SCENARIOS[args.scenario](targets, **json.loads(args.params))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(scenario)
    else:
        result = uvloop.run(scenario)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

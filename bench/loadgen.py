"""The load generator: one process, one event loop, one scenario; prints its result as JSON.

Usage: python loadgen.py SCENARIO --port P --dialect ms|sio --server-pid PID [--params JSON]
run.py starts it pinned to its own core. uvloop is used when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys

from dialects import DIALECTS
from scenarios import SCENARIOS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="ms")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--params", default="{}", help="keyword arguments of the scenario")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    scenario = SCENARIOS[args.scenario](
        args.port, DIALECTS[args.dialect], args.server_pid, **json.loads(args.params)
    )
    try:
        import uvloop
    except ImportError:
        loop = "asyncio"
        result = asyncio.run(scenario)
    else:
        loop = "uvloop"
        result = uvloop.run(scenario)
    result["loadgen"] = {"loop": loop, "python": sys.version.split()[0]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""`uvicorn` with RLIMIT_NOFILE raised to its hard limit (10,000 idle connections need it).

Usage: python uvicorn_serve.py APP [uvicorn options...]; the options are uvicorn's own.
With BENCH_TRACEMALLOC=PATH set, memory allocations are traced and each SIGUSR1 writes a
tracemalloc snapshot to PATH.N (bench/profile.py memory reads them).
"""

import os
import resource
import signal
import sys

import uvicorn.main

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

if os.environ.get("BENCH_TRACEMALLOC"):
    import itertools
    import tracemalloc

    tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
    _snapshots = itertools.count()

    def _dump(signum, frame):
        path = f"{os.environ['BENCH_TRACEMALLOC']}.{next(_snapshots)}"
        tracemalloc.take_snapshot().dump(path)

    signal.signal(signal.SIGUSR1, _dump)

sys.exit(uvicorn.main.main())

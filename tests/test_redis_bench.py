"""bench/redis_fanout.py runs end to end in its smoke size and prints its JSON result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import redis_binary  # noqa: E402

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "redis_fanout.py"


def test_redis_fanout_benchmark_smoke() -> None:
    redis_binary()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--timeout", "100"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "redis_fanout"
    assert result["receivers"] == 50
    assert result["memory"]["processes"] == 1
    assert result["redis"]["processes"] == 2
    assert result["ratio"] > 0

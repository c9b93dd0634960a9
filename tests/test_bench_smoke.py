"""The benchmark harness at tiny sizes: it runs, and no message is lost, doubled or reordered.

Uses only the main dev virtualenv (microsockets 2.x and the plain websockets server);
the full comparison is `make bench`. Asserts no timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.append(str(BENCH))  # after everything else: bench modules shadow nothing

import fleet  # noqa: E402
from dialects import DIALECTS  # noqa: E402

PAD = b"xx"


def message(seq: int, pad: bytes = PAD) -> bytes:
    return b'{"event":"msg","payload":{"seq":%d,"pad":"%s"}}' % (seq, pad)


@pytest.mark.parametrize(
    ("seqs", "found"),
    [
        ([0, 1, 2, 3], {}),
        ([0, 1, 3], {"lost": 1}),
        ([0, 1, 1, 2, 3], {"duplicated": 1}),
        ([0, 2, 1, 3], {"reordered": 1}),
        ([0, 1, 2, 3, 4], {"corrupt": 1}),
    ],
)
def test_the_check_sees_every_kind_of_problem(seqs: list[int], found: dict[str, int]) -> None:
    got = [message(seq) for seq in seqs]
    result = fleet.check(DIALECTS["ms"], got, 0, 4, PAD, "msg")
    assert {k: v for k, v in result.items() if v} == found


def test_the_check_sees_a_changed_payload() -> None:
    got = [message(0), message(1, b"xy")]
    assert fleet.check(DIALECTS["ms"], got, 0, 2, PAD, "msg")["corrupt"] == 1


def test_socketio_frames_decode_like_the_others() -> None:
    sio = DIALECTS["sio"]
    assert sio.event(b"echo", b"1") == b'42["echo",1]'
    assert sio.parse(b'42["msg",{"seq":3}]') == ("msg", {"seq": 3})
    assert sio.parse(b"3") == ("", None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "latest.json").read_text())


def test_every_scenario_ran_on_both_servers(smoke: dict) -> None:
    assert set(smoke["results"]) == {"ms2", "wsb"}
    for key, by_scenario in smoke["results"].items():
        ours_only = {"flood"} if key == "ms2" else set()  # ms:ping: microsockets' protocol
        assert set(by_scenario) == {"fanout-100", "echo", "idle", "slow"} | ours_only
        for result in by_scenario.values():
            assert "error" not in result


def test_the_flood_scenario_measured_the_honest_client_throughout(smoke: dict) -> None:
    flood = smoke["results"]["ms2"]["flood"]
    assert flood["frames_sent"] > 0
    assert flood["during_replies"] > 0
    assert flood["recovery_s"] is not None


def test_nothing_was_lost_duplicated_or_reordered(smoke: dict) -> None:
    assert smoke["problems"] == []
    for by_scenario in smoke["results"].values():
        for result in by_scenario.values():
            assert result["checks"] == {"lost": 0, "duplicated": 0, "reordered": 0, "corrupt": 0}
        assert len(by_scenario["fanout-100"]["runs"]) == 2
        assert all(run["rate"] > 0 for run in by_scenario["fanout-100"]["runs"])
        assert all(run["p99_ms"] > 0 for run in by_scenario["echo"]["runs"])
        assert [p["alive"] for p in by_scenario["idle"]["points"]] == [20, 40]


def test_the_stalled_receiver_got_an_ordered_prefix(smoke: dict) -> None:
    for by_scenario in smoke["results"].values():
        slow = by_scenario["slow"]
        assert slow["stalled_check"]["duplicated"] == slow["stalled_check"]["reordered"] == 0
        assert slow["stalled_check"]["lost"] == 0  # seq 0..received-1 all there
        assert slow["phases"]["reading"]["rate"] > 0
        assert slow["rss"]

"""The servers under test: how to start each one, which dialect it speaks, what versions it runs.

Every uvicorn-served app gets the same uvicorn flags (UVICORN_FLAGS) and the same `--ws`
implementation, so the comparison is between the libraries. The "variants" of microsockets
2.x change one thing each (the `--ws` implementation, or the stdlib JSON codec) to show why
the main configuration is the best one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import envs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SERVERS = BENCH / "servers"

BEST_WS = "websockets-sansio"  # measured best for microsockets 2.x: see the variants table
UVICORN_FLAGS = (
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--ws-per-message-deflate",
    "false",
    "--no-access-log",
    "--log-level",
    "warning",
)
# The main dev virtualenv may lack uvloop and httptools: uvicorn's "auto" falls back.
SMOKE_FLAGS = tuple("auto" if flag in ("uvloop", "httptools") else flag for flag in UVICORN_FLAGS)
UVICORN_STACK = ("uvicorn", "websockets", "uvloop", "httptools")
_VERSIONS = (
    "import importlib.metadata as m, json, sys\n"
    "found = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try: found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: found[name] = 'not installed'\n"
    "json.dump(found, sys.stdout)"
)


OURS_ONLY = ("flood",)
"""Scenarios that use microsockets' own protocol (`ms:ping`): the peers do not answer it."""


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    dialect: str
    program: tuple[str, ...]  # the interpreter and script; "{port}" is replaced by the port
    env: dict[str, str] = field(default_factory=dict)
    packages: tuple[str, ...] = ()  # distributions whose versions the report names
    scenarios: tuple[str, ...] | None = None  # the scenarios it takes part in; None: all

    def takes(self, scenario: str) -> bool:
        if self.scenarios is None:  # every scenario but those only microsockets speaks
            return scenario not in OURS_ONLY or self.key == "ms2"
        return scenario in self.scenarios

    def command(self, port: int) -> list[str]:
        return [arg.replace("{port}", str(port)) for arg in self.program]

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def shown(self) -> str:
        """The command as the report prints it, relative to the repository."""
        env = " ".join(f"{k}={v}" for k, v in self.env.items() if k != "NODE_PATH")
        text = " ".join(self.command(8000)).replace(str(REPO) + "/", "").replace(str(REPO), ".")
        return f"{env} {text}".replace(str(REPO), ".").strip()

    def versions(self) -> dict[str, str]:
        if self.program[0] == "node":
            ws = "require('ws/package.json').version"
            argv = [
                "node",
                "-e",
                f"console.log(JSON.stringify({{node: process.version, ws: {ws}}}))",
            ]
        else:
            argv = [self.program[0], "-c", _VERSIONS, *self.packages]
        out = subprocess.run(argv, capture_output=True, text=True, env=self.environ(), check=True)
        found: dict[str, str] = json.loads(out.stdout)
        if "PYTHONPATH" in self.env:
            found["microsockets"] = repository_version(Path(self.env["PYTHONPATH"]))
        return found


def repository_version(source: Path) -> str:
    """Which microsockets 2.x ran: pyproject's version, and the commit or the work tree."""
    version = next(
        (
            line.split('"')[1]
            for line in (REPO / "pyproject.toml").read_text().splitlines()
            if line.startswith("version")
        ),
        "2.x",
    )
    if source != REPO:  # envs.snapshot: bench/.venvs/src/<commit>
        return f"{version} at commit {source.name}"
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "microsockets"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{version}, work tree at {rev or '?'}" + (" with uncommitted changes" if dirty else "")


def _uvicorn(python: Path, app: str, ws: str, flags: tuple[str, ...]) -> tuple[str, ...]:
    script = str(SERVERS / "uvicorn_serve.py")
    return (
        str(python),
        script,
        app,
        "--port",
        "{port}",
        "--ws",
        ws,
        *flags,
        "--app-dir",
        str(SERVERS),
    )


def ours(
    python: Path,
    source: Path = REPO,
    ws: str = BEST_WS,
    codec: str = "",
    smoke: bool = False,
    typed: str = "",
    metrics: bool = False,
    recovery: bool = False,
) -> Target:
    """microsockets 2.x from `source` (the work tree, or an envs.snapshot of a commit);
    `codec="json"` forces the stdlib codec; `typed="msgspec"` or "pydantic" types echo;
    `metrics` turns Prometheus metrics on; `recovery` turns session recovery on."""
    key, label = "ms2", "microsockets 2.x"
    if ws != BEST_WS:
        key, label = f"ms2-{ws}", f"{label} --ws {ws}"
    if codec:
        key, label = f"ms2-{codec}", f"{label}, stdlib json"
    if typed:
        key, label = f"ms2-{typed}", f"{label}, echo typed ({typed})"
    if metrics:
        key, label = "ms2-metrics", f"{label}, metrics=True"
    if recovery:
        key, label = "ms2-recovery", f"{label}, recovery_window=30"
    env = {
        "PYTHONPATH": str(source),
        **({"BENCH_CODEC": codec} if codec else {}),
        **({"BENCH_TYPED": typed} if typed else {}),
        **({"BENCH_METRICS": "1"} if metrics else {}),
        **({"BENCH_RECOVERY": "30"} if recovery else {}),
    }
    flags = SMOKE_FLAGS if smoke else UVICORN_FLAGS
    return Target(
        key,
        label,
        "ms",
        _uvicorn(python, "ms_app:app", ws, flags),
        env,
        (*UVICORN_STACK, "orjson", "wsproto", *((typed,) if typed else ())),
    )


def websockets_broadcast(python: Path) -> Target:
    return Target(
        "wsb",
        "websockets.broadcast",
        "ms",
        (str(python), str(SERVERS / "ws_broadcast.py"), "{port}"),
        packages=("websockets", "uvloop"),
    )


def main_targets(with_node: bool, source: Path = REPO) -> list[Target]:
    """Ours (from `source`) and every peer, each from its own virtualenv (envs.ensure_all)."""
    ms1, peers = envs.python("ms1"), envs.python("peers")
    targets = [
        ours(envs.python("ms2"), source),
        Target(
            "ms1",
            "microsockets 1.0.0",
            "ms",
            _uvicorn(ms1, "ms_app:app", BEST_WS, UVICORN_FLAGS),
            packages=("microsockets", *UVICORN_STACK),
        ),
        Target(
            "sio",
            "python-socketio 5.x",
            "sio",
            _uvicorn(peers, "sio_app:app", BEST_WS, UVICORN_FLAGS),
            packages=("python-socketio", "python-engineio", *UVICORN_STACK),
        ),
        websockets_broadcast(peers),
    ]
    if with_node:
        targets.append(
            Target(
                "node",
                "Node ws",
                "ms",
                ("node", str(SERVERS / "node_ws.js"), "{port}"),
                env={"NODE_PATH": str(envs.NODE_MODULES)},
            )
        )
    return targets


def variants(source: Path = REPO) -> list[Target]:
    """microsockets 2.x with one setting changed each, and the bare ASGI app for reference."""
    ms2, only = envs.python("ms2"), ("fanout-1000", "echo", "idle")
    return [
        dataclasses.replace(ours(ms2, source, metrics=True), scenarios=("fanout-1000", "echo")),
        dataclasses.replace(ours(ms2, source, ws="wsproto"), scenarios=only),
        dataclasses.replace(ours(ms2, source, ws="websockets"), scenarios=only),
        dataclasses.replace(ours(ms2, source, codec="json"), scenarios=only),
        dataclasses.replace(ours(ms2, source, typed="msgspec"), scenarios=("echo",)),
        dataclasses.replace(ours(ms2, source, typed="pydantic"), scenarios=("echo",)),
        dataclasses.replace(ours(ms2, source, recovery=True), scenarios=only),
        floor(),
    ]


def baseline(source: Path) -> Target:
    """microsockets 2.x from an earlier commit (an envs.snapshot), beside ours in one run."""
    found = ours(envs.python("ms2"), source)
    return dataclasses.replace(found, key="ms2-base", label=f"microsockets 2.x at {source.name}")


def floor() -> Target:
    """A bare ASGI app on the same uvicorn: the rates and the memory per connection that no
    library on it can beat."""
    peers = envs.python("peers")
    return Target("floor", "bare ASGI app (uvicorn floor)", "ms",
                  _uvicorn(peers, "asgi_floor:app", BEST_WS, UVICORN_FLAGS),
                  packages=UVICORN_STACK,
                  scenarios=("fanout-100", "fanout-1000", "echo", "idle"))  # fmt: skip


def smoke_targets() -> list[Target]:
    """What the main dev virtualenv runs alone: ours and the plain websockets server."""
    python = Path(sys.executable)
    return [ours(python, smoke=True), websockets_broadcast(python)]

"""The benchmark's own virtualenvs under bench/.venvs (gitignored), made on first use.

microsockets 1.0.0 has our package's name, so it lives alone in `ms1`; `ms2` runs this
repository's microsockets (through PYTHONPATH) on the same uvicorn stack; `peers` holds
python-socketio, the plain websockets server, the load generator and matplotlib; `node`
holds the `ws` package. Versions are pinned so that reruns compare like with like.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
NODE_DIR = VENVS / "node"
NODE_MODULES = NODE_DIR / "node_modules"
NODE_PACKAGES = ["ws@8.23.0"]

UVICORN_STACK = [
    "uvicorn==0.54.0",
    "websockets==17.4",
    "wsproto==1.3.2",
    "uvloop==0.23.0",
    "httptools==0.9.0",
]
REQUIREMENTS = {
    "ms1": ["microsockets==1.0.0", *UVICORN_STACK],
    "ms2": [
        *UVICORN_STACK,
        "orjson==3.13.0",
        "py-spy==0.4.3",
        "msgspec==0.23.0",
        "pydantic==2.14.4",
        "prometheus_client==0.26.0",
    ],
    "peers": ["python-socketio==5.18.1", *UVICORN_STACK, "matplotlib==3.11.2"],
}


def python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure(name: str) -> Path:
    """The virtualenv `name` with its pinned requirements, installing them if needed."""
    wanted = REQUIREMENTS[name]
    stamp = VENVS / name / f".stamp-{hashlib.sha1(' '.join(wanted).encode()).hexdigest()[:12]}"
    if not stamp.exists():
        print(f"bench: preparing bench/.venvs/{name} ({', '.join(wanted)})", flush=True)
        if not python(name).exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run(
            [
                str(python(name)),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *wanted,
            ],
            check=True,
        )
        stamp.touch()
    return python(name)


def ensure_node() -> bool:
    """Node's `ws` under bench/.venvs/node; False when Node or npm is missing (it is optional)."""
    if (NODE_MODULES / "ws" / "package.json").exists():
        return True
    try:
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(NODE_DIR),
                "--no-audit",
                "--no-fund",
                "--silent",
                *NODE_PACKAGES,
            ],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"bench: Node ws left out ({exc})", flush=True)
        return False
    return True


def snapshot(repo: Path, commit: str = "HEAD") -> Path:
    """The microsockets package as committed at `commit`, unpacked under bench/.venvs/src:
    what `make bench` measures, so that edits in progress in the work tree stay out of it."""
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = VENVS / "src" / sha[:12]
    if not (dest / "microsockets" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", sha, "microsockets"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def ensure_all() -> bool:
    for name in REQUIREMENTS:
        ensure(name)
    return ensure_node()

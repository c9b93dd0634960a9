"""A real redis-server on a free 127.0.0.1 port, as pytest fixtures, and a poll-until helper.

Test modules load it with `pytest_plugins = ["tests.redis_server"]`. Without the binary the tests
skip, except in CI (`CI=true`), where a missing redis-server is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    """The redis-server path; skips the test, or fails it in CI, when there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (make system installs it)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class RedisServer:
    """One redis-server process, with nothing saved to disk; can be stopped and restarted.

    With `tls_dir`, it serves TLS only, with a self-signed certificate for 127.0.0.1 made there.
    """

    def __init__(self, binary: str, *extra_args: str, tls_dir: Path | None = None) -> None:
        self.binary = binary
        self.port = free_port()
        self.extra_args = extra_args
        self.password: str | None = None
        if "--requirepass" in extra_args:
            self.password = extra_args[extra_args.index("--requirepass") + 1]
        self.tls: ssl.SSLContext | None = None
        self.ca_file: Path | None = None
        if tls_dir is not None:
            cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
            openssl = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
            files = ["-keyout", str(key), "-out", str(cert)]
            subprocess.run(
                [*openssl.split(), "-addext", "subjectAltName=IP:127.0.0.1", *files],
                check=True,
                capture_output=True,
            )
            self.ca_file = cert
            self.tls = ssl.create_default_context(cafile=str(cert))
            self.extra_args += ("--port", "0", "--tls-port", str(self.port))
            self.extra_args += ("--tls-cert-file", str(cert), "--tls-key-file", str(key))
            self.extra_args += ("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.ca_file is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                if self.command("PING").startswith(("+PONG", "-NOAUTH")):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def command(self, *args: str) -> str:
        """Send one command (after AUTH if needed) and return the raw first reply line."""
        commands = ([("AUTH", self.password)] if self.password else []) + [args]
        payload = b"".join(
            f"*{len(c)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in c)
            for c in commands
        )
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", self.port), 2))
            if self.tls is not None:
                sock = stack.enter_context(self.tls.wrap_socket(sock, server_hostname="127.0.0.1"))
            sock.sendall(payload)
            data = b""
            while data.count(b"\r\n") < len(commands):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode().split("\r\n")[len(commands) - 1]


@contextlib.contextmanager
def running_redis(*extra_args: str, tls_dir: Path | None = None) -> Iterator[RedisServer]:
    """A started RedisServer (arguments as for RedisServer) for the block; stopped after it."""
    server = RedisServer(redis_binary(), *extra_args, tls_dir=tls_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the session; tests keep apart through their own channel prefix."""
    with running_redis() as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server for one test, which may stop, restart or break it."""
    with running_redis() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A channel prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float) -> None:
    """Poll `check()`, a plain or an async predicate, until it holds; fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)

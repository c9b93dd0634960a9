"""A TCP proxy on 127.0.0.1 that a test cuts: the client sees its connection die mid-stream,
as on a network change, and cannot get through until the proxy is restored."""

from __future__ import annotations

import asyncio
import contextlib
import sys


class Proxy:
    """Forwards each connection to `target`; `cut()` aborts them all and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self.accepted = 0
        """Connections that got through to the target."""
        self._pairs: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1; the port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Abort every forwarded connection (no close frame, no FIN) and refuse new ones."""
        self.open = False
        for writer in list(self._pairs):
            writer.transport.abort()
        self._pairs.clear()

    def restore(self, target: tuple[str, int] | None = None) -> None:
        """Let connections through again, to `target` if given."""
        if target is not None:
            self.target = target
        self.open = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._pairs.update((writer, up_writer))
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )
        self._pairs.difference_update((writer, up_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


async def main() -> None:
    """`python tests/proxy.py TARGET_PORT`: serve on a free port, print it; read commands
    from stdin: `cut`, `restore [PORT]`."""
    proxy = Proxy(("127.0.0.1", int(sys.argv[1])))
    port = await proxy.start()
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, *args = line.split()
        if command == "cut":
            proxy.cut()
        elif command == "restore":
            proxy.restore(("127.0.0.1", int(args[0])) if args else None)
        print("ok", command, flush=True)
    await proxy.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

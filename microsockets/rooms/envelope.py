"""What one process publishes for the others, sans I/O: the envelope and where it goes.

A publication is a one-line JSON header `[2, node, skip, targets]`, a newline, then the frame
exactly as the application encoded it. A broadcast is published once, whatever the number of
rooms: to one room's channel when it targets one room (only processes with a member there
listen), else to the channel every process listens to, which then delivers to its own members
of the targets, each once. Format 1 (one publication per room, before 2.1) is not read.
A presence diff (docs/presence.md) has the header `[3, node, room]` and goes to the room's
channel; the receiving processes hand it to the room's watchers only.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import NamedTuple

FORMAT = 2
PRESENCE_FORMAT = 3


class Envelope(NamedTuple):
    """A frame on its way to the members of `targets` (None: everyone) on other processes."""

    node: str
    skip: str | None
    targets: list[str] | None
    frame: str

    @property
    def room(self) -> str | None:
        """The one room whose channel carries it, or None for the everyone channel."""
        targets = self.targets
        return targets[0] if targets is not None and len(targets) == 1 else None

    def pack(self) -> bytes:
        header = json.dumps([FORMAT, self.node, self.skip, self.targets], separators=(",", ":"))
        return f"{header}\n{self.frame}".encode()


def envelope(
    node: str, frame: str, to: Collection[str] | None, skip: str | None
) -> Envelope | None:
    """The envelope of one broadcast, its rooms without repeats; None when it targets none."""
    if to is None:
        return Envelope(node, skip, None, frame)
    targets = list(dict.fromkeys(to))
    return Envelope(node, skip, targets, frame) if targets else None


class PresenceEnvelope(NamedTuple):
    """A presence diff of one room on its way to the room's watchers on other processes."""

    node: str
    room: str
    frame: str

    def pack(self) -> bytes:
        header = json.dumps([PRESENCE_FORMAT, self.node, self.room], separators=(",", ":"))
        return f"{header}\n{self.frame}".encode()


def unpack(data: bytes) -> Envelope | PresenceEnvelope:
    """Read a publication; ValueError (UnicodeDecodeError included) if it is not ours."""
    header, newline, frame = data.decode().partition("\n")
    fields = json.loads(header)
    if newline and isinstance(fields, list) and len(fields) == 3 and fields[0] == PRESENCE_FORMAT:
        if not (isinstance(fields[1], str) and isinstance(fields[2], str)):
            raise ValueError("malformed microsockets presence header")
        return PresenceEnvelope(fields[1], fields[2], frame)
    if not newline or not isinstance(fields, list) or len(fields) != 4 or fields[0] != FORMAT:
        raise ValueError(f"not a microsockets publication of format {FORMAT}")
    _, node, skip, targets = fields
    if (
        not isinstance(node, str)
        or not (skip is None or isinstance(skip, str))
        or not (
            targets is None
            or (isinstance(targets, list) and all(isinstance(room, str) for room in targets))
        )
    ):
        raise ValueError("malformed microsockets publication header")
    return Envelope(node, skip, targets, frame)

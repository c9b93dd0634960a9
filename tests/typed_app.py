"""An app with a handler for every kind of model the contract supports, and an untyped one.

Its AsyncAPI document is validated with the official parser, and tests/test_typing.py
sends it valid and invalid payloads.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Any, Literal, TypedDict

import msgspec
from pydantic import BaseModel, Field

import microsockets


class Join(BaseModel):
    """Who joins which room."""

    room: str
    user: str = Field(max_length=32)


class Joined(BaseModel):
    room: str
    members: list[str]


class Move(msgspec.Struct):
    x: int
    y: int
    label: Annotated[str, msgspec.Meta(max_length=8)] = ""


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Paint(TypedDict):
    colour: Colour
    points: list[Point]


class UserJoined(BaseModel):
    user: str
    members: list[str]


class Tick(msgspec.Struct):
    n: int
    at: tuple[int, int]


app = microsockets.Application()
app.event("user joined", UserJoined)
app.event("tick", Tick)
app.event("point", Point)
app.event("mode", Literal["draw", "erase"] | None)


@app.on("join")
async def join(ws: microsockets.Socket, data: Join) -> Joined:
    """Enter a room under a name."""
    await ws.join(data.room)
    await ws.broadcast("user joined", UserJoined(user=data.user, members=[data.user]), to=data.room)
    return Joined(room=data.room, members=[data.user])


@app.on("move")
async def move(ws: microsockets.Socket, data: Move) -> Move:
    return Move(x=data.x + 1, y=data.y + 1, label=data.label)


@app.on("paint")
async def paint(ws: microsockets.Socket, data: Paint) -> list[Point]:
    assert isinstance(data["colour"], Colour)
    return [Point(p.x * 2, p.y * 2) for p in data["points"]]


@app.on("add")
async def add(ws: microsockets.Socket, data: list[int]) -> int:
    return sum(data)


@app.on("where")
async def where(ws: microsockets.Socket, data: Point) -> Point:
    return data


@app.on("anything")
async def anything(ws: microsockets.Socket, data: Any) -> dict[str, Any]:
    return {"got": data}


@app.on("plain")
async def plain(ws):
    """An untyped handler: ws.payload as sent."""
    return ws.payload

"""The public names: everything in __all__ exists, and the 1.0.0 import paths still work."""

from __future__ import annotations

import microsockets


def test_all_names_exist_and_nothing_public_is_missing():
    assert sorted(microsockets.__all__) == sorted(set(microsockets.__all__))
    for name in microsockets.__all__:
        assert hasattr(microsockets, name), name


def test_one_point_oh_import_paths():
    from microsockets.events import EventRouter
    from microsockets.rooms import RoomManager

    assert EventRouter is microsockets.EventRouter
    assert RoomManager is microsockets.MemoryRoomManager


def test_package_ships_type_information():
    from importlib.resources import files

    assert files("microsockets").joinpath("py.typed").is_file()


def test_exception_tree():
    assert issubclass(microsockets.ConnectionClosedOK, microsockets.ConnectionClosed)
    assert issubclass(microsockets.ConnectionClosedError, microsockets.ConnectionClosed)
    for name in ("ProtocolError", "Reject", "LimitExceeded", "WebSocketStateError"):
        assert issubclass(getattr(microsockets, name), microsockets.MicrosocketsError)

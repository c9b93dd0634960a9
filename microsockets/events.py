"""The 1.0.0 import path of EventRouter: `from microsockets.events import EventRouter`."""

from .router import EventRouter

__all__ = ["EventRouter"]

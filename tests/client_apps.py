"""Apps the Python client's tests serve in a uvicorn subprocess, wrapped by the session shim
(tests/session_shim.py) until the server sends `ms:session` itself."""

from __future__ import annotations

import example

from .helpers_apps import app as _helpers_app
from .session_shim import with_session

app = with_session(_helpers_app)
chat = with_session(example.app)

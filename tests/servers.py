"""Serve WSGI apps on real sockets on 127.0.0.1, on ports the OS picks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Slot:
    """A WSGI app that can be set after its server is listening (the issuer needs the port)."""

    def __init__(self) -> None:
        self.app: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "the app was not set"
        return self.app(environ, start_response)


@contextmanager
def serving(slot: Slot) -> Iterator[str]:
    """Listen on a free port and yield the base URL; stop the server afterwards."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, slot, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)

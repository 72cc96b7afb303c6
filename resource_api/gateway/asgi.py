"""The little ASGI (https://asgi.readthedocs.io/) plumbing the gateway and the sideband share:
headers in and out, a bounded body read, a complete response, the lifespan handshake.

The server (granian for the commands, uvicorn in the tests; docs/gateway.md) parses HTTP; these
apps only read the ASGI events.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

__all__ = [
    "ASGIApp",
    "BodyTooLarge",
    "Receive",
    "Scope",
    "Send",
    "json_response",
    "lifespan",
    "read_body",
    "request_headers",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body is longer than the limit the caller set."""


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


def request_headers(scope: Scope) -> list[tuple[str, str]]:
    """The request's headers as text (ISO-8859-1, as HTTP/1.1 carries them; RFC 9110 §5.5)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


def raw_target(scope: Scope) -> str:
    """The request target as the client sent it: the percent-encoded path and the query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; :class:`BodyTooLarge` past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, status: int, headers: Sequence[tuple[str, str]], body: bytes = b""
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def json_response(
    send: Send,
    status: int,
    document: Any,
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    await send_response(
        send,
        status,
        [("Content-Type", "application/json"), *headers],
        json.dumps(document).encode(),
    )


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's lifespan events: nothing to start, nothing to stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

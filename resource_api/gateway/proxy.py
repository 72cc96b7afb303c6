"""``stepup gateway``: a reverse proxy that enforces step-up in front of any HTTP API.

PingAuthorize calls this deployment "gateway": the policy server receives the client's request,
decides (:class:`~.enforcer.Enforcer` — the same rules, challenges and records as the sideband),
answers refusals and challenges itself, and forwards what it allows to the upstream API with the
identity headers added (:mod:`.identity`).

Forwarding follows RFC 9110:

- §7.6.1 — "Intermediaries MUST parse a received Connection header field before a message is
  forwarded and, for each connection-option in this field, remove any header or trailer field(s)
  from the message with the same name as the connection-option, and then remove the Connection
  header field itself". We also drop the hop-by-hop fields it names as examples (Proxy-Connection,
  Keep-Alive, TE, Transfer-Encoding, Upgrade), and Proxy-Authorization (credentials for a proxy,
  never for the API), in both directions.
- §7.6.3 — "An HTTP-to-HTTP gateway MUST send an appropriate Via header field in each inbound
  request message": ``Via: 1.1 stepup-gateway``, after any the client sent.
- The method, the path and query exactly as received (percent-encoding kept), the body streamed
  without buffering unless a rule reads it, ``X-Forwarded-For`` (appended), ``-Proto`` and
  ``-Host``; the response's status, headers and body streamed back.

The upstream client is aiohttp, not httpx: under 16 concurrent requests httpx's connection pool
served ~600 requests/s where aiohttp served ~3,000-5,700 on this machine (docs/gateway.md, "Why
these libraries"). An upstream that refuses the connection is ``502 bad_gateway``; one that has not
begun its answer within ``timeout`` seconds is ``504 gateway_timeout``; both with a JSON body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ..errors import ConfigurationError
from ..resource_metadata import WELL_KNOWN_PATH, metadata_url, origin_of
from .asgi import (
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    json_response,
    raw_target,
    read_body,
    request_headers,
)
from .enforcer import Enforcer, RequestInfo

__all__ = ["HOP_BY_HOP", "GatewayApp"]

log = logging.getLogger(__name__)

#: RFC 9110 §7.6.1's hop-by-hop fields, plus Proxy-Authorization and Expect (this gateway answers
#: ``100-continue`` itself, through the ASGI server).
HOP_BY_HOP = frozenset((
    "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade",
    "trailer", "proxy-authorization", "proxy-authenticate", "expect",
))  # fmt: skip
_CHUNK = 64 * 1024


def strip_hop_by_hop(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` less the hop-by-hop fields and those the Connection field names."""
    named = {
        option.strip().lower()
        for k, v in headers
        if k.lower() == "connection"
        for option in v.split(",")
    }
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in named]


class GatewayApp:
    """The ASGI app of ``stepup gateway``. ``upstream``: the API's base URL (a path in it is
    prefixed to every forwarded path). ``timeout``: seconds to wait for the upstream's answer to
    begin; ``connect_timeout``: to connect. ``public_url``: the gateway's origin as clients see
    it, for ``resource_metadata`` (default: from ``Host``). ``max_body``: the most body bytes
    buffered when a rule reads the body."""

    def __init__(
        self,
        enforcer: Enforcer,
        upstream: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        public_url: str | None = None,
        max_body: int = 1024 * 1024,
    ) -> None:
        split = urlsplit(upstream)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ConfigurationError(f"--upstream must be an http(s) URL, not {upstream!r}")
        self.enforcer = enforcer
        self.upstream = upstream.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_body = max_body
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # One session serves every user: a cookie jar would hand one user's cookies to
                # the next. The body and its Content-Encoding pass through untouched.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout, sock_read=self.timeout
                ),
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=60),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _origin(self, scope: Scope, headers: Sequence[tuple[str, str]]) -> str:
        if self.public_url is not None:
            return self.public_url
        host = next((v for k, v in headers if k.lower() == "host"), None)
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        return origin_of(scope.get("scheme", "http"), host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            await self._http(scope, receive, send)
        except ClientGone:
            return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        method: str = scope["method"]
        origin = self._origin(scope, headers)
        if scope["path"] == WELL_KNOWN_PATH and method in ("GET", "HEAD"):
            doc = self.enforcer.metadata_document(origin)
            await json_response(send, 200, doc, [("Cache-Control", "max-age=300")])
            return
        target = raw_target(scope)
        body: bytes | None = None
        if self.enforcer.needs_body(method, scope["path"]):
            try:
                body = await read_body(receive, self.max_body)
            except BodyTooLarge:
                await json_response(send, 413, {
                    "error": "request_too_large",
                    "error_description": f"the request body is over {self.max_body} bytes",
                })  # fmt: skip
                return
        request = RequestInfo.build(method, target, headers, body)
        # RFC 9449 §4.3: a DPoP proof's htu is the URL the client used: this origin, this target.
        outcome = self.enforcer.check(
            request, resource_metadata=metadata_url(origin), url=origin + target
        )
        if not outcome.allowed:
            await _send_whole(send, outcome.status, outcome.headers, outcome.body)
            return
        await self._forward(scope, receive, send, request, outcome.identity, origin)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: RequestInfo,
        identity: Sequence[tuple[str, str]],
        origin: str,
    ) -> None:
        out = [(k, v) for k, v in strip_hop_by_hop(request.header_list) if k.lower() != "host"]
        client = scope.get("client")
        forwarded_for = [v for k, v in out if k.lower() == "x-forwarded-for"]
        out = [(k, v) for k, v in out if k.lower() not in ("x-forwarded-for", "x-forwarded-proto",
                                                          "x-forwarded-host")]  # fmt: skip
        if client:
            forwarded_for.append(str(client[0]))
        if forwarded_for:
            out.append(("X-Forwarded-For", ", ".join(forwarded_for)))
        out.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
        out.append(("X-Forwarded-Host", urlsplit(origin).netloc))
        out.append(("Via", f"{scope.get('http_version', '1.1')} stepup-gateway"))
        out.extend(identity)

        has_body = request.raw_body is not None or any(
            k.lower() in ("content-length", "transfer-encoding") for k, _ in request.header_list
        )
        data: Any = None
        if request.raw_body is not None:
            data = request.raw_body
        elif has_body:
            data = _stream(receive)
        query = f"?{request.query_string}" if request.query_string else ""
        url = URL(self.upstream + request.raw_path + query, encoded=True)
        try:
            upstream = await self._client().request(
                request.method, url, headers=out, data=data, allow_redirects=False,
                compress=None, chunked=None,
            )  # fmt: skip
        except (TimeoutError, aiohttp.ServerTimeoutError):
            await json_response(send, 504, {
                "error": "gateway_timeout",
                "error_description": f"the upstream API did not answer within {self.timeout:g} s",
            })  # fmt: skip
            return
        except aiohttp.ClientError as exc:
            log.warning("upstream %s: %s", self.upstream, exc)
            await json_response(send, 502, {
                "error": "bad_gateway",
                "error_description": "the upstream API could not be reached",
            })  # fmt: skip
            return
        async with upstream:
            headers = strip_hop_by_hop(
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
            )
            start = {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
            length = upstream.content_length
            if length is not None and length <= _CHUNK:  # the common small answer: one message
                body = await upstream.read()
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(start)
            async for chunk in upstream.content.iter_chunked(_CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


async def _stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _send_whole(
    send: Send, status: int, headers: Sequence[tuple[str, str]], body: bytes
) -> None:
    from .asgi import send_response

    await send_response(send, status, headers, body)

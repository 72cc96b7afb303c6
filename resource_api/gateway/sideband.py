"""``stepup sideband``: a decision service that existing gateways ask about each request.

PingAuthorize calls this deployment "sideband": the gateway keeps proxying, and asks the policy
server before it forwards. One ASGI app answers four dialects, all through one
:class:`~.enforcer.Enforcer` (the same rules, challenges and decision records as the gateway):

``/sideband/nginx``
    nginx ``auth_request`` (https://nginx.org/r/auth_request). The subrequest carries the client's
    headers, and the original method and URI in ``X-Original-Method`` / ``X-Original-URI``; never
    the body. nginx reads three answers only: "If the subrequest returns a 2xx response code, the
    access is allowed. If it returns 401 or 403, the access is denied with the corresponding error
    code. Any other response code returned by the subrequest is considered an error" (a ``500``
    to the client), and only a ``401`` has its ``WWW-Authenticate`` passed on. So this endpoint
    answers ``200`` (identity headers for ``auth_request_set``), ``401`` for everything a client can
    fix by sending a (better) token — including ``400 invalid_request``, whose challenge then still
    reaches the client — and ``403`` for the rest, including ``503`` (keys unavailable) and internal
    errors: failing closed. ``X-Stepup-Status`` always carries the real status, and
    ``X-Stepup-Www-Authenticate`` the challenge of a ``403``, so the published nginx configuration
    (docs/gateway.md) restores ``400``, ``403 insufficient_scope`` and ``503`` for the client.
``/sideband/envoy/<original path>``
    Envoy ``ext_authz`` in HTTP service mode, ``path_prefix: /sideband/envoy``: the check request
    has the original method, path and query after the prefix, the ``Authorization`` and ``Host``
    headers (and those in ``allowed_headers``), and the body when ``with_request_body`` is set.
    ``200`` allows: Envoy sets the headers matched by ``allowed_upstream_headers`` on the upstream
    request, then removes those listed in ``x-envoy-auth-headers-to-remove`` — where we name every
    identity header we did not set, so a client's copy cannot survive. Any other status is sent to
    the client with its body and headers; a ``5xx`` counts as an error (``status_on_error``).
``/sideband/traefik``
    Traefik ``forwardAuth``: a ``GET`` (or the original method with ``preserveRequestMethod``)
    carrying the client's headers plus ``X-Forwarded-Method``, ``-Proto``, ``-Host``, ``-Uri``;
    the body with ``forwardBody``. A ``2xx`` allows and Traefik copies ``authResponseHeaders`` onto
    the request (deleting the client's copies first); any other answer goes to the client as is.
``/sideband/request``
    A JSON API in the manner of PingAuthorize's Sideband API: ``POST`` the method, URL, headers and
    body; the answer says ``allow`` (with the headers to set and to remove) or ``refuse`` with the
    exact response to send.

``/.well-known/oauth-protected-resource`` serves the RFC 9728 document of the protected resource
(route it from the gateway to here), and ``/health`` answers ``200``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..resource_metadata import WELL_KNOWN_PATH, metadata_url, origin_of
from .asgi import (
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    json_response,
    lifespan,
    raw_target,
    read_body,
    request_headers,
    send_response,
)
from .enforcer import Enforcer, Outcome, RequestInfo, Validated
from .identity import IDENTITY_HEADERS

__all__ = ["ENVOY_PREFIX", "SidebandApp"]

log = logging.getLogger(__name__)

ENVOY_PREFIX = "/sideband/envoy"
_NGINX_HEADERS = frozenset(("x-original-method", "x-original-uri"))


_ORIGIN_HEADERS = frozenset(("x-forwarded-host", "host", "x-forwarded-proto"))


def _pick(headers: Sequence[tuple[str, str]], names: frozenset[str]) -> dict[str, str]:
    """The first value of each of ``names`` (lower-case), in one pass."""
    found: dict[str, str] = {}
    for k, v in headers:
        lower = k.lower()
        if lower in names and lower not in found:
            found[lower] = v
    return found


def _first(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


class SidebandApp:
    """The ASGI app of ``stepup sideband``.

    ``public_url``: the protected resource's origin as clients see it (``https://api.example``),
    for ``resource_metadata``; without it, the origin is read from ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` (or ``Host``) of each request. ``max_body``: the most body bytes read
    for a policy (a longer one is refused with ``413``). ``cache_seconds``: an nginx allow says
    how long nginx may cache it (``X-Accel-Expires``), at most this long and never past the
    decision's :attr:`~.enforcer.Outcome.stable_until`; ``0`` (the default) says nothing, and
    nginx caches nothing (docs/gateway.md, "Caching decisions in nginx").
    """

    def __init__(
        self,
        enforcer: Enforcer,
        *,
        public_url: str | None = None,
        max_body: int = 1024 * 1024,
        cache_seconds: int = 0,
    ) -> None:
        self.enforcer = enforcer
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_body = max_body
        self.cache_seconds = cache_seconds

    # -- the resource's origin ----------------------------------------------------------------

    def _origin(self, headers: Sequence[tuple[str, str]], default_scheme: str) -> str | None:
        if self.public_url is not None:
            return self.public_url
        found = _pick(headers, _ORIGIN_HEADERS)
        host = found.get("x-forwarded-host") or found.get("host")
        if not host:
            return None
        scheme = found.get("x-forwarded-proto") or default_scheme
        return origin_of(scheme.split(",")[0].strip(), host.split(",")[0].strip())

    def _metadata_url(self, headers: Sequence[tuple[str, str]], scheme: str) -> str | None:
        origin = self._origin(headers, scheme)
        return None if origin is None else metadata_url(origin)

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        try:
            if path == "/sideband/nginx":
                await self._nginx(scope, send)
            elif path == "/sideband/traefik":
                await self._traefik(scope, receive, send)
            elif path == ENVOY_PREFIX or path.startswith(ENVOY_PREFIX + "/"):
                await self._envoy(scope, receive, send)
            elif path == "/sideband/request":
                await self._json(scope, receive, send)
            elif path == WELL_KNOWN_PATH:
                await self._metadata(scope, send)
            elif path == "/health":
                await json_response(send, 200, {"status": "ok"})
            else:
                body = {"error": "not_found", "error_description": f"no endpoint {path}"}
                await json_response(send, 404, body)
        except ClientGone:
            return

    async def _metadata(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await json_response(send, 405, {"error": "method_not_allowed"}, [("Allow", "GET")])
            return
        origin = self._origin(request_headers(scope), scope.get("scheme", "http"))
        if origin is None:
            await json_response(send, 400, {"error": "invalid_request",
                                            "error_description": "no Host header"})  # fmt: skip
            return
        doc = self.enforcer.metadata_document(origin)
        await json_response(send, 200, doc, [("Cache-Control", "max-age=300")])

    def _decide(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None,
        scheme: str, *, body_available: bool = True, validated: Validated | None = None,
    ) -> Outcome:  # fmt: skip
        request = RequestInfo.build(method, target, headers, body)
        url = None
        if any(v[:5].lower() == "dpop " for v in request.header_values("authorization")):
            # RFC 9449 §4.3: a DPoP proof's htu is the URL the client used: the origin the
            # gateway in front says (public_url, X-Forwarded-Proto/-Host, Host) and the target.
            # Worked out for DPoP requests only: a Bearer request never needs it.
            origin = self._origin(headers, scheme)
            url = None if origin is None else origin + target
        return self.enforcer.check(
            request, resource_metadata=lambda: self._metadata_url(headers, scheme),
            body_available=body_available, url=url, validated=validated,
        )  # fmt: skip

    async def _body(self, receive: Receive, send: Send) -> bytes | None:
        try:
            return await read_body(receive, self.max_body)
        except BodyTooLarge:
            await json_response(send, 413, {
                "error": "request_too_large",
                "error_description": f"the request body is over {self.max_body} bytes",
            })  # fmt: skip
            return None

    # -- nginx --------------------------------------------------------------------------------

    def _nginx_allow(self, outcome: Outcome) -> list[tuple[str, str]]:
        headers = list(outcome.identity)
        until = outcome.stable_until
        if self.cache_seconds > 0 and until is not None:
            # X-Accel-Expires: seconds nginx may cache this answer (https://nginx.org/r/
            # proxy_cache_valid); whole seconds, rounded down, so never past stable_until.
            seconds = min(self.cache_seconds, math.floor(until - self.enforcer.clock()))
            if seconds >= 1:
                headers.append(("X-Accel-Expires", str(seconds)))
        return headers

    async def _nginx(self, scope: Scope, send: Send) -> None:
        # A token and request target allowed before, and still allowed: answered from the
        # enforcer's memory, before the request is described for the policy.
        method = target = None
        authorization: list[str] = []
        for k, v in scope["headers"]:
            name = k.lower()
            if name == b"authorization":
                authorization.append(v.decode("latin-1"))
            elif name == b"x-original-method":
                method = method or v.decode("latin-1")
            elif name == b"x-original-uri":
                target = target or v.decode("latin-1")
        validated = None
        if method and target:
            remembered = self.enforcer.remembered(method, target, authorization)
            if isinstance(remembered, Outcome):
                await send_response(send, 200, self._nginx_allow(remembered))
                return
            validated = remembered
        headers = request_headers(scope)
        original = _pick(headers, _NGINX_HEADERS)
        method = original.get("x-original-method")
        target = original.get("x-original-uri")
        if not method or not target:
            log.error("nginx sent no X-Original-Method or X-Original-URI; see docs/gateway.md")
            await send_response(send, 403, [("X-Stepup-Status", "500")])
            return
        client = [(k, v) for k, v in headers if k.lower() not in _NGINX_HEADERS]
        try:
            outcome = self._decide(method, target, client, None, scope.get("scheme", "http"),
                                   body_available=False, validated=validated)  # fmt: skip
        except Exception:
            log.exception("the decision failed; refusing the request")
            await send_response(send, 403, [("X-Stepup-Status", "500")])
            return
        if outcome.allowed:
            await send_response(send, 200, self._nginx_allow(outcome))
            return
        status = outcome.status
        challenge = _first(outcome.headers, "www-authenticate")
        headers_out = [("X-Stepup-Status", str(status))]
        if status == 401 or (status == 400 and challenge is not None):
            nginx_status = 401
        else:
            nginx_status = 403
            if challenge is not None:  # nginx passes WWW-Authenticate on a 401 only
                headers_out.append(("X-Stepup-Www-Authenticate", challenge))
        headers_out += [(k, v) for k, v in outcome.headers if k.lower() != "content-type"]
        # nginx sends its own error page, not ours: the body travels in a header (JSON is ASCII
        # here, json.dumps escapes the rest) for the published config to return.
        headers_out.append(("X-Stepup-Body", outcome.body.decode("ascii")))
        await send_response(send, nginx_status, headers_out)

    # -- Envoy --------------------------------------------------------------------------------

    async def _envoy(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        target = raw_target(scope)[len(ENVOY_PREFIX) :] or "/"
        if not target.startswith("/"):
            target = "/" + target
        body = await self._body(receive, send)
        if body is None:
            return
        # A truncated body is not the body: a request a body rule may apply to is refused, like
        # one through nginx, rather than judged on part of its body or none.
        partial = (_first(headers, "x-envoy-auth-partial-body") or "").lower() == "true"
        await self._answer(scope, send, self._decide(
            scope["method"], target, headers, None if partial else body or None,
            scope.get("scheme", "http"), body_available=not partial),
            envoy=True)  # fmt: skip

    # -- Traefik ------------------------------------------------------------------------------

    async def _traefik(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        method = _first(headers, "x-forwarded-method") or scope["method"]
        target = _first(headers, "x-forwarded-uri")
        if not target:
            await json_response(send, 400, {
                "error": "invalid_request",
                "error_description": "X-Forwarded-Uri is missing: is this Traefik forwardAuth?",
            })  # fmt: skip
            return
        body = await self._body(receive, send)
        if body is None:
            return
        await self._answer(scope, send, self._decide(
            method, target, headers, body or None, scope.get("scheme", "http")))  # fmt: skip

    async def _answer(
        self, scope: Scope, send: Send, outcome: Outcome, envoy: bool = False
    ) -> None:
        if outcome.allowed:
            headers = list(outcome.identity)
            if envoy:
                sent = {k.lower() for k, _ in outcome.identity}
                missing = [h.lower() for h in IDENTITY_HEADERS if h.lower() not in sent]
                if missing:
                    headers.append(("x-envoy-auth-headers-to-remove", ", ".join(missing)))
            await send_response(send, 200, headers)
            return
        await send_response(send, outcome.status, outcome.headers, outcome.body)

    # -- JSON ---------------------------------------------------------------------------------

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await json_response(send, 405, {"error": "method_not_allowed"}, [("Allow", "POST")])
            return
        raw = await self._body(receive, send)
        if raw is None:
            return
        parsed = _parse_sideband_request(raw)
        if isinstance(parsed, str):
            await json_response(send, 400, {"error": "invalid_request",
                                            "error_description": parsed})  # fmt: skip
            return
        method, url, headers, body = parsed
        split = urlsplit(url)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        if split.scheme and split.netloc:
            headers = [(k, v) for k, v in headers if k.lower() != "host"] + [("Host", split.netloc)]
        outcome = self._decide(method, target, headers, body, split.scheme or "https")
        answer: dict[str, Any] = {"decision": "allow" if outcome.allowed else "refuse"}
        if outcome.allowed:
            sent = {k.lower() for k, _ in outcome.identity}
            answer["request"] = {
                "headers_to_set": [list(h) for h in outcome.identity],
                "headers_to_remove": [h for h in IDENTITY_HEADERS if h.lower() not in sent],
            }
        else:
            answer["response"] = {
                "status": outcome.status,
                "headers": [list(h) for h in outcome.headers],
                "body": outcome.body.decode(),
            }
        answer["record"] = dict(outcome.record)
        await json_response(send, 200, answer, [("Cache-Control", "no-store")])


def _parse_sideband_request(
    raw: bytes,
) -> tuple[str, str, list[tuple[str, str]], bytes | None] | str:
    """(method, url, headers, body) from a ``/sideband/request`` body, or what is wrong."""

    def bad(description: str) -> str:
        return description

    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return bad("the body must be a JSON object")
    if not isinstance(doc, dict):
        return bad("the body must be a JSON object")
    method, url = doc.get("method"), doc.get("url")
    if not isinstance(method, str) or not method.isascii() or not method.isalpha():
        return bad("method: required, an HTTP method such as GET")
    if not isinstance(url, str) or not (url.startswith("/") or "://" in url):
        return bad("url: required, an absolute URL or a path starting with /")
    headers: list[tuple[str, str]] = []
    given = doc.get("headers", {})
    # An object {name: value or [values]}, or PingAuthorize's list of one-entry objects.
    items: list[tuple[Any, Any]] = []
    if isinstance(given, dict):
        items = list(given.items())
    elif isinstance(given, list) and all(isinstance(h, dict) for h in given):
        items = [item for h in given for item in h.items()]
    else:
        return bad("headers: an object of names to values, or a list of {name: value} objects")
    for name, value in items:
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            return bad(f"headers: the value of {name!r} must be a string or a list of strings")
        headers.extend((str(name), v) for v in values)
    body = doc.get("body")
    if body is not None and not isinstance(body, str):
        return bad("body: a string (the request body as text) or null")
    return method.upper(), url, headers, body.encode() if body is not None else None

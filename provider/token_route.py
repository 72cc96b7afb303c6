"""``POST /token`` answered straight from WSGI, in front of the Flask app, for the plain case.

A token request is the provider's hottest path, and Flask's share of it — a request context, the
session cookie opened for nothing, the hooks of the login pages, the response object — cost about
a third of a millisecond per token, as much as everything but the RS256 signatures
(docs/benchmarks.md, "The token endpoint against node-oidc-provider"). Programs post to this
endpoint; nothing in it needs a framework. So :class:`TokenRoute` reads the form, calls the same
:class:`provider.token_endpoint.TokenEndpoint` the Flask view calls, and writes the answer with
the headers Flask would have added (the security headers of every response, ``Vary: Origin`` of
the endpoints that answer CORS).

Only the plain case takes this route: a ``POST`` to ``/token`` with a form body of a declared
length within the limit, no query string and no ``Origin``. Anything else — a browser's CORS
request, a body in another encoding, a ``NUL`` byte, a request too large — goes on to Flask with
its body untouched, and is answered there exactly as before (403/405/413, the CORS headers, the
error handlers). In the sandbox, a ``down`` fault sends every request to Flask too (``defer``),
where the fault answers ``503``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from .token_endpoint import TokenEndpoint, TokenRequest

__all__ = ["TokenRoute"]

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

FORM = "application/x-www-form-urlencoded"


class TokenRoute:
    """WSGI middleware: the plain ``POST /token`` to :class:`TokenEndpoint`, the rest to ``app``."""

    def __init__(
        self,
        app: WSGIApp,
        endpoint: TokenEndpoint,
        *,
        headers: Sequence[tuple[str, str]],
        max_length: int,
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        #: Added to every answer: the security headers, and RFC 9110 §12.5.5's ``Vary: Origin``
        #: (the Flask path's answer depends on Origin).
        self.headers = (*headers, ("Vary", "Origin"))
        self.max_length = max_length
        #: When set and true, Flask answers even the plain case (the sandbox's outage fault).
        self.defer: Callable[[], bool] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != "/token"
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or "HTTP_ORIGIN" in environ
            or environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM
            or (self.defer is not None and self.defer())
        ):
            return self.app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or int(length) > self.max_length:
            return self.app(environ, start_response)
        body: bytes = environ["wsgi.input"].read(int(length))
        form = _form(body)
        if form is None:
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again, and answers
            return self.app(environ, start_response)
        try:
            status, answer, headers = self.endpoint.respond(
                TokenRequest.read(form, environ.get("HTTP_AUTHORIZATION"), _dpop_headers(environ))
            )
        except Exception:  # as the Flask app's error handler: never a bare 500
            log.exception("unexpected error on POST /token")
            status, answer, headers = (
                500,
                {"error": "server_error", "error_description": "unexpected error"},
                [("Content-Type", "application/json")],
            )
        data = json.dumps(answer).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [*headers, *self.headers, ("Content-Length", str(len(data)))],
        )
        return [data]


def _form(body: bytes) -> list[tuple[str, str]] | None:
    """The pairs of a form body, or ``None`` when Flask should read it: not UTF-8, or a ``NUL``
    byte anywhere (the provider's rule for every parameter, :mod:`provider.views.errors`)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        return None
    return pairs


def _dpop_headers(environ: dict[str, Any]) -> list[str]:
    """The ``DPoP`` header, as the Flask view reads it: WSGI servers join repeated fields with a
    comma, and two proofs joined are no proof (RFC 9449 §4.3: "not more than one DPoP HTTP
    request header field")."""
    value = environ.get("HTTP_DPOP")
    return [] if value is None else [value]

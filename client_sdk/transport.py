"""How the SDK talks to the provider (discovery, JWKS, token endpoint): a callable per HTTP library.

The protocol steps build :class:`~client_sdk.protocol.HttpRequest` values; a transport sends one
and returns an :class:`~client_sdk.protocol.HttpResponse`. Redirects are never followed.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import requests

from client_sdk.protocol import HttpRequest, HttpResponse

__all__ = ["HttpxTransport", "RequestsTransport", "Transport"]


class Transport(Protocol):
    def __call__(self, request: HttpRequest) -> HttpResponse: ...


class RequestsTransport:
    """Sends with a ``requests.Session`` (its own by default, never the caller's auth)."""

    def __init__(self, session: requests.Session | None = None, *, timeout: float = 30.0) -> None:
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body,
            allow_redirects=False,
            timeout=self.timeout,
        )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.content)


class HttpxTransport:
    """Sends with an ``httpx.Client`` (its own by default)."""

    def __init__(self, client: httpx.Client | None = None, *, timeout: float = 30.0) -> None:
        self.client = client if client is not None else httpx.Client(timeout=timeout)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.client.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            content=request.body,
            follow_redirects=False,
        )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.content)

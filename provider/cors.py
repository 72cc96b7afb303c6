"""Cross-origin requests from browser clients: the CORS protocol of the WHATWG Fetch standard.

Which endpoints answer which origins, and why:

- **Discovery and the JWKS** are public documents: every origin may read them
  (``Access-Control-Allow-Origin: *``), as OIDC Discovery expects of browser-based RPs.
- **/token, /userinfo and /revoke** are what a single-page app calls from the browser when it runs
  the code flow (with PKCE) itself: redeem and refresh, read the user's claims, revoke at sign-out.
  They answer CORS — the ``OPTIONS`` preflight and the request — only for an origin that is the
  origin of a redirect URI registered for some client: a page that can receive codes is a page
  that may redeem them. Any other origin gets no CORS headers, so the browser keeps the response
  from it. ``WWW-Authenticate`` is exposed (``Access-Control-Expose-Headers``): an SPA must read
  userinfo's ``invalid_token`` challenge, and the token endpoint's ``401``.
- **Nothing else** answers CORS. ``/authorize``, the login pages and logout are navigations, not
  fetches; ``/introspect`` is for resource servers, which are not browsers.

No ``Access-Control-Allow-Credentials``: none of these endpoints reads cookies, so a cross-origin
request never needs the user's session at the provider. A loopback redirect URI accepts any port
(RFC 8252 §7.3, for native apps), but its origin here is the registered one only: native apps do
not need CORS, and any local process could serve a page on another port. The exception is the
sandbox with ``sandbox_loopback_clients``, where any client with a loopback redirect URI may log
in, so any loopback origin may redeem codes too: a single-page app under development works as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.wrappers import Response as BaseResponse

__all__ = ["origin_of", "register_cors"]

#: Public documents, readable from any origin.
PUBLIC = {
    "/.well-known/openid-configuration": "GET",
    "/.well-known/oauth-authorization-server": "GET",
    "/jwks": "GET",
}
#: What browser clients call, for the origins of registered redirect URIs only.
FOR_CLIENTS = {"/token": "POST", "/userinfo": "GET, POST", "/revoke": "POST"}
REQUEST_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = "WWW-Authenticate"
PREFLIGHT_MAX_AGE = "600"
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(uri: str) -> str | None:
    """The RFC 6454 origin of an http(s) URI as browsers serialize it in ``Origin``
    (``scheme://host`` and ``:port`` unless it is the scheme's default), or ``None``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def register_cors(
    app: Flask,
    redirect_uris: Iterable[str],
    also: Callable[[str], bool] | None = None,
) -> None:
    """Answer CORS on ``app`` as the module docstring says, for the origins of ``redirect_uris``,
    and for any origin ``also`` accepts (the sandbox's loopback clients: any loopback origin)."""
    origins = frozenset(o for o in map(origin_of, redirect_uris) if o is not None)

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        return origin if origin in origins or (also is not None and also(origin)) else None

    def preflight() -> BaseResponse | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if request.path in PUBLIC:
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = PUBLIC[request.path]
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
            return response
        if request.path in FOR_CLIENTS and allowed_origin():
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = FOR_CLIENTS[request.path]
            response.headers["Access-Control-Allow-Headers"] = REQUEST_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
            return response
        return None  # no CORS: Flask's own OPTIONS answer, which the browser will not accept

    def headers(response: BaseResponse) -> BaseResponse:
        if request.path in PUBLIC:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif request.path in FOR_CLIENTS:
            # The answer depends on Origin: caches must keep one per origin.
            response.vary.add("Origin")
            origin = allowed_origin()
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                if request.method != "OPTIONS":  # what a script may read of the real answer
                    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    app.before_request(preflight)
    app.after_request(headers)

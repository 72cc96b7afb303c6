"""Login through the user's browser and a loopback redirect: for CLIs and desktop apps (RFC 8252).

RFC 8252 §7.3: loopback redirect URIs use "the "http" scheme and are constructed with the
loopback IP literal and whatever port the client is listening on"; the provider "MUST allow any
port to be specified at the time of the request for loopback IP redirect URIs". So this
authenticator binds ``127.0.0.1`` on a free port (§8.3 recommends the IP literal over
``localhost``, which might resolve to another interface), opens the port only for this one
authorization and closes it once the response came back (§8.3), opens the system browser (§4.1,
§8.12: never an embedded user-agent), and waits for the redirect with a timeout.

PKCE is always on (§8.1: "Public native app clients MUST implement the Proof Key for Code
Exchange (PKCE [RFC7636]) extension to OAuth").
"""

from __future__ import annotations

import html
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from client_sdk.authenticators.base import LoginRequest
from client_sdk.errors import AuthenticationTimeout, AuthenticatorError

__all__ = ["LoopbackBrowserAuthenticator"]

_DONE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>{title}</title>"
    "<main><h1>{title}</h1><p>{message}</p></main>"
)


class _CallbackServer(HTTPServer):
    def __init__(self, port: int, path: str) -> None:
        super().__init__(("127.0.0.1", port), _CallbackHandler)
        self.path = path
        self.expected_state: str | None = None
        self.callback_url: str | None = None
        self.done = threading.Event()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        if target.path != self.server.path:
            self._answer(404, "Not found", "This is not the sign-in callback.")
            return
        query = parse_qs(target.query)
        # Only the response to *our* request ends the wait; anything else (a stale tab, another
        # local program) is refused and the wait goes on.
        if query.get("state") != [self.server.expected_state] or self.server.done.is_set():
            self._answer(400, "Unexpected request", "This sign-in response was not expected.")
            return
        host, port = self.server.server_address[:2]
        self.server.callback_url = f"http://{host!s}:{port}{self.path}"
        if "error" in query:
            self._answer(200, "Sign-in did not complete", "You can close this window.")
        else:
            self._answer(200, "Signed in", "You can close this window and return to the app.")
        self.server.done.set()

    def _answer(self, status: int, title: str, message: str) -> None:
        body = _DONE_PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query holds the authorization code: keep it out of stderr


def _open_or_print(url: str) -> bool:
    if webbrowser.open(url):
        return True
    print(f"Open this URL in your browser to sign in:\n  {url}", file=sys.stderr)
    return False


class LoopbackBrowserAuthenticator:
    """Opens the system browser at the provider and receives the redirect on ``127.0.0.1``.

    ``open_browser(url)`` defaults to :func:`webbrowser.open` (printing the URL when no browser
    opens). ``port=0`` picks a free port; ``path`` defaults to the path of the configured redirect
    URI, else ``/callback`` (the provider must have a ``http://127.0.0.1/…`` URI with that path
    registered). Raises :class:`AuthenticationTimeout` after ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        timeout: float = 300.0,
        open_browser: Callable[[str], object] | None = None,
        port: int = 0,
        path: str | None = None,
    ) -> None:
        self.timeout = timeout
        self._open = open_browser if open_browser is not None else _open_or_print
        self.port = port
        self.path = path

    def authenticate(self, login: LoginRequest) -> str:
        path = self.path or (urlsplit(login.redirect_uri).path if login.redirect_uri else "")
        server = _CallbackServer(self.port, path or "/callback")
        try:
            port = server.server_address[1]
            url = login.authorization_url(f"http://127.0.0.1:{port}{server.path}")
            assert login.pending is not None
            server.expected_state = login.pending.state
            thread = threading.Thread(target=server.serve_forever, name="stepup-loopback")
            thread.daemon = True
            thread.start()
            try:
                self._open(url)
                if not server.done.wait(self.timeout):
                    raise AuthenticationTimeout(
                        f"the browser did not return to the app within {self.timeout:g} s"
                    )
            finally:
                server.shutdown()
                thread.join()
        finally:
            server.server_close()
        if server.callback_url is None:  # pragma: no cover - done is only set with a URL
            raise AuthenticatorError("the loopback server stopped without a response")
        return server.callback_url

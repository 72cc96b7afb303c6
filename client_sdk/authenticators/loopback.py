"""Login through the user's browser and a loopback redirect: for CLIs and desktop apps (RFC 8252).

RFC 8252 §7.3: loopback redirect URIs use "the "http" scheme and are constructed with the
loopback IP literal and whatever port the client is listening on"; the provider "MUST allow any
port to be specified at the time of the request for loopback IP redirect URIs". So this
authenticator binds ``127.0.0.1`` on a free port (§8.3 recommends the IP literal over
``localhost``, which might resolve to another interface), opens the port only for this one
authorization and closes it once the response came back (§8.3), opens the system browser (§4.1,
§8.12: never an embedded user-agent), and waits for the redirect with a timeout.

Before it opens the browser it says why, through ``notify`` (standard error by default): on a
step-up, the level and freshness the API asked for and the API's own words, so a browser window
that pops up in the middle of a command is never a surprise. The page the browser lands on looks
like the provider's pages (the same colours, type and card), inline: it loads nothing, and its
Content-Security-Policy allows nothing but its own style.

PKCE is always on (§8.1: "Public native app clients MUST implement the Proof Key for Code
Exchange (PKCE [RFC7636]) extension to OAuth").
"""

from __future__ import annotations

import base64
import hashlib
import html
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from client_sdk.authenticators.base import LoginRequest
from client_sdk.errors import AuthenticationTimeout, AuthenticatorError

__all__ = ["LoopbackBrowserAuthenticator", "why_sign_in"]

# The provider's look (provider/static/style.css), trimmed to what these pages use.
_STYLE = """
:root { color-scheme: light dark; --accent: #1f5fbf; --error: #b3261e; --muted: #5f6368; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 28rem; margin: 2rem auto; padding: 1.5rem 2rem 2rem; border: 1px solid #d0d4da;
       border-radius: 10px; }
.brand { font-weight: 700; letter-spacing: .04em; color: var(--accent); margin: 0; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
.notice { background: rgba(31, 95, 191, .08); border-left: 4px solid var(--accent);
          padding: .5rem 1rem; border-radius: 4px; }
.error { color: var(--error); font-weight: 600; border-left: 4px solid var(--error);
         padding: .25rem .75rem; }
.muted { color: var(--muted); }
code { font-size: .9rem; }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# Nothing to load, nowhere to post, no frames: the page is text and its own inline style.
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · Stepup</title>
<style>{style}</style>
</head>
<body>
<main>
<header><p class="brand">Stepup</p></header>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def _page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), style=_STYLE, body=body).encode()


def _printable(text: str, limit: int = 300) -> str:
    """Text from the network made safe for a terminal: no control characters, bounded length."""
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _duration(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours > 1 else "")
    if seconds and seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute" + ("s" if minutes > 1 else "")
    return f"{seconds} seconds"


def why_sign_in(login: LoginRequest) -> str:
    """What the user is told before the browser opens: why, and where they will sign in."""
    issuer = _printable(login.issuer)
    requirement = login.requirement
    if login.challenge is None and requirement.is_default:
        return f"Opening your browser to sign in at {issuer}"
    needs = []
    if requirement.acr_values:
        needs.append(" or ".join(_printable(v, 120) for v in requirement.acr_values))
    if requirement.max_age is not None:
        needs.append(
            "a sign-in within the last "
            f"{_duration(requirement.max_age)} (max_age={requirement.max_age})"
        )
    lines = [
        f"This action needs {', with '.join(needs)}."
        if needs
        else "This action needs a new sign-in."
    ]
    if login.challenge is not None and login.challenge.error_description:
        lines.append(f'The API says: "{_printable(login.challenge.error_description)}"')
    lines.append(f"Opening your browser to sign in again at {issuer}")
    return "\n".join(lines)


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
            self._refuse(404, "Not found", "This is not the sign-in callback.")
            return
        query = parse_qs(target.query)
        # Only the response to *our* request ends the wait; anything else (a stale tab, another
        # local program) is refused and the wait goes on.
        if query.get("state") != [self.server.expected_state] or self.server.done.is_set():
            self._refuse(400, "Unexpected request", "This sign-in response was not expected.")
            return
        host, port = self.server.server_address[:2]
        self.server.callback_url = f"http://{host!s}:{port}{self.path}"
        if "error" in query:
            # The provider's error code and description, as text (escaped), so the user knows why.
            said = html.escape(query["error"][0])
            if query.get("error_description"):
                said += f" — {html.escape(query['error_description'][0])}"
            self._answer(
                200,
                "Sign-in did not complete",
                f'<p class="error" role="alert">The provider answered: {said}</p>'
                '<p class="muted">You can close this window; the app tells you what next.</p>',
            )
        else:
            self._answer(
                200,
                "Signed in",
                '<p class="notice" role="status">You are signed in.</p>'
                '<p class="muted">You can close this window and return to the app.</p>',
            )
        self.server.done.set()

    def _refuse(self, status: int, title: str, message: str) -> None:
        self._answer(status, title, f'<p class="error" role="alert">{html.escape(message)}</p>')

    def _answer(self, status: int, title: str, body_html: str) -> None:
        body = _page(title, body_html)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _CSP)
        # The address bar holds the authorization code: no Referer, not even to ourselves.
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query holds the authorization code: keep it out of stderr


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LoopbackBrowserAuthenticator:
    """Opens the system browser at the provider and receives the redirect on ``127.0.0.1``.

    ``open_browser(url)`` defaults to :func:`webbrowser.open`; when it returns ``False`` (no
    browser), the URL is printed instead. ``notify(message)`` receives what the user is told
    before the browser opens (see :func:`why_sign_in`) and that URL; it defaults to printing on
    standard error. ``port=0`` picks a free port; ``path`` defaults to the path of the configured
    redirect URI, else ``/callback`` (the provider must have a ``http://127.0.0.1/…`` URI with
    that path registered). Raises :class:`AuthenticationTimeout` after ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        timeout: float = 300.0,
        open_browser: Callable[[str], object] | None = None,
        port: int = 0,
        path: str | None = None,
        notify: Callable[[str], object] | None = None,
    ) -> None:
        self.timeout = timeout
        self._open = open_browser if open_browser is not None else webbrowser.open
        self._notify = notify if notify is not None else _to_stderr
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
                self._notify(why_sign_in(login) + " …")
                if self._open(url) is False:
                    self._notify(f"No browser opened. Open this URL to sign in:\n  {url}")
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

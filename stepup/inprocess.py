"""The sandbox in-process: the provider and the demo API on free ports of 127.0.0.1, sharing a
fresh database and one clock, driven from Python. The pytest plugin (:mod:`stepup.pytest_plugin`)
hands these out as the ``stepup_sandbox`` fixture (DESIGN.md, contract 11).

Tokens are minted through ``POST /sandbox/token`` and time is moved through ``POST /sandbox/clock``,
the same endpoints ``stepup token`` and ``stepup clock`` call, so what a test proves with the
fixture holds for the command line too. ``session()`` gives a ``requests`` session that logs in
and steps up by filling the provider's real login pages (client SDK + HeadlessAuthenticator).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from client_sdk import HeadlessAuthenticator, Hook, StepUpAuth
from provider import Clock

from .cli import build_sandbox, sandbox_config
from .config import ClientConfig, StepupConfig, UserConfig, load_config

__all__ = ["Sandbox", "SandboxError", "running_sandbox"]


class SandboxError(RuntimeError):
    """The sandbox refused a request (a bad claim, an unknown user); the message is its answer."""


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # a test run's output is not the place for an access log


def _unset(environ: Any, start_response: Any) -> Any:
    raise RuntimeError("the sandbox app was not set")


class Sandbox:
    """A running sandbox. ``issuer`` and ``api_url`` are its base URLs; ``users`` the seeded
    usernames; ``clock`` the clock the provider, the API and :meth:`session` share."""

    def __init__(self, config: StepupConfig, api_url: str, clock: Clock) -> None:
        self.config = config
        self.issuer = config.issuer
        self.api_url = api_url
        self.clock = clock
        self.users: tuple[str, ...] = tuple(u.username for u in config.users)
        self._http = requests.Session()
        self._sessions: list[requests.Session] = []

    def __repr__(self) -> str:
        return f"Sandbox(issuer={self.issuer!r}, api_url={self.api_url!r})"

    # --- time -----------------------------------------------------------------------------------

    def now(self) -> int:
        """The sandbox's time, epoch seconds."""
        return self.clock.now()

    def advance_clock(self, seconds: int) -> int:
        """Move the provider's and the API's clocks forward (or back, if negative); the new time."""
        return int(self._post("/sandbox/clock", {"advance": seconds})["now"])

    def set_clock(self, epoch: int) -> int:
        return int(self._post("/sandbox/clock", {"set": epoch})["now"])

    # --- tokens ---------------------------------------------------------------------------------

    def mint_token(
        self,
        username: str,
        *,
        acr: str | None = None,
        amr: list[str] | None = None,
        auth_time: int | None = None,
        scope: str | None = None,
    ) -> str:
        """A signed RFC 9068 access token for the API's audience, with these claims.

        ``acr``: default the weakest level; ``amr``: default the level's factors; ``auth_time``:
        epoch seconds, or a negative number for that many seconds before the sandbox's now
        (``-7200``: two hours ago); default now. ``scope``: default ``openid``.
        """
        return str(
            self.mint_tokens(username, acr=acr, amr=amr, auth_time=auth_time, scope=scope)[
                "access_token"
            ]
        )

    def mint_tokens(
        self,
        username: str,
        *,
        acr: str | None = None,
        amr: list[str] | None = None,
        auth_time: int | None = None,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """As :meth:`mint_token`, with the ID token too: the token endpoint's whole answer."""
        body: dict[str, Any] = {"username": username, "id_token": True}
        if acr is not None:
            body["acr"] = acr
        if amr is not None:
            body["amr"] = amr
        if auth_time is not None:
            body["auth_time"] = self.now() + auth_time if auth_time < 0 else auth_time
        if scope is not None:
            body["scope"] = scope
        return self._post("/sandbox/token", body)

    # --- negative paths -------------------------------------------------------------------------

    def inject(
        self,
        fault: str,
        user: str | None = None,
        *,
        count: int = 1,
        seconds: int | None = None,
    ) -> dict[str, Any]:
        """Arm a fault (``POST /sandbox/faults``; provider/sandbox_faults.py): ``cancel``,
        ``refuse`` or ``unmet`` for ``user``'s next ``count`` logins, or ``down`` for ``seconds``
        of sandbox time (:meth:`advance_clock` ends it). Answers the armed faults."""
        body: dict[str, Any] = {"fault": fault}
        if fault == "down":
            if seconds is None:
                raise SandboxError("inject('down', seconds=N): for how long")
            body["seconds"] = seconds
        else:
            if user is None:
                raise SandboxError(f"inject({fault!r}, user): whose next login")
            body |= {"user": user, "count": count}
        return self._post("/sandbox/faults", body)

    def faults(self) -> dict[str, Any]:
        """The armed faults: ``{"faults": [{"user", "fault", "count"}], "down": ... | None}``."""
        return self._call("GET", "/sandbox/faults")

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/sandbox/faults")

    # --- a client that steps up -----------------------------------------------------------------

    def user(self, username: str) -> UserConfig:
        for u in self.config.users:
            if u.username == username:
                return u
        raise SandboxError(f"no user {username!r}; the sandbox has {', '.join(self.users)}")

    def default_username(self) -> str:
        """The first user with a one-time code (who can step up), else the first user."""
        with_otp = [u.username for u in self.config.users if u.totp_secret]
        if not (with_otp or self.users):
            raise SandboxError("the sandbox config has no [[users]]")
        return (with_otp or list(self.users))[0]

    def session(
        self,
        username: str | None = None,
        *,
        client_id: str | None = None,
        hooks: Sequence[Hook] = (),
    ) -> Any:
        """A ``requests.Session`` whose requests log ``username`` in and step up when the API
        challenges, by filling the provider's login pages (the client SDK's StepUpAuth with a
        HeadlessAuthenticator). Default: :meth:`default_username`, the config's first client
        that signs users in. ``hooks`` see every exchange (client SDK events). Closed when the
        sandbox stops."""
        user = self.user(username or self.default_username())
        client = self._client(client_id)
        browser = HeadlessAuthenticator(
            user.username, user.password, user.totp_secret, clock=self.clock
        )
        http = requests.Session()
        http.auth = StepUpAuth(
            self.issuer,
            client.client_id,
            authenticator=browser,
            client_secret=client.client_secret,
            redirect_uri=client.redirect_uris[0],
            clock=self.clock,
            hooks=hooks,
        )
        self._sessions.append(http)
        return http

    def _client(self, client_id: str | None) -> ClientConfig:
        usable = [
            c
            for c in self.config.clients
            if c.redirect_uris and "authorization_code" in c.grant_types
        ]
        for c in usable:
            if client_id is None or c.client_id == client_id:
                return c
        names = ", ".join(c.client_id for c in usable) or "none"
        raise SandboxError(
            f"no client {client_id!r} that signs users in; the config's such clients: {names}"
            if client_id
            else "the sandbox config has no [[clients]] with a redirect URI"
        )

    # --- plumbing -------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, f"{self.issuer}{path}", json=body, timeout=30)
        answer: dict[str, Any] = response.json()
        if response.status_code != 200:
            raise SandboxError(f"{path}: {answer.get('error_description') or answer}")
        return answer

    def close(self) -> None:
        for http in self._sessions:
            http.close()
        self._http.close()


def _rehomed(config: StepupConfig, issuer: str) -> StepupConfig:
    """``config`` served at ``issuer`` (its port is the one really bound), sandbox mode on: a test
    fixture is a sandbox whatever the file says."""
    api = (
        config.api
        if config.api.issuer not in (None, config.issuer)
        else replace(config.api, issuer=None)
    )
    return replace(
        config,
        issuer=issuer,
        api=api,
        provider=replace(config.provider, sandbox=True),
    )


@contextmanager
def running_sandbox(
    config_path: str | Path | None = None,
    directory: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
) -> Iterator[Sandbox]:
    """Serve the provider and the demo API until the ``with`` block ends.

    ``config_path``: a TOML config (default: the built-in sandbox config); its issuer is replaced
    by the address really bound. ``directory``: where the fresh SQLite database goes (default: a
    temporary directory removed afterwards). ``host``: the name the URLs use; the servers listen
    on loopback either way. ``"localhost"`` is what a browser needs for passkeys (WebAuthn refuses
    an IP address as relying party ID).
    """
    base = load_config(config_path) if config_path is not None else sandbox_config()
    with tempfile.TemporaryDirectory(prefix="stepup-sandbox-") as scratch:
        folder = Path(directory) if directory is not None else Path(scratch)
        servers: list[BaseWSGIServer] = [
            make_server("127.0.0.1", 0, _unset, threaded=True, request_handler=_QuietHandler)
            for _ in range(2)
        ]
        provider_server, api_server = servers
        config = _rehomed(base, f"http://{host}:{provider_server.port}")
        clock = Clock()
        provider_app, api_app = build_sandbox(config, f"sqlite:///{folder}/stepup.db", clock)
        provider_server.app, api_server.app = provider_app, api_app
        threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
        for t in threads:
            t.start()
        sandbox = Sandbox(config, f"http://{host}:{api_server.port}", clock)
        try:
            yield sandbox
        finally:
            sandbox.close()
            for s in servers:
                s.shutdown()
                s.server_close()
            for t in threads:
                t.join(timeout=5)
            for app in (provider_app, api_app):
                _dispose(app)


def _dispose(app: Any) -> None:
    """Close the database connections (Windows and PostgreSQL care; SQLite files are removed)."""
    provider = app.extensions.get("stepup_provider")
    if provider is not None:
        provider.db.dispose()
    bank = app.extensions.get("bank")
    if bank is not None:
        bank.engine.dispose()

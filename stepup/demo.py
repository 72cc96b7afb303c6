"""``stepup demo``: a narrated step-up, end to end, over real HTTP on 127.0.0.1.

It starts the sandbox in-process (a fresh temporary SQLite database, free ports, one shared
:class:`provider.Clock`), then plays seven scenes with the client SDK and prints every exchange the
SDK reports through its hooks (:mod:`stepup.narration`). Each scene checks that things happened
as it said they would; the exit status is 0 only when every scene did.

The clock is the sandbox's own: the demo moves it forward to show ``max_age`` without waiting, and
holds it still while ``--step`` waits for Enter, so a long pause does not expire the tokens.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

import requests
from flask import Flask, Response, jsonify
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from client_sdk import (
    ApiRequestSent,
    ApiResponseReceived,
    AuthorizationRequested,
    CibaAuthenticator,
    Event,
    FactorsRequested,
    HeadlessAuthenticator,
    LevelNotReached,
    LoginFailed,
    ProviderExchange,
    StepUpAuth,
    StepUpFailed,
    TokenReused,
    TokensIssued,
    UnmetAuthenticationRequirements,
)
from client_sdk.authenticators.passkey import SoftwarePasskey
from client_sdk.protocol import Requirement
from provider import Clock
from provider.factors import totp
from resource_api import require

from .cli import build_sandbox, sandbox_config
from .config import StepupConfig, UserConfig
from .narration import Check, Narrator, Style, terminal_width, when

__all__ = ["run_demo"]

LOA1, LOA2, LOA3 = "urn:stepup:loa:1", "urn:stepup:loa:2", "urn:stepup:loa:3"
PHR = "phr"  # OpenID EAP ACR Values: phishing-resistant; the sandbox's passkey level
CLIENT_ID = "bank-cli"
CIBA_CLIENT = "bank-payments"
CIBA_SECRET = "bank-payments-secret-for-the-local-sandbox"

E = TypeVar("E", bound=Event)


# --- the sandbox, in-process ---------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the narration shows the exchanges; werkzeug's access log would repeat them


@dataclass
class Sandbox:
    issuer: str
    api: str
    config: StepupConfig
    clock: Clock


def _vault() -> Response:
    return jsonify(message="never reached: no token meets urn:stepup:loa:3 at this provider")


@contextmanager
def running_sandbox() -> Iterator[Sandbox]:
    """Provider and demo API on free ports, sharing a fresh database and one clock."""
    with tempfile.TemporaryDirectory(prefix="stepup-demo-") as tmp:
        servers: list[BaseWSGIServer] = [
            make_server("127.0.0.1", 0, _unset, threaded=True, request_handler=_QuietHandler)
            for _ in range(2)
        ]
        provider_server, api_server = servers
        issuer = f"http://127.0.0.1:{provider_server.port}"
        config = sandbox_config(issuer)  # the issuer must be the address it really listens on
        clock = Clock()
        provider_app, api_app = build_sandbox(config, f"sqlite:///{tmp}/demo.db", clock)
        _add_vault(api_app)
        provider_server.app, api_server.app = provider_app, api_app
        threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
        for t in threads:
            t.start()
        try:
            yield Sandbox(issuer, f"http://127.0.0.1:{api_server.port}", config, clock)
        finally:
            for s in servers:
                s.shutdown()
                s.server_close()
            for t in threads:
                t.join(timeout=5)


def _unset(environ: Any, start_response: Any) -> Any:
    raise RuntimeError("the sandbox app was not set")


def _wire() -> Response:
    return jsonify(message="wire transfers are open: this token is phishing-resistant")


def _add_vault(api_app: Flask) -> None:
    # Scene 6 needs a route asking for a level the provider does not define; scene 7 one that
    # asks for a passkey.
    api_app.add_url_rule("/vault", "vault", require(acr_values=[LOA3])(_vault))
    api_app.add_url_rule("/wire", "wire", require(acr_values=[PHR])(_wire))


# --- reading what a scene saw --------------------------------------------------------------------


def of(events: Sequence[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def factors_asked(events: Sequence[Event]) -> list[tuple[str, ...]]:
    return [e.factors for e in of(events, FactorsRequested)]


def expect(ok: bool, promise: str, saw: str = "") -> Check:
    return Check(ok, promise if ok or not saw else f"{promise} (saw: {saw})")


def _first_challenge(events: Sequence[Event]) -> str:
    responses = of(events, ApiResponseReceived)
    if not responses or responses[0].status != 401:
        return ""
    return ", ".join(responses[0].www_authenticate)


def _statuses(events: Sequence[Event]) -> list[int]:
    return [e.status for e in of(events, ApiResponseReceived)]


def _wrong_code(secret: str, now: int) -> str:
    """A six-digit code the provider will refuse: none of the codes near ``now``."""
    nearby = {totp.code_at(secret, now + k * totp.PERIOD) for k in range(-2, 3)}
    return next(
        c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in nearby
    )


# --- the scenes -----------------------------------------------------------------------------------


class Demo:
    def __init__(self, sandbox: Sandbox, narrator: Narrator) -> None:
        self.sb = sandbox
        self.n = narrator
        self.user = _user(sandbox.config)
        self.browser = self._browser()
        self.auth = self._sdk(self.browser)
        self.http = requests.Session()
        self.http.auth = self.auth
        self.accounts: list[str] = []
        self.elevated_at: float | None = None
        # When alice's browser last signed in with every factor (scene 2): scene 6 reuses it.
        self.full_login_at: float | None = None
        self._waits = 0

    def _browser(self, code: Callable[[], str] | None = None) -> HeadlessAuthenticator:
        u = self.user
        if code is not None:
            return HeadlessAuthenticator(u.username, u.password, totp=code, clock=self.sb.clock)
        return HeadlessAuthenticator(u.username, u.password, u.totp_secret, clock=self.sb.clock)

    def _sdk(
        self, browser: HeadlessAuthenticator | CibaAuthenticator, *, client_id: str = CLIENT_ID,
        **kwargs: Any,
    ) -> StepUpAuth:  # fmt: skip
        return StepUpAuth(
            self.sb.issuer,
            client_id,
            authenticator=browser,
            hooks=[self.n],
            clock=self.sb.clock,
            **kwargs,
        )

    def _transfer(self, amount: str, http: requests.Session | None = None) -> requests.Response:
        body = {"from_account": self.accounts[0], "to_account": self.accounts[1], "amount": amount}
        return (http or self.http).post(f"{self.sb.api}/transfers", json=body, timeout=30)

    def _show(self, response: requests.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            return
        if "accounts" in body:
            shown = ", ".join(
                f"{a['name']} {a['balance']} {a['currency']}" for a in body["accounts"]
            )
            self.n.line("bank", shown, dim=True)
        elif "authorized_with" in body:
            self.n.line(
                "bank",
                f"transfer {body['id']}: {body['amount']} {body['currency']}, "
                f"recorded as authorised with acr={body['authorized_with']['acr']}",
                dim=True,
            )

    def _raised(self, exc: Exception) -> None:
        self.n.line("SDK raises", self.n.s.bold(type(exc).__name__) + f": {exc}")

    # 1 ------------------------------------------------------------------------------------------

    def everyday_read(self) -> list[Check]:
        r = self.http.get(f"{self.sb.api}/accounts", timeout=30)
        ev = self.n.take()
        if r.status_code == 200:
            self.accounts = [a["id"] for a in r.json()["accounts"]]
        self._show(r)
        issued = of(ev, TokensIssued)
        acr = issued[-1].id_token_claims.get("acr") if issued else None
        return [
            expect(r.status_code == 200, "GET /accounts answered 200 OK", f"{r.status_code}"),
            expect(
                factors_asked(ev) == [("pwd",)],
                "the login asked for the password only",
                str(factors_asked(ev)),
            ),
            expect(
                acr == LOA1 and _statuses(ev) == [200],
                f"the everyday token (acr={LOA1}) was enough: no challenge, no step-up",
                f"acr={acr}, statuses {_statuses(ev)}",
            ),
        ]

    # 2 ------------------------------------------------------------------------------------------

    def transfer_steps_up(self) -> list[Check]:
        r = self._transfer("25.00")
        ev = self.n.take()
        self._show(r)
        challenge = _first_challenge(ev)
        asked = of(ev, AuthorizationRequested)
        params = asked[0].params if asked else {}
        issued = of(ev, TokensIssued)
        claims = issued[-1].id_token_claims if issued else {}
        self.elevated_at = claims.get("auth_time")
        self.full_login_at = self.elevated_at
        return [
            expect(
                'error="insufficient_user_authentication"' in challenge
                and f'acr_values="{LOA2}"' in challenge,
                f'the API answered 401 with the challenge acr_values="{LOA2}"',
                challenge or str(_statuses(ev)),
            ),
            expect(
                params.get("acr_values") == LOA2 and params.get("max_age") == "3600",
                f"the SDK asked the provider for acr_values={LOA2}, max_age=3600",
                str({k: params.get(k) for k in ("acr_values", "max_age")}),
            ),
            expect(
                factors_asked(ev) == [("otp",)],
                "only the OTP was asked: the provider's session already had the password",
                str(factors_asked(ev)),
            ),
            expect(
                claims.get("acr") == LOA2 and "otp" in (claims.get("amr") or ()),
                f"the new token says acr={LOA2}, amr includes otp",
                f"acr={claims.get('acr')}, amr={claims.get('amr')}",
            ),
            expect(
                _statuses(ev) == [401, 201],
                "the SDK retried once with it: 201 Created",
                str(_statuses(ev)),
            ),
        ]

    # 3 ------------------------------------------------------------------------------------------

    def second_transfer(self) -> list[Check]:
        r = self._transfer("10.00")
        ev = self.n.take()
        self._show(r)
        return [
            expect(
                _statuses(ev) == [201] and len(of(ev, ApiRequestSent)) == 1,
                "one request, 201 Created: no step-up on the second transfer",
                str(_statuses(ev)),
            ),
            expect(
                bool(of(ev, TokenReused)) and not of(ev, AuthorizationRequested),
                f"the SDK remembered that POST /transfers needs {LOA2} and sent the stepped-up "
                "token straight away",
                f"{len(of(ev, AuthorizationRequested))} authorization request(s)",
            ),
        ]

    # 4 ------------------------------------------------------------------------------------------

    def phone_approval(self) -> list[Check]:
        self.n.note(
            f"the bank's payment desk ({CIBA_CLIENT}, a confidential client with no browser) "
            f"moves money for {self.user.username}; her phone is /sandbox/device/"
            f"{self.user.username}, and the SDK's waits move the sandbox clock"
        )
        decided: list[int] = []

        def sleep(seconds: float) -> None:
            # alice's phone: she looks at it while the SDK waits, and approves on its second
            # wait (its first poll sees authorization_pending) — what `stepup approve` does.
            if len(decided) < 2 and self._waits % 2 == 1:
                url = f"{self.sb.issuer}/sandbox/device/{self.user.username}/approve"
                phone = threading.Thread(
                    target=lambda: decided.append(
                        requests.post(url, json={}, timeout=30).status_code
                    )
                )
                phone.start()
                phone.join(timeout=30)
                what = "the payment" if len(decided) == 2 else "the sign-in"
                self.n.line("alice's phone", f"approves {what} ('PAY-1500')   → {decided[-1]}")
            self._waits += 1
            self.sb.clock.advance(int(seconds))

        ciba = CibaAuthenticator(
            login_hint=self.user.username, binding_message="PAY-1500", sleep=sleep,
            clock=self.sb.clock.now,
        )  # fmt: skip
        http = requests.Session()
        http.auth = self._sdk(ciba, client_id=CIBA_CLIENT, client_secret=CIBA_SECRET)
        r = self._transfer("1500.00", http)
        ev = self.n.take()
        self._show(r)
        challenge = _first_challenge(ev)
        issued = of(ev, TokensIssued)
        granted = issued[-1].access_token_claims.get("authorization_details") if issued else None
        wanted = [{"type": "payment", "amount": "1500.00", "currency": "EUR",
                   "payee": self.accounts[1]}]  # fmt: skip
        polls = [e for e in of(ev, ProviderExchange) if e.purpose == "ciba_poll"]
        return [
            expect(
                "authorization_details=" in challenge and "max_age=300" in challenge,
                "the API answered 401 naming this very payment (authorization_details) and "
                "max_age=300",
                challenge or str(_statuses(ev)),
            ),
            expect(
                decided == [200, 200] and [p.status for p in polls] == [400, 200, 400, 200],
                "alice approved on her phone twice — the desk's sign-in, then the payment; each "
                "time the SDK's first poll was told authorization_pending",
                f"phone {decided}, polls {[p.status for p in polls]}",
            ),
            expect(
                granted == wanted,
                "the new access token carries the approved payment (RFC 9396 "
                "authorization_details)",
                str(granted),
            ),
            expect(
                _statuses(ev) == [401, 201],
                "the SDK retried the transfer once with it: 201 Created",
                str(_statuses(ev)),
            ),
        ]

    # 5 ------------------------------------------------------------------------------------------

    def wrong_otp(self) -> list[Check]:
        secret = self.user.totp_secret or ""
        wrong = _wrong_code(secret, self.sb.clock.now())
        self.n.note(f"a new device (no provider session); the code typed is {wrong}, a wrong one")
        http = requests.Session()
        http.auth = self._sdk(self._browser(lambda: wrong))
        error: Exception | None = None
        try:
            self._transfer("25.00", http)
        except StepUpFailed as exc:
            error = exc
        ev = self.n.take()
        if isinstance(error, LoginFailed) and error.alert:
            self.n.line("provider says", f'"{error.alert}" (on the page, role="alert")')
        if error is not None:
            self._raised(error)
        return [
            expect(
                isinstance(error, LoginFailed),
                "the SDK raised LoginFailed (a StepUpFailed) carrying the provider's message",
                repr(error),
            ),
            expect(
                _statuses(ev) == [401] and len(of(ev, ApiRequestSent)) == 1,
                "the transfer was sent once, refused with 401, and never retried: no money moved",
                str(_statuses(ev)),
            ),
        ]

    # 6 ------------------------------------------------------------------------------------------

    def level_not_reachable(self) -> list[Check]:
        if self.full_login_at is not None:
            self.n.note(
                "the SDK uses alice's browser of scenes 1-3 again (not scene 5's new device); its "
                "provider session has her password and one-time code from scene 2's step-up at "
                f"{when(self.full_login_at, self.sb.clock.now())}"
            )
        error: Exception | None = None
        try:
            self.http.get(f"{self.sb.api}/vault", timeout=30)
        except StepUpFailed as exc:
            error = exc
            self._raised(exc)
        ev = self.n.take()
        sent, asked = len(of(ev, ApiRequestSent)), len(of(ev, AuthorizationRequested))
        pages = factors_asked(ev)
        self.n.line("SDK", f"stopped after {sent} API request and {asked} authorization request")
        self.n.write()
        self.n.say(
            "Asked as an essential claim instead (StepUpAuth(..., essential_acr=True)), the "
            "provider refuses outright with unmet_authentication_requirements:"
        )
        strict = requests.Session()
        strict.auth = self._sdk(self.browser, essential_acr=True, token_cache=self.auth.token_cache)
        essential: Exception | None = None
        try:
            strict.get(f"{self.sb.api}/vault", timeout=30)
        except StepUpFailed as exc:
            essential = exc
            self._raised(exc)
        ev2 = self.n.take()
        return [
            expect(
                not pages,
                f"no login page: the session from scene 2 already meets {LOA2}, and the provider "
                "answers at that level",
                f"the provider asked for {pages}",
            ),
            expect(
                isinstance(error, LevelNotReached),
                f"the provider did not reach {LOA3}; the SDK saw it in the ID token's acr and "
                "raised LevelNotReached (a StepUpFailed)",
                repr(error),
            ),
            expect(
                (sent, asked) == (1, 1),
                "bounded: one API request, one authorization request, then a typed error; no loop",
                f"{sent} API request(s), {asked} authorization request(s)",
            ),
            expect(
                isinstance(essential, UnmetAuthenticationRequirements)
                and len(of(ev2, ApiRequestSent)) == 1,
                "with essential_acr=True: UnmetAuthenticationRequirements, also after one request",
                repr(essential),
            ),
        ]

    # 7 ------------------------------------------------------------------------------------------

    def passkey(self) -> list[Check]:
        key = SoftwarePasskey()
        self.browser.passkey = key
        self.n.note(
            "alice's headless browser now carries a software passkey: a test key pair, which the "
            "provider counts as a software key (amr swk), never as hardware (phrh)"
        )
        r = self.http.get(f"{self.sb.api}/wire", timeout=30)
        ev = self.n.take()
        challenge = _first_challenge(ev)
        issued = of(ev, TokensIssued)
        claims = issued[-1].id_token_claims if issued else {}
        self.n.write()
        self.n.say(
            "A new device that holds the same passkey (a synced passkey, say) and no password: "
            "the app signs alice in at phr before it calls the API (OIDCClient.login)."
        )
        device = HeadlessAuthenticator(self.user.username, "", passkey=key, clock=self.sb.clock)
        auth = self._sdk(device)
        error: Exception | None = None
        signed_in: dict[str, Any] = {}
        r2: requests.Response | None = None
        try:
            signed_in = dict(auth.client.login(Requirement((PHR,))).claims)
            http = requests.Session()
            http.auth = auth
            r2 = http.get(f"{self.sb.api}/wire", timeout=30)
        except StepUpFailed as exc:
            error = exc
            self._raised(exc)
        ev2 = self.n.take()
        return [
            expect(
                f'acr_values="{PHR}"' in challenge,
                f'GET /wire answered 401 with acr_values="{PHR}"',
                challenge or str(_statuses(ev)),
            ),
            expect(
                factors_asked(ev) == [("passkey",)],
                "the provider asked for the passkey alone — alice had none, so her browser "
                "created one (she had already proved her password and one-time code)",
                str(factors_asked(ev)),
            ),
            expect(
                claims.get("acr") == PHR and claims.get("amr") == ["swk", "pin", "mfa"],
                f"the new token says acr={PHR}, amr=[swk, pin, mfa] (RFC 8176: a software key, "
                "unlocked by user verification)",
                f"acr={claims.get('acr')}, amr={claims.get('amr')}",
            ),
            expect(
                r.status_code == 200 and _statuses(ev) == [401, 200],
                "the SDK retried once: 200 OK",
                str(_statuses(ev)),
            ),
            expect(
                error is None
                and factors_asked(ev2) == [("passkey",)]
                and signed_in.get("acr") == PHR,
                "on the new device: a passwordless sign-in, the passkey and nothing else",
                f"{factors_asked(ev2)}, acr={signed_in.get('acr')}, {error!r}",
            ),
            expect(
                r2 is not None and r2.status_code == 200 and key.sign_count == 1,
                "and GET /wire with that session: 200 OK, no further prompt (the passkey level "
                "meets the everyday token's request too)",
                f"{r2.status_code if r2 is not None else None}, sign count {key.sign_count}",
            ),
        ]


def _user(config: StepupConfig) -> UserConfig:
    return next(u for u in config.users if u.totp_secret)


@dataclass(frozen=True)
class Scene:
    title: str
    story: str
    play: Callable[[Demo], list[Check]]


SCENES = (
    Scene(
        "A read with the everyday token",
        "alice lists her accounts. GET /accounts needs a valid token and nothing more, so the SDK "
        "logs her in at the provider's default level: password only.",
        Demo.everyday_read,
    ),
    Scene(
        "A transfer steps up",
        f"POST /transfers needs {LOA2} (password and one-time code) from a login within the last "
        "hour (max_age=3600). The token says loa:1, so the API answers 401 with an RFC 9470 "
        "challenge; the SDK asks the provider for exactly that and retries the transfer once.",
        Demo.transfer_steps_up,
    ),
    Scene(
        "A second transfer, no step-up",
        "Another small transfer. The SDK already holds a loa:2 token that meets the route's "
        "requirement, so it sends that one.",
        Demo.second_transfer,
    ),
    Scene(
        "A large transfer, approved on a phone",
        "Transfers over 1000.00 need alice's approval of that very transfer: amount, currency and "
        "payee, as RFC 9396 authorization_details in the token. The bank's payment desk has no "
        "browser: its SDK uses CIBA — it asks the provider to ask alice, with the challenge's "
        "payment, and polls while she approves on her phone. The approval pays this transfer "
        "and no other.",
        Demo.phone_approval,
    ),
    Scene(
        "A wrong one-time code",
        "alice on a new device mistypes her code during the step-up. The provider refuses it; the "
        "SDK raises a typed error instead of retrying.",
        Demo.wrong_otp,
    ),
    Scene(
        "A level the provider cannot reach",
        f"GET /vault (added to the demo API for this scene) demands {LOA3}, which this provider "
        "does not define. acr_values is a voluntary request (OIDC Core §3.1.2.1), so the provider "
        f"does not fail: it answers at the level alice's session has, {LOA2}. alice's browser "
        "still has its provider session from scene 2 (password and one-time code, within the "
        "level's elevation lifetime), which "
        "meets that level: no login happens, the provider answers at once. The SDK checks the ID "
        "token's acr against what it asked for, and stops.",
        Demo.level_not_reachable,
    ),
    Scene(
        "A passkey for wire transfers",
        f"GET /wire (added to the demo API for this scene) demands {PHR}, OpenID's EAP value for "
        "phishing-resistant authentication: a passkey (WebAuthn). alice has none yet; after the "
        "password and one-time code she has just proved, the provider has her create one, and "
        "that is the step-up. Then a second device signs in with the passkey alone.",
        Demo.passkey,
    ),
)


# --- the run --------------------------------------------------------------------------------------


def _header(n: Narrator, sb: Sandbox) -> None:
    for row in textwrap.wrap(
        "Stepup demo: step-up authentication, narrated, over real HTTP", n.width
    ):
        n.write(n.s.bold(row))
    n.write()
    n.line("provider", f"{sb.issuer}  the OpenID provider; its levels, weakest first:")
    for level in sb.config.acr_levels:
        n.more(f"{level.value}: {level.description or ' + '.join(level.factors)}", indent=2)
    n.line("bank API", f"{sb.api}  the demo API (RFC 9470 challenges):")
    n.more("GET /accounts: any valid token", indent=2)
    for r in sb.config.api.routes:
        if (r.method, r.path) == ("POST", "/transfers"):
            n.more(f"POST /transfers: {' '.join(r.acr_values)}, max_age={r.max_age}", indent=2)
    for rule in sb.config.api.rules:
        n.more(f"  rule: {rule.name} (stepup/sandbox.toml)", indent=2)
    n.line("client", f"{CLIENT_ID} with the Stepup SDK; a headless browser types alice's password")
    n.more("and one-time codes into the provider's login pages")
    n.line("storage", "a fresh temporary database; the sandbox clock can be moved forward")


def _pause(clock: Clock, out: TextIO, stdin: TextIO) -> None:
    out.write("\n  [Enter] for the next scene ")
    out.flush()
    started = time.monotonic()
    stdin.readline()
    # Hold the sandbox clock while the reader reads: tokens must not expire during a pause.
    clock.advance(-int(time.monotonic() - started))


def run_demo(
    step: bool,
    color: str,
    out: TextIO,
    stdin: TextIO | None = None,
    width: int | None = None,
) -> int:
    """Play every scene; 0 when each behaved as its narration says, 1 otherwise.

    ``width``: the columns to wrap the text to (default: the terminal's, at most 100)."""
    style = Style.for_stream(out, color)
    results: list[bool] = []
    with running_sandbox() as sb:
        names = {sb.issuer: "provider", sb.api: "API"}
        narrator = Narrator(
            out, style, now=sb.clock.now, names=names, width=width or terminal_width()
        )
        _header(narrator, sb)
        demo = Demo(sb, narrator)
        for number, scene in enumerate(SCENES, 1):
            if step and number > 1:
                _pause(sb.clock, out, stdin or sys.stdin)
            narrator.title(number, len(SCENES), scene.title)
            narrator.say(scene.story)
            narrator.write()
            try:
                checks = scene.play(demo)
            except Exception as exc:  # a scene that breaks is a failed scene, shown as such
                narrator.take()
                checks = [Check(False, f"the scene broke: {type(exc).__name__}: {exc}")]
            narrator.checks(checks)
            results.append(all(c.ok for c in checks))
    passed = sum(results)
    narrator.write()
    summary = f"{passed}/{len(results)} scenes behaved as described."
    narrator.write(
        style.bold(style.green(summary) if passed == len(results) else style.red(summary))
    )
    if passed == len(results):
        narrator.say(
            "In short: the API says what it needs in a 401 (acr_values, max_age); the SDK asks "
            "the provider for exactly that, checks the ID token's acr and auth_time, and retries "
            "once; the provider asks only for what the session lacks. Next: docs/concepts.md."
        )
    return 0 if passed == len(results) else 1

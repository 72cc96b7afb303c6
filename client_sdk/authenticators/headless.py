"""A small browser that logs in by filling the provider's HTML forms: tests, CI, scripts, demos.

It finds inputs by their ``autocomplete`` tokens (``username``, ``current-password``,
``one-time-code``), submits every other input as the page gave it (the ``csrf_token`` among them)
with ``action=continue`` — never ``cancel`` — and stops at the redirect to the client's redirect
URI, which it returns without following. Its cookie jar lives as long as the authenticator, so a
step-up finds the provider session and is asked only for the missing factor.

It posts credentials only to the issuer's origin, caps the pages it will walk (``max_pages``), and
raises :class:`~client_sdk.errors.LoginFailed` with the page's ``role="alert"`` text when the
provider refuses a password or a code.

One-time codes are single use (RFC 6238 §5.2: the verifier "MUST NOT accept the second attempt of
the same OTP after the successful validation has been issued for the first OTP"). A test suite,
a CI job or a script run twice logs the same user in again and again, often within one 30-second
step; sending the same code would be refused as a replay, and refusals add up to a lockout. So
the authenticator remembers the step of the last code it sent and, asked for a code again within
that step, waits for the next one; when the provider says a code was already used (``data-error=
"replayed"`` on its alert: another process used it), it waits for the next step and sends that
code instead, at most twice per login. ``clock`` and ``sleep`` are injectable, so tests move time
instead of waiting.

Passkeys: given ``passkey=SoftwarePasskey()`` (a test key pair, :mod:`client_sdk.authenticators.
passkey`), it answers the provider's passkey pages — their form's ``data-passkey`` ceremony and
``data-passkey-options`` — as a browser with that authenticator would: it creates the passkey
when a step-up enrols one, and signs with it when asked; a passkey sign-in page it has no
registered passkey for is left for the password sign-in the page offers. Keep the passkey
between runs (:meth:`~client_sdk.authenticators.passkey.SoftwarePasskey.to_json`): its counter
must keep going up.

RFC 8252 §8.12 forbids embedded user-agents for real users' logins: this authenticator knows the
user's password, so it is for test users and automation, not for people.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import requests

from client_sdk.authenticators.base import LoginRequest
from client_sdk.authenticators.forms import Button, Form, Page, parse_page
from client_sdk.authenticators.passkey import SoftwarePasskey
from client_sdk.authenticators.totp import PERIOD, decode_secret, totp
from client_sdk.errors import AuthenticatorError, ConfigurationError, LoginFailed
from client_sdk.hooks import FactorsRequested, ProviderExchange, WaitingForNextCode

__all__ = ["HeadlessAuthenticator", "loopback_redirect_uri"]

# autocomplete token -> RFC 8176 amr value of the factor it proves
_FACTORS = {"current-password": "pwd", "one-time-code": "otp"}
# After "already used": wait for the next step and try again, this many times per login. Two
# covers another process whose clock runs one step ahead; each refusal counts towards a lockout.
_REPLAY_RETRIES = 2
# Waiting for a step that the clock does not reach (an injected clock that sleep does not move).
_WAITS_PER_CODE = 3

_sleep = time.sleep  # the default ``sleep``; tests that cannot pass one replace this


def loopback_redirect_uri(path: str = "/callback") -> str:
    """``http://127.0.0.1:{free port}{path}`` (RFC 8252 §7.3: the provider accepts any port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, port


def _is_redirect_uri(url: str, redirect_uri: str) -> bool:
    return _origin(url) == _origin(redirect_uri) and (
        urlsplit(url).path == urlsplit(redirect_uri).path
    )


class HeadlessAuthenticator:
    """Logs ``username`` in with ``password`` and, when asked, a TOTP code.

    The code comes from ``totp_secret`` (base32, RFC 6238) or from ``totp``, a callable returning
    the current code. ``redirect_uri`` is used when the SDK was given none; by default a loopback
    URI on a free port (nothing listens there: the redirect is never followed). ``clock`` (epoch
    seconds) and ``sleep`` (seconds) default to :func:`time.time` and :func:`time.sleep`; inject
    both to control time in tests (a ``sleep`` that advances the ``clock``).
    """

    def __init__(
        self,
        username: str,
        password: str,
        totp_secret: str | None = None,
        *,
        totp: Callable[[], str] | None = None,
        redirect_uri: str | None = None,
        max_pages: int = 10,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], object] | None = None,
        passkey: SoftwarePasskey | None = None,
    ) -> None:
        if totp_secret is not None and totp is not None:
            raise ConfigurationError("pass totp_secret or totp, not both")
        self.username = username
        self._password = password
        self._totp_key = decode_secret(totp_secret) if totp_secret is not None else None
        self._totp = totp
        self.redirect_uri = redirect_uri
        self.max_pages = max_pages
        self.timeout = timeout
        self.session = session if session is not None else requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._last_step: int | None = None  # the TOTP step of the last code sent
        #: The software authenticator for the provider's passkey pages, or ``None``.
        self.passkey = passkey

    def __repr__(self) -> str:  # never the password
        return f"HeadlessAuthenticator(username={self.username!r})"

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    def _code(self, login: LoginRequest, url: str, replayed: bool) -> str:
        """The code of a step no code was sent in yet, waiting for that step if need be."""
        if self._totp is None and self._totp_key is None:
            raise AuthenticatorError(
                "the provider asks for a one-time code, but this HeadlessAuthenticator has no "
                "totp_secret or totp callback"
            )
        now = self._now()
        for _ in range(_WAITS_PER_CODE):
            if self._last_step is None or now // PERIOD > self._last_step:
                break
            wait = (self._last_step + 1) * PERIOD - now
            login.emit(WaitingForNextCode(wait, "replayed" if replayed else "used", url))
            (self._sleep or _sleep)(wait)
            now = self._now()
        else:
            raise AuthenticatorError(
                f"waited for the next one-time code, but the clock stayed in step "
                f"{self._last_step}; an injected clock= needs a sleep= that advances it"
            )
        self._last_step = int(now // PERIOD)
        if self._totp is not None:
            return self._totp()
        assert self._totp_key is not None
        return totp(self._totp_key, now)

    def authenticate(self, login: LoginRequest) -> str:
        redirect_uri = login.redirect_uri or self.redirect_uri or loopback_redirect_uri()
        url = login.authorization_url(redirect_uri)
        provider = _origin(login.issuer)
        response = self._send(login, "GET", url, None)
        submitted: frozenset[str] | None = None
        replays = 0
        for _ in range(self.max_pages):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if _is_redirect_uri(location, redirect_uri):
                    return location
                if _origin(location) != provider:
                    raise AuthenticatorError(
                        f"the provider redirected to {location}, which is neither the provider "
                        "nor the redirect URI"
                    )
                response = self._send(login, "GET", location, None)
                continue
            page = parse_page(response.text)
            form = _login_form(page)
            if form is not None and form.data.get("passkey") and not self._can_sign(form):
                # A passkey sign-in we hold no passkey for: the password sign-in it offers.
                form = _password_instead(page) or form
            asked = (
                frozenset(t for t in (*_FACTORS, "username") if form.field_with(t))
                if form is not None
                else frozenset()
            )
            if form is not None and form.data.get("passkey"):
                asked = frozenset({"passkey"})
            # The same fields again, with an error: the provider refused what we sent.
            refused = page.alert is not None and asked == submitted
            replayed = (
                refused and "one-time-code" in asked and "replayed" in page.alert_codes
            ) and replays < _REPLAY_RETRIES
            if replayed:
                replays += 1  # the next code is sent once its step has begun; see _code
            elif response.status_code != 200:
                raise LoginFailed(
                    f"the provider answered {response.status_code} at {response.url}"
                    + (f": {page.alert}" if page.alert else ""),
                    alert=page.alert,
                    url=response.url,
                    error=_first(page.alert_codes),
                )
            elif form is None:
                raise LoginFailed(
                    f"the provider's page has no form to continue: {page.alert or page.text[:200]}",
                    alert=page.alert,
                    url=response.url,
                )
            elif refused:
                raise LoginFailed(
                    f"the provider refused the login: {page.alert}",
                    alert=page.alert,
                    url=response.url,
                    error=_first(page.alert_codes),
                )
            assert form is not None
            tokens = tuple(t for t in (*_FACTORS, "username") if t in asked)
            factors = tuple(_FACTORS[t] for t in _FACTORS if t in asked)
            if "passkey" in asked:
                factors = ("passkey",)
            login.emit(FactorsRequested(factors, response.url, page.prompt(form, tokens)))
            action = urljoin(response.url, form.action or response.url)
            if _origin(action) != provider:
                raise AuthenticatorError(f"the login form posts to {action}, outside the provider")
            submitted = asked
            if "passkey" in asked:
                data = self._passkey(form, response.url)
            else:
                data = self._fill(form, login, response.url, replayed)
            response = self._send(login, form.method.upper(), action, data)
        raise AuthenticatorError(
            f"no redirect to the client after {self.max_pages} pages; the login did not finish"
        )

    def _send(
        self, login: LoginRequest, method: str, url: str, data: list[tuple[str, str]] | None
    ) -> requests.Response:
        if method == "GET":
            response = self.session.get(
                url, params=data, allow_redirects=False, timeout=self.timeout
            )
        else:
            response = self.session.post(
                url, data=data, allow_redirects=False, timeout=self.timeout
            )
        login.emit(ProviderExchange(method, url, response.status_code, "login page"))
        return response

    def _can_sign(self, form: Form) -> bool:
        """Whether our passkey can answer this page: any creation; an assertion only once the
        passkey is registered (it knows its site)."""
        if self.passkey is None:
            return False
        return form.data.get("passkey") == "create" or self.passkey.rp_id is not None

    def _passkey(self, form: Form, url: str) -> list[tuple[str, str]]:
        """What the page's script would post: ``PublicKeyCredential.toJSON()`` in ``credential``."""
        if self.passkey is None:
            raise AuthenticatorError(
                "the provider asks for a passkey, but this HeadlessAuthenticator has none "
                "(pass passkey=SoftwarePasskey())"
            )
        try:
            options = json.loads(form.data.get("passkey-options", ""))
        except ValueError as exc:
            raise AuthenticatorError(f"the passkey page's options are not JSON: {exc}") from exc
        scheme, host, port = _origin(url)
        default = {"http": 80, "https": 443}.get(scheme)
        origin = f"{scheme}://{host}" + (f":{port}" if port != default else "")
        if form.data["passkey"] == "create":
            answer = self.passkey.create(options, origin)
        else:
            answer = self.passkey.get(options, origin)
        data = []
        for f in form.fields:
            value = json.dumps(answer) if f.name == "credential" else f.value
            data.append((f.name, value))
        button = _continue_button(form)
        if button is not None and button.name:
            data.append((button.name, button.value))
        return data

    def _fill(
        self, form: Form, login: LoginRequest, url: str, replayed: bool
    ) -> list[tuple[str, str]]:
        data: list[tuple[str, str]] = []
        for f in form.fields:
            if f.has_token("username"):
                data.append((f.name, self.username))
            elif f.has_token("current-password"):
                data.append((f.name, self._password))
            elif f.has_token("one-time-code"):
                data.append((f.name, self._code(login, url, replayed)))
            elif f.type in ("checkbox", "radio"):
                if f.checked:
                    data.append((f.name, f.value or "on"))
            else:
                data.append((f.name, f.value))  # hidden inputs (csrf_token) as the page gave them
        button = _continue_button(form)
        if button is not None and button.name:
            data.append((button.name, button.value))
        return data


def _first(items: list[str]) -> str | None:
    return items[0] if items else None


def _continue_button(form: Form) -> Button | None:
    # Never the cancel button: a headless login either continues or fails.
    buttons = [b for b in form.buttons if b.value.lower() != "cancel"]
    preferred = [b for b in buttons if b.name == "action" and b.value == "continue"]
    return (preferred or buttons)[0] if (preferred or buttons) else None


def _password_instead(page: Page) -> Form | None:
    """The passkey page's "Sign in with your password instead" (a GET form, ``with=password``)."""
    for form in page.forms:
        if any(f.name == "with" and f.value == "password" for f in form.fields):
            return form
    return None


def _login_form(page: Page) -> Form | None:
    fillable = [f for f in page.forms if any(f.field_with(t) for t in (*_FACTORS, "username"))]
    if fillable:
        return fillable[0]
    continuing = [f for f in page.forms if _continue_button(f) is not None]
    return continuing[0] if continuing else None

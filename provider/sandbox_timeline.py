"""The step-up timeline (sandbox only): the last exchanges of a step-up, in order, for a learner.

The provider records what it saw: the authorization request (``acr_values``, ``max_age``,
``prompt``), what it asked the user for, the redirect back (a code or an error), and the tokens
it issued (``acr``, ``amr``, ``auth_time``). When the demo API runs in the same process
(``stepup sandbox``, the pytest plugin) it adds its side: each request, its status, and the
RFC 9470 challenge it sent. ``GET /sandbox/timeline`` shows them; ``/sandbox/timeline.mmd`` is
the same as a Mermaid sequence diagram.

The functions here turn plain values into :class:`Step` s and steps into text; they read no
request and no clock. :class:`Timeline` is a bounded ring in memory (a sandbox runs one provider
worker): the oldest steps fall off, nothing is written anywhere, and it exists only when the
sandbox blueprint is registered, so nothing is recorded outside sandbox mode.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "MAX_STEPS",
    "Step",
    "Timeline",
    "api_exchange",
    "asked",
    "authorization_request",
    "mermaid",
    "persona_sign_in",
    "redirect_back",
    "token_response",
]

MAX_STEPS = 200
APP, API, OP = "App", "API", "Provider"
# Not a party to the protocol: a click on /sandbox (a persona sign-in). Mermaid shows it as a note.
SANDBOX = "Sandbox"
# RFC 9110 §11.2 auth-param: a token or a quoted-string value.
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


@dataclass(frozen=True)
class Step:
    """One message: ``sender`` to ``receiver`` (``App``, ``API``, ``Provider``) at ``at``.

    ``kind``: what sort of step it is, for the page to set apart the ones a learner looks for:
    ``challenge`` (the API's RFC 9470 answer), ``authorize``, ``asked`` (what the provider
    asked the user), ``tokens``, ``retry``, ``persona``, ``error``; ``""`` for the others."""

    at: int
    sender: str
    receiver: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "from": self.sender,
            "to": self.receiver,
            "text": self.text,
            "details": self.details,
            "kind": self.kind,
        }


def _params(pairs: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: pairs[n] for n in names if pairs.get(n) not in (None, "")}


def _joined(details: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items())


def api_exchange(
    at: int, method: str, path: str, status: int, www_authenticate: str | None, *, retry: bool
) -> list[Step]:
    """The app's request to the API and the API's answer (its challenge's parameters, if any)."""
    request = Step(
        at,
        APP,
        API,
        f"{method} {path}" + (" (retry with the new token)" if retry else ""),
        kind="retry" if retry else "",
    )
    challenge = {k: q or t for k, q, t in _AUTH_PARAM.findall(www_authenticate or "")}
    details = _params(challenge, ("error", "acr_values", "max_age"))
    text = f"{status}" + (f" challenge: {_joined(details)}" if details else "")
    kind = "challenge" if details else ""
    return [request, Step(at, API, APP, text, {"status": status, **details}, kind)]


def authorization_request(at: int, params: Mapping[str, str]) -> Step:
    details = _params(params, ("client_id", "acr_values", "max_age", "prompt", "login_hint"))
    return Step(at, APP, OP, f"GET /authorize {_joined(details)}".rstrip(), details, "authorize")


def asked(at: int, factors: tuple[str, ...], level: str, reason: str, *, again: bool) -> Step:
    """What the provider asked the user for (the page it showed), towards which level and why;
    ``again``: the page came back because what was entered was refused."""
    head = "refused, asks again for" if again else "asks the user for"
    return Step(
        at,
        OP,
        APP,
        f"{head} {' + '.join(factors)} (level {level}, because {reason})",
        {"factors": list(factors), "level": level, "reason": reason, "again": again},
        "asked",
    )


def redirect_back(at: int, location: str) -> Step | None:
    """The redirect to the client's redirect URI: a code, or an error; ``None`` for others."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if "error" in query:
        error = query["error"]
        return Step(at, OP, APP, f"redirect: error={error}", {"error": error}, "error")
    if "code" in query:
        return Step(at, OP, APP, "redirect with an authorization code", {})
    return None


def persona_sign_in(at: int, username: str, acr: str, amr: tuple[str, ...], auth_time: int) -> Step:
    """A persona sign-in on ``/sandbox``: the provider now holds a session at this level, so the
    next authorization request asking for no more is answered without a login page."""
    details = {"username": username, "acr": acr, "amr": list(amr), "auth_time": auth_time}
    return Step(
        at,
        SANDBOX,
        OP,
        f"persona sign-in: {username} at acr={acr} amr={','.join(amr)} auth_time={auth_time} "
        "(no login page for requests up to this level)",
        details,
        "persona",
    )


def _payload(jwt: Any) -> dict[str, Any]:
    """A JWT's claims, unverified: the provider reads a token it has just signed itself."""
    try:
        part = str(jwt).split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_response(at: int, grant_type: str, body: Mapping[str, Any]) -> list[Step]:
    claims = _payload(body.get("access_token"))
    details = _params(claims, ("acr", "amr", "auth_time"))
    text = _joined({k: ",".join(v) if isinstance(v, list) else v for k, v in details.items()})
    return [
        Step(at, APP, OP, f"POST /token grant_type={grant_type}", {"grant_type": grant_type}),
        Step(at, OP, APP, f"tokens: {text}".rstrip(": "), details, "tokens"),
    ]


def _mermaid_text(text: str) -> str:
    # Mermaid ends a message at a newline or ';' and starts a comment at '%%'; '#' begins an
    # entity code.
    return re.sub(r"[\r\n;#]+", " ", text).replace("%%", "%")


def mermaid(steps: list[Step]) -> str:
    lines = [
        "sequenceDiagram",
        f"    participant {APP} as Client app",
        f"    participant {API}",
        f"    participant {OP}",
    ]
    for s in steps:
        if s.sender == SANDBOX:
            lines.append(f"    Note over {s.receiver}: {_mermaid_text(s.text)}")
            continue
        arrow = "->>" if s.sender == APP else "-->>"
        lines.append(f"    {s.sender}{arrow}{s.receiver}: {_mermaid_text(s.text)}")
    return "\n".join(lines) + "\n"


class Timeline:
    """The last :data:`MAX_STEPS` steps. Thread-safe: the servers are threaded."""

    def __init__(self, size: int = MAX_STEPS) -> None:
        self._lock = threading.Lock()
        self._steps: deque[Step] = deque(maxlen=size)
        self._challenged: set[tuple[str, str]] = set()

    def add(self, *steps: Step | None) -> None:
        with self._lock:
            self._steps.extend(s for s in steps if s is not None)

    def api(self, at: int, method: str, path: str, status: int, challenge: str | None) -> None:
        """An API exchange; a request after a challenge to the same route is marked a retry."""
        with self._lock:
            route = (method, path)
            retry = route in self._challenged
            if challenge:
                if len(self._challenged) >= MAX_STEPS:
                    self._challenged.clear()  # bounded: many routes are challenged
                self._challenged.add(route)
            else:
                self._challenged.discard(route)
            self._steps.extend(api_exchange(at, method, path, status, challenge, retry=retry))

    def steps(self) -> list[Step]:
        with self._lock:
            return list(self._steps)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()
            self._challenged.clear()

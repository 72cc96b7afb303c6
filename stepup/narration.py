"""How ``stepup demo`` shows what happens: the SDK's hook events, rendered for people.

:class:`Narrator` is a :data:`client_sdk.Hook`: the SDK calls it at each step (API request and
response, challenge, authorization request, login page, token response), it prints one short line
per exchange and keeps the events of the current scene so the scene can check what happened.
Nothing here talks HTTP; it only formats what the SDK reports.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import urlsplit

from client_sdk import (
    ApiRequestSent,
    ApiResponseReceived,
    AuthorizationRequested,
    Event,
    FactorsRequested,
    ProviderExchange,
    StepUpChallenged,
    TokenReused,
    TokensIssued,
)

__all__ = ["Check", "Narrator", "Style"]

LABEL = 19  # width of the "who -> whom" column
WIDTH = 100  # the widest the text gets, even on a wider terminal: long lines are hard to read
MIN_WIDTH = 40
NARROW = 72  # below this, "who" goes on its own line and the text under it, to leave it room
RULE_WIDTH = 80


def terminal_width(maximum: int = WIDTH) -> int:
    """The terminal's width (``$COLUMNS`` when set; 100 when there is no terminal), kept
    between 40 and ``maximum`` columns."""
    columns = shutil.get_terminal_size((maximum, 24)).columns
    return max(MIN_WIDTH, min(columns, maximum))


FACTOR_NAMES = {"pwd": "password (pwd)", "otp": "one-time code (otp)"}


@dataclass(frozen=True)
class Check:
    """One thing a scene promised, and whether it happened."""

    ok: bool
    text: str


@dataclass(frozen=True)
class Style:
    """ANSI colour when writing to a terminal (or when asked); plain text otherwise."""

    color: bool
    unicode: bool = True

    @classmethod
    def for_stream(cls, out: TextIO, color: str) -> Style:
        isatty = getattr(out, "isatty", None)
        on_tty = bool(isatty()) if callable(isatty) else False
        use = color == "always" or (color == "auto" and on_tty)
        encoding = (getattr(out, "encoding", None) or "utf-8").lower().replace("-", "")
        return cls(use, unicode=encoding in ("utf8", "utf16", "utf32"))

    def _sgr(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._sgr("1", text)

    def dim(self, text: str) -> str:
        return self._sgr("2", text)

    def green(self, text: str) -> str:
        return self._sgr("32", text)

    def red(self, text: str) -> str:
        return self._sgr("31", text)

    def yellow(self, text: str) -> str:
        return self._sgr("33", text)

    def cyan(self, text: str) -> str:
        return self._sgr("36", text)

    @property
    def arrow(self) -> str:
        return "→" if self.unicode else "->"

    @property
    def ok_mark(self) -> str:
        return "✓" if self.unicode else "OK"

    @property
    def fail_mark(self) -> str:
        return "✗" if self.unicode else "FAIL"

    @property
    def rule(self) -> str:
        return "─" if self.unicode else "-"


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def split_header(value: str) -> list[str]:
    """A ``WWW-Authenticate`` value cut after the commas between parameters, for display only.

    Commas inside quoted strings stay where they are; the text is shown as it came.
    """
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(value[start : i + 1])
            start = i + 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


def path_of(url: str) -> str:
    """The path, its long opaque segments (interaction ids) shortened, ``?…`` for a query."""
    parts = urlsplit(url)
    segments = [f"{p[:6]}…" if len(p) > 20 else p for p in parts.path.split("/")]
    return "/".join(segments) + ("?…" if parts.query else "")


def when(epoch: Any, now: float) -> str:
    """``12:00:07 UTC (3 s ago)`` for an epoch time, relative to the sandbox clock."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return "(absent)"
    clock = time.strftime("%H:%M:%S", time.gmtime(epoch))
    ago = int(now - epoch)
    return f"{clock} UTC ({'just now' if ago <= 1 else f'{ago} s ago'})"


class Narrator:
    """Prints each SDK event as it happens and records the current scene's events."""

    def __init__(
        self,
        out: TextIO,
        style: Style,
        *,
        now: Any,
        names: Mapping[str, str],
        width: int = WIDTH,
    ) -> None:
        self.out = out
        self.s = style
        self.width = max(MIN_WIDTH, width)
        # The column the text starts in: beside the "who" label, or under it when narrow.
        self.label = LABEL if self.width >= NARROW else 0
        self.pad = self.label + 2 if self.label else 4
        self._now = now  # the sandbox clock: "N s ago" must follow it when it is moved
        self._names = dict(names)  # origin -> "provider" / "API"
        self.events: list[Event] = []
        # Between an authorization request and its token exchange: did a login page ask anything?
        self._asked: bool | None = None

    # --- writing ------------------------------------------------------------------------------

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def line(self, who: str, text: str, *, dim: bool = False, bold: int = 0) -> None:
        """``who`` in the left column, ``text`` wrapped beside it; the first ``bold`` characters
        emphasised (the method and path of a request, the factors asked). On a narrow terminal
        ``who`` has a line of its own, with the text under it."""
        rows = self._wrap(text, self.pad)
        if self.label:
            cell = f"  {who:<{self.label}}"
            first = rows[0][self.pad :]
        else:
            if who:
                self.write(self.s.dim(f"  {who}") if dim else self.s.cyan(f"  {who}"))
            cell, first = rows[0][: self.pad], rows[0][self.pad :]
        if dim:
            self.write(self.s.dim(cell + first))
        else:
            self.write(self.s.cyan(cell) + self.s.bold(first[:bold]) + first[bold:])
        for row in rows[1:]:
            self.write(self.s.dim(row) if dim else row)

    def status(self, who: str, text: str) -> None:
        """A short coloured ``text`` (a status line) beside or under ``who``."""
        if self.label:
            self.write(self.s.cyan(f"  {who:<{self.label}}") + text)
        else:
            self.write(self.s.cyan(f"  {who}"))
            self.write(" " * self.pad + text)

    def more(self, text: str, *, dim: bool = False, indent: int = 0) -> None:
        """A continuation line under the previous one."""
        for row in self._wrap(text, self.pad + indent):
            self.write(self.s.dim(row) if dim else row)

    def _wrap(self, text: str, pad: int) -> list[str]:
        rows = textwrap.wrap(
            text,
            width=self.width,
            initial_indent=" " * pad,
            subsequent_indent=" " * (pad + 2),
            break_long_words=False,
            break_on_hyphens=False,
        )
        return rows or [" " * pad]

    def say(self, text: str) -> None:
        """Narration: what is happening and why, wrapped."""
        for row in textwrap.wrap(
            text, width=self.width, initial_indent="  ", subsequent_indent="  ",
            break_long_words=False, break_on_hyphens=False,
        ):  # fmt: skip
            self.write(row)

    def note(self, text: str) -> None:
        self.line("", self.s.yellow(text))

    def title(self, number: int, total: int, title: str) -> None:
        dot = "·" if self.s.unicode else "-"
        head = f"{self.s.rule * 3} Scene {number}/{total} {dot} {title} "
        self.write()
        rule = self.s.rule * max(3, min(RULE_WIDTH, self.width) - len(head))
        self.write(self.s.bold(head + rule))

    def checks(self, checks: Sequence[Check]) -> None:
        self.write()
        for c in checks:
            mark = self.s.green(self.s.ok_mark) if c.ok else self.s.red(self.s.fail_mark)
            rows = textwrap.wrap(c.text, width=self.width - 4, break_long_words=False)
            self.write(f"  {mark} {rows[0]}")
            for row in rows[1:]:
                self.write(f"    {row}")

    # --- the hook -----------------------------------------------------------------------------

    def who(self, url: str) -> str:
        parts = urlsplit(url)
        return self._names.get(f"{parts.scheme}://{parts.netloc}", parts.netloc)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        a = self.s.arrow
        if isinstance(event, ApiRequestSent):
            request = f"{event.method} {path_of(event.url)}"
            why = {"after_step_up": ", the retry after the step-up", "after_refresh": ", refreshed"}
            self.line(
                f"SDK {a} API",
                f"{request}   (Bearer token with acr={event.acr}{why.get(event.reason, '')})",
                bold=len(request),
            )
        elif isinstance(event, ApiResponseReceived):
            status = status_line(event.status)
            paint = self.s.green if event.status < 400 else self.s.yellow
            self.status(f"API {a} SDK", paint(status))
            for value in event.www_authenticate:
                pieces = split_header(value)
                self.more(f"WWW-Authenticate: {pieces[0]}")
                for piece in pieces[1:]:
                    self.more(piece, indent=4)
        elif isinstance(event, StepUpChallenged):
            self.line("SDK", f"challenged: steps up to {event.requirement.describe()}")
        elif isinstance(event, TokenReused):
            self.line(
                "SDK",
                f"reuses its {event.acr} token: it still meets {event.requirement.describe()}",
            )
        elif isinstance(event, AuthorizationRequested):
            self._asked = False
            self._authorization(event)
        elif isinstance(event, ProviderExchange):
            if event.purpose == "token" and self._asked is False:
                self.line("provider asks", "nothing: it answers from the existing session")
            if event.purpose == "token":
                self._asked = None
            who = "browser" if event.purpose == "login page" else "SDK"
            # RFC 9728 metadata comes from the API, everything else from the provider.
            peer = "API" if event.purpose == "resource_metadata" else "provider"
            purpose = "" if event.purpose == "login page" else f"   ({event.purpose})"
            self.line(
                f"{who} {a} {peer}",
                f"{event.method} {path_of(event.url)}   {a} {status_line(event.status)}{purpose}",
                dim=event.purpose in ("discovery", "jwks", "login page", "resource_metadata"),
            )
        elif isinstance(event, FactorsRequested):
            self._asked = True
            asked = " and ".join(FACTOR_NAMES.get(f, f) for f in event.factors) or "nothing"
            self.line("provider asks", asked, bold=len(asked))
            # The prompt's lines: heading, why (the reason, then the level), labels, error.
            lines = event.page_text.splitlines()
            if len(lines) > 1:
                self.more(f'the page says: "{lines[0]}: {lines[1]}"', dim=True)
        elif isinstance(event, TokensIssued):
            self._tokens(event)

    def _authorization(self, event: AuthorizationRequested) -> None:
        p = event.params
        shown = ", ".join(
            f"{name}={p[name]}" if name in p else f"no {name}"
            for name in ("acr_values", "max_age", "prompt")
        )
        if "claims" in p:
            shown += f", claims={p['claims']}"
        self.line("SDK", f"authorization request with {shown}", bold=0)
        self.more("(plus PKCE S256, state and nonce; the browser follows it)", dim=True)

    def _tokens(self, event: TokensIssued) -> None:
        claims = event.id_token_claims
        now = float(self._now())
        amr = claims.get("amr")
        amr_text = "[" + ", ".join(amr) + "]" if isinstance(amr, list) else "(absent)"
        shown = f"acr={claims.get('acr')}  amr={amr_text}"
        self.line(
            "ID token", f"{shown}  auth_time={when(claims.get('auth_time'), now)}", bold=len(shown)
        )
        at = event.access_token_claims
        same = all(at.get(k) == claims.get(k) for k in ("acr", "amr", "auth_time"))
        if at and same:
            self.more("the access token carries the same acr, amr and auth_time", dim=True)
        elif at:
            self.line(
                "access token",
                f"acr={at.get('acr')}  amr={at.get('amr')}  "
                f"auth_time={when(at.get('auth_time'), now)}",
            )

    # --- what a scene saw ---------------------------------------------------------------------

    def take(self) -> list[Event]:
        """The events since the last call (one scene's worth)."""
        events, self.events = self.events, []
        return events

"""Parse ``WWW-Authenticate`` challenges and pick out the RFC 9470 step-up challenge.

Pure: plain strings in, frozen values out; no HTTP library is imported here.

Specifications implemented:

- RFC 9110 §11.2 (auth-scheme, auth-param, token68), §11.6.1 (``WWW-Authenticate``),
  §5.6.1 (lists: empty elements, OWS), §5.6.2 (token), §5.6.3 (OWS, BWS), §5.6.4 (quoted-string,
  quoted-pair), §5.5 (field values carry no leading or trailing whitespace), §5.3 (several field
  lines of one list-based field form one list).
- RFC 9470 §3 (the ``insufficient_user_authentication`` error and its ``acr_values`` and
  ``max_age`` auth-params, for the ``Bearer`` and ``DPoP`` schemes), RFC 6750 §3 (``error``,
  ``error_description``, ``realm``, ``scope``), RFC 9449 §7.1 (``DPoP`` challenges).

The parser is a hand-written scanner over one field line: every loop moves forward, a character is
looked at a bounded number of times, and nothing recurses, so time is linear in the input length.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from client_sdk.errors import ChallengeParseError
from client_sdk.wire import ascii_digits, ascii_int

__all__ = [
    "Challenge",
    "StepUpChallenge",
    "find_step_up_challenge",
    "parse_www_authenticate",
]

# --- Character classes (RFC 9110 §5.6.2, §5.6.3, §5.6.4, §11.2) -----------------------------

_DIGIT = frozenset("0123456789")
_ALPHA = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# RFC 9110 §5.6.2:
#   token  = 1*tchar
#   tchar  = "!" / "#" / "$" / "%" / "&" / "'" / "*"
#          / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#          / DIGIT / ALPHA
#          ; any VCHAR, except delimiters
_TCHAR = _DIGIT | _ALPHA | frozenset("!#$%&'*+-.^_`|~")

# RFC 9110 §11.2:
#   token68 = 1*( ALPHA / DIGIT /
#                 "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68_CHAR = _DIGIT | _ALPHA | frozenset("-._~+/")

# RFC 9110 §5.6.3:
#   OWS = *( SP / HTAB )   ; optional whitespace
#   BWS = OWS              ; "bad" whitespace
_OWS = " \t"


def _is_obs_text(c: str) -> bool:
    # RFC 5234 / RFC 9110 §5.5: obs-text = %x80-FF. A str here holds one octet per character
    # (headers decoded as ISO-8859-1, as requests and httpx do), so anything above U+00FF cannot
    # have come off the wire.
    return "\x80" <= c <= "\xff"


def _is_qdtext(c: str) -> bool:
    # RFC 9110 §5.6.4:
    #   qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    return c in "\t !" or "\x23" <= c <= "\x5b" or "\x5d" <= c <= "\x7e" or _is_obs_text(c)


def _is_quoted_pair_char(c: str) -> bool:
    # RFC 9110 §5.6.4:
    #   quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
    return c in "\t " or "\x21" <= c <= "\x7e" or _is_obs_text(c)


# --- Values ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` field (RFC 9110 §11.2).

    ``scheme`` is lower-cased (schemes match case-insensitively). ``params`` maps lower-cased
    parameter names to their values, quoted-pairs already unescaped, in the order they were sent.
    ``token68`` is set instead of ``params`` for a token68 challenge; the two never occur together.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict, hash=False)
    token68: str | None = None

    def __post_init__(self) -> None:
        # A copy, so the caller's dict is not shared with this frozen value.
        object.__setattr__(self, "params", dict(self.params))


# --- The parser (RFC 9110 §11) --------------------------------------------------------------------


class _Scanner:
    """A cursor over one field line; every method moves forward only."""

    def __init__(self, text: str, line_no: int, lines: int) -> None:
        # RFC 9110 §5.5: "a field parsing implementation MUST exclude such whitespace [leading or
        # trailing] prior to evaluating the field value." The bounds exclude it; offsets in
        # error messages still count from the start of the line as given.
        self.s = text
        self.n = len(text.rstrip(_OWS))
        self.i = min(len(text) - len(text.lstrip(_OWS)), self.n)
        self._where = f" of field line {line_no + 1}" if lines > 1 else ""

    def fail(
        self, what: str, at: int | None = None, *, show_found: bool = True
    ) -> ChallengeParseError:
        at = self.i if at is None else at
        found = ""
        if show_found:
            found = " (found end of value)" if at >= self.n else f" (found {self.s[at]!r})"
        return ChallengeParseError(f"WWW-Authenticate: {what} at offset {at}{self._where}{found}")

    def peek(self, at: int | None = None) -> str:
        at = self.i if at is None else at
        return self.s[at] if at < self.n else ""

    def skip_ows(self, at: int) -> int:
        while at < self.n and self.s[at] in _OWS:
            at += 1
        return at

    def scan(self, at: int, chars: frozenset[str]) -> int:
        while at < self.n and self.s[at] in chars:
            at += 1
        return at

    def quoted_string(self) -> str:
        # RFC 9110 §5.6.4:
        #   quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
        # "Recipients that process the value of a quoted-string MUST handle a quoted-pair as if
        # it were replaced by the octet following the backslash."
        start = self.i
        i = self.i + 1
        out: list[str] = []
        while i < self.n:
            c = self.s[i]
            if c == '"':
                self.i = i + 1
                return "".join(out)
            if c == "\\":
                if i + 1 >= self.n:
                    break
                if not _is_quoted_pair_char(self.s[i + 1]):
                    raise self.fail("character not allowed after '\\' in a quoted-pair", i + 1)
                out.append(self.s[i + 1])
                i += 2
                continue
            if not _is_qdtext(c):
                raise self.fail("character not allowed in a quoted-string", i)
            out.append(c)
            i += 1
        raise self.fail(f"quoted-string opened at offset {start} is not closed", self.n)


def _parse_field_line(text: str, line_no: int, lines: int) -> list[Challenge]:
    sc = _Scanner(text, line_no, lines)
    s, n = sc.s, sc.n
    out: list[Challenge] = []

    # RFC 9110 §11.6.1:
    #   WWW-Authenticate = #challenge
    # RFC 9110 §5.6.1.2 (what a recipient accepts; empty elements do not count):
    #   #element => [ element ] *( OWS "," OWS [ element ] )
    # At the top of this loop ``sc.i`` is where a list element may start.
    while True:
        while sc.i < n and s[sc.i] == ",":  # empty elements: ", ,"
            sc.i = sc.skip_ows(sc.i + 1)
        if sc.i >= n:
            return out
        challenge, at_element_start = _parse_challenge(sc)
        out.append(challenge)
        if at_element_start:
            continue  # the challenge's own parameter list consumed the "," that follows it
        sc.i = sc.skip_ows(sc.i)
        if sc.i >= n:
            return out
        if s[sc.i] != ",":
            raise sc.fail("expected ',' or end of value after a challenge")
        sc.i = sc.skip_ows(sc.i + 1)


def _parse_challenge(sc: _Scanner) -> tuple[Challenge, bool]:
    """Parse one challenge at ``sc.i``.

    Returns the challenge and whether ``sc.i`` now stands at the start of the next list element
    (True when the challenge's auth-param list already consumed the separating comma).
    """
    # RFC 9110 §11.2:
    #   challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    #   auth-scheme = token
    s, n = sc.s, sc.n
    start = sc.i
    end = sc.scan(start, _TCHAR)
    if end == start:
        raise sc.fail("expected an auth-scheme (a token)")
    scheme = s[start:end].lower()
    sc.i = end
    if sc.peek() != " ":
        return Challenge(scheme), False  # no parameters; the caller expects "," or the end

    after_sp = sc.scan(end, frozenset(" "))
    content = sc.skip_ows(after_sp)
    if content >= n or s[content] == ",":
        # Nothing after the scheme but whitespace, then a comma or the end: an empty first
        # element of #auth-param. Any comma here is read as the parameter list's, which makes
        # "Scheme , realm=x" one challenge with a realm, as the grammar allows.
        sc.i = content
        return _parse_auth_params(sc, scheme, first=False)
    if content != after_sp:
        raise sc.fail("auth-scheme must be separated from its parameters by spaces only", after_sp)

    # token68 or auth-param? They cannot both match: token68 ends at OWS then "," or the end,
    # while an auth-param needs a non-empty value after "=".
    t_end = sc.scan(content, _TOKEN68_CHAR)
    look = content
    if t_end > content:
        while t_end < n and s[t_end] == "=":
            t_end += 1
        look = sc.skip_ows(t_end)
        if look >= n or s[look] == ",":
            sc.i = t_end
            return Challenge(scheme, token68=s[content:t_end]), False

    # Not a token68, so an auth-param must start here:
    #   token BWS "=" BWS ( token / quoted-string )
    name_end = sc.scan(content, _TCHAR)
    eq = sc.skip_ows(name_end)
    value_at = sc.skip_ows(eq + 1)
    if name_end == content or sc.peek(eq) != "=":
        raise sc.fail(
            "expected a token68 or an auth-param (name=value) after the scheme",
            eq if name_end > content else content,
        )
    if not (sc.peek(value_at) in _TCHAR or sc.peek(value_at) == '"'):
        if look > t_end:  # "abc== junk": a token68 with something after it
            raise sc.fail("expected ',' or end of value after token68", look)
        name = s[content:name_end].lower()
        raise sc.fail(f"expected a token or quoted-string value for auth-param {name!r}", value_at)
    sc.i = content
    return _parse_auth_params(sc, scheme, first=True)


def _parse_auth_params(sc: _Scanner, scheme: str, *, first: bool) -> tuple[Challenge, bool]:
    # RFC 9110 §11.2:
    #   auth-param = token BWS "=" BWS ( token / quoted-string )
    # ``first``: ``sc.i`` is right after the scheme's 1*SP, where an auth-param stands (the
    # caller checked); otherwise it is at a comma (or the end) of the parameter list.
    s, n = sc.s, sc.n
    params: dict[str, str] = {}
    if not first:
        # Positioned at "," or the end: step over separators before reading a parameter.
        if sc.i >= n:
            return Challenge(scheme, params), False
        sc.i = sc.skip_ows(sc.i + 1)
    while True:
        while sc.i < n and s[sc.i] == ",":  # empty elements of #auth-param
            sc.i = sc.skip_ows(sc.i + 1)
        if sc.i >= n:
            return Challenge(scheme, params), True
        name_start = sc.i
        name_end = sc.scan(name_start, _TCHAR)
        eq = sc.skip_ows(name_end)
        if name_end == name_start or eq >= n or s[eq] != "=":
            # Not a parameter: the next challenge starts here, after the comma we consumed.
            # (Never the case for ``first``: _parse_challenge checked that one stands there.)
            return Challenge(scheme, params), True
        name = s[name_start:name_end].lower()
        sc.i = sc.skip_ows(eq + 1)
        c = sc.peek()
        if c == '"':
            value = sc.quoted_string()
        else:
            v_end = sc.scan(sc.i, _TCHAR)
            if v_end == sc.i:
                raise sc.fail(f"expected a token or quoted-string value for auth-param {name!r}")
            value = s[sc.i : v_end]
            sc.i = v_end
        # RFC 9110 §11.2: "Authentication parameters are name/value pairs, where the name token
        # is matched case-insensitively and each parameter name MUST only occur once per
        # challenge." A repeat could let one reader see a different value than another, so it
        # is refused rather than resolved.
        if name in params:
            raise sc.fail(
                f"auth-param {name!r} occurs twice in one {scheme!r} challenge",
                name_start,
                show_found=False,
            )
        params[name] = value
        sc.i = sc.skip_ows(sc.i)
        if sc.i >= n:
            return Challenge(scheme, params), False
        if s[sc.i] != ",":
            raise sc.fail("expected ',' or end of value after an auth-param")
        sc.i = sc.skip_ows(sc.i + 1)


def parse_www_authenticate(value: str | Sequence[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` field values into challenges, in order (RFC 9110 §11.6.1).

    ``value`` is one field value or a sequence of field lines (e.g. ``httpx``'s
    ``headers.get_list("www-authenticate")``). Each line must be a whole list of challenges; a
    challenge does not continue from one line into the next.

    Raises :class:`~client_sdk.errors.ChallengeParseError` when a value does not follow the
    grammar, repeats a parameter within a challenge, or holds no challenge at all.
    """
    lines: Sequence[str] = [value] if isinstance(value, str) else value
    out: list[Challenge] = []
    for line_no, line in enumerate(lines):
        if not isinstance(line, str):
            raise TypeError(
                f"WWW-Authenticate field line {line_no + 1} is {type(line).__name__}, not str"
            )
        out.extend(_parse_field_line(line, line_no, len(lines)))
    # RFC 9110 §11.6.1: "A server generating a 401 (Unauthorized) response MUST send a
    # WWW-Authenticate header field containing at least one challenge."
    if not out:
        raise ChallengeParseError("WWW-Authenticate: no challenge in the field value")
    return out


# --- RFC 9470 -------------------------------------------------------------------------------------

_STEP_UP_SCHEMES = ("bearer", "dpop")
_INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"
# max_age above this cannot be carried by the signed 64-bit integers most servers use.
_MAX_AGE_LIMIT = 2**63 - 1


def _space_separated(value: str | None) -> list[str]:
    # RFC 9470 §3 acr_values and RFC 6750 §3 scope are space-delimited lists. Runs of spaces are
    # tolerated; order is kept (acr_values are "in order of preference").
    if value is None:
        return []
    return [item for item in value.split(" ") if item]


def _parse_max_age(raw: str | None, scheme: str) -> int | None:
    # RFC 9470 §3: "Note that, while the auth-param value can be conveyed as a token or
    # quoted-string (see Section 11.2 of [RFC9110]), it has to represent a non-negative integer".
    # A value that does not is refused, not ignored: dropping it would silently drop the
    # resource server's freshness requirement.
    if raw is None:
        return None
    if not ascii_digits(raw):
        raise ChallengeParseError(
            f"WWW-Authenticate: {scheme!r} step-up challenge has max_age={raw[:40]!r}; "
            "RFC 9470 §3 requires a non-negative integer in decimal digits"
        )
    max_age = ascii_int(raw, maximum=_MAX_AGE_LIMIT)
    if max_age is None:
        raise ChallengeParseError(
            f"WWW-Authenticate: {scheme!r} step-up challenge has max_age with "
            f"{len(raw.lstrip('0'))} digits; the largest accepted is {_MAX_AGE_LIMIT}"
        )
    return max_age


_DETAILS_LONGEST = 8192


def _parse_authorization_details(raw: str | None, scheme: str) -> list[dict[str, Any]] | None:
    # Our extension of RFC 9470 (docs/transactional.md): the RFC 9396 entries the user must approve
    # for this request, base64url (RFC 4648 §5, unpadded) of their JSON array.
    if raw is None:
        return None
    bad = ChallengeParseError(
        f"WWW-Authenticate: {scheme!r} step-up challenge has an authorization_details value "
        "that is not base64url of a JSON array of objects"
    )
    if len(raw) > _DETAILS_LONGEST or not raw or len(raw.rstrip("=")) % 4 == 1:
        raise bad
    body = raw.rstrip("=")
    if any(c not in _BASE64URL for c in body):
        raise bad
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        raise bad from None
    if not isinstance(value, list) or not value or not all(isinstance(e, dict) for e in value):
        raise bad
    return value


_BASE64URL = _DIGIT | _ALPHA | frozenset("-_")


@dataclass(frozen=True)
class StepUpChallenge:
    """A challenge the SDK answers with a new authorization request.

    Mostly an RFC 9470 §3 ``insufficient_user_authentication`` challenge (what
    :meth:`from_challenge` and :func:`find_step_up_challenge` read). The other dialects
    (:mod:`client_sdk.dialects`) use the same value with another ``error``:
    ``insufficient_scope`` (RFC 6750 §3.1, ``scope`` holds what is required) and Entra's
    ``insufficient_claims`` (``claims`` holds the decoded claims request).

    ``acr_values`` keeps the server's order of preference and is ``[]`` when absent; ``scope``
    likewise. ``max_age`` is in seconds, or ``None`` when absent. A challenge may carry neither
    ``acr_values`` nor ``max_age``: RFC 9470 makes both optional, so that is still a step-up
    challenge, and the caller decides what re-authentication to ask for. ``resource_metadata`` is
    the RFC 9728 §5.1 URL of the API's protected resource metadata, when the challenge has one.
    """

    scheme: str
    error: str = _INSUFFICIENT_USER_AUTHENTICATION
    acr_values: list[str] = field(default_factory=list, hash=False)
    max_age: int | None = None
    error_description: str | None = None
    realm: str | None = None
    scope: list[str] = field(default_factory=list, hash=False)
    claims: Mapping[str, Any] | None = field(default=None, hash=False)
    resource_metadata: str | None = None
    #: The RFC 9396 entries a transaction-bound challenge asks the user to approve (the
    #: ``authorization_details`` parameter, docs/transactional.md); ``None`` for a plain step-up.
    authorization_details: list[dict[str, Any]] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        # Copies, so lists the caller passed are not shared with this frozen value.
        object.__setattr__(self, "acr_values", list(self.acr_values))
        object.__setattr__(self, "scope", list(self.scope))

    @classmethod
    def from_challenge(cls, ch: Challenge) -> StepUpChallenge | None:
        """Read ``ch`` as an RFC 9470 challenge; ``None`` if it is not one.

        It is one when its scheme is ``Bearer`` or ``DPoP`` and its ``error`` parameter is
        exactly ``insufficient_user_authentication``. Raises ``ChallengeParseError`` when it is
        one but its ``max_age`` is not a non-negative integer.
        """
        if ch.scheme not in _STEP_UP_SCHEMES:
            return None
        error = ch.params.get("error")
        if error != _INSUFFICIENT_USER_AUTHENTICATION:
            return None
        return cls(
            scheme=ch.scheme,
            error=error,
            acr_values=_space_separated(ch.params.get("acr_values")),
            max_age=_parse_max_age(ch.params.get("max_age"), ch.scheme),
            error_description=ch.params.get("error_description"),
            realm=ch.params.get("realm"),
            scope=_space_separated(ch.params.get("scope")),
            resource_metadata=ch.params.get("resource_metadata"),
            authorization_details=_parse_authorization_details(
                ch.params.get("authorization_details"), ch.scheme
            ),
        )


def find_step_up_challenge(value: str | Sequence[str]) -> StepUpChallenge | None:
    """Parse ``WWW-Authenticate`` values and return the first RFC 9470 challenge, or ``None``.

    RFC 9470 §3 defines the error for the OAuth schemes, ``Bearer`` (RFC 6750) and ``DPoP``
    (RFC 9449); a challenge of any other scheme is skipped. The whole value is parsed first, so
    malformed input raises ``ChallengeParseError`` even when a step-up challenge comes first.
    """
    for ch in parse_www_authenticate(value):
        step_up = StepUpChallenge.from_challenge(ch)
        if step_up is not None:
            return step_up
    return None

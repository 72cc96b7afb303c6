"""RFC 8707 resource indicators: which APIs an access token is for.

The question this module answers: given the ``resource`` values a request names and what the
grant behind it allows, which audiences does the access token get — or is it ``invalid_target``?

- §2: "The value of the resource parameter MUST be an absolute URI, as specified by Section 4.3
  of [RFC3986], which MAY include a query component, but MUST NOT include a fragment component."
  The parameter may be repeated, once per resource.
- §2: ``invalid_target`` — "The requested resource is invalid, missing, unknown, or malformed."
  At the authorization endpoint it is an RFC 6749 §4.1.2.1 redirect error, at the token endpoint
  an RFC 6749 §5.2 JSON error (400).
- §2.1: a resource named at the authorization endpoint becomes part of the grant; §2.2: a token
  request may name a subset of them, and the access token is "audience-restricted" to what it
  names. A token request (code or refresh) may therefore *narrow* the grant's resources, never
  widen them: a refresh token cannot buy a token for an API the user's grant did not include.

The provider knows the API of its config (``[api] audience``, the audience of every token that
names no resource) and the ``[provider] resources`` listed next to it; any other value is
``invalid_target``. Values are compared as exact strings, as the API compares ``aud``.

Pure: no Flask, no storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["InvalidTarget", "Resources", "check_resource_uri"]

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); §4.3: absolute-URI =
# scheme ":" hier-part [ "?" query ]. Printable ASCII only, no space and no "#" (a fragment).
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21\x22\x24-\x7e]+")
# Long enough for any real API identifier; a longer value is refused before any comparison.
_LONGEST = 2048


class InvalidTarget(Exception):
    """RFC 8707 §2 ``invalid_target``. ``description`` is fixed text, never the value sent."""

    error = "invalid_target"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def check_resource_uri(value: str) -> str | None:
    """``None`` if ``value`` is an absolute URI without a fragment (RFC 8707 §2), else why not."""
    if len(value) > _LONGEST:
        return "a resource indicator longer than 2048 characters"
    if "#" in value:
        return "a resource indicator must not have a fragment"
    if not _ABSOLUTE_URI.fullmatch(value):
        return "a resource indicator must be an absolute URI"
    return None


@dataclass(frozen=True)
class Resources:
    """The resources this provider issues tokens for.

    ``default`` is the audience of a token whose request names no resource (the ``[api]``
    audience); ``known`` holds it and every ``[provider] resources`` value.
    """

    default: str
    known: frozenset[str]

    @classmethod
    def of(cls, default: str, others: Iterable[str] = ()) -> Resources:
        return cls(default, frozenset((default, *others)))

    def requested(self, values: Sequence[str]) -> tuple[str, ...]:
        """The ``resource`` values of a request, checked, in order, each once.

        Raises :class:`InvalidTarget` for a malformed value or one this provider does not know.
        """
        out: list[str] = []
        for value in values:
            problem = check_resource_uri(value)
            if problem is not None:
                raise InvalidTarget(f"The resource parameter is malformed: {problem}.")
            if value not in self.known:
                raise InvalidTarget(
                    "The resource parameter names a resource this provider does not know."
                )
            if value not in out:
                out.append(value)
        return tuple(out)

    def audience(self, requested: Sequence[str], granted: Sequence[str] | None) -> tuple[str, ...]:
        """The ``aud`` of an access token: what the token request names, within the grant.

        ``granted`` is what the authorization (or the refresh token's grant) was for; ``None`` or
        empty means no resource was named there, which is the default audience. RFC 8707 §2.2:
        the token request may narrow it; naming anything outside it is ``invalid_target``.
        """
        allowed = tuple(granted) if granted else (self.default,)
        for value in requested:
            if value not in allowed:
                raise InvalidTarget(
                    "The resource parameter names a resource outside this grant; a token "
                    "request may narrow the grant's resources, never widen them."
                )
        return tuple(requested) or allowed

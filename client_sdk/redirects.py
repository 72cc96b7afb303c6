"""Redirects of an API call: which request the next hop is, and whether credentials may go there.

RFC 9110 §15.4 asks a user agent that follows a redirect to replace the fields it generated
itself — authentication credentials among them — with values for the new request. For a
DPoP-bound token that is a must, not a nicety: a proof names one method and one URL (RFC 9449
§4.2 ``htm``, ``htu``), so the first hop's proof is refused at the second. The adapters therefore
give every hop its own credentials and proof, and none at all to another origin (RFC 6454: scheme,
host and port), stricter than the HTTP libraries, which strip only ``Authorization`` and keep it
on an ``http`` to ``https`` redirect.

:func:`next_hop` computes the next request the way ``requests`` builds it (``resolve_redirects``
and ``rebuild_method``): the ``Location`` joined to the URL, the method changed as RFC 9110
§15.4.2-4 allow (``303`` to ``GET``, and ``302``, ``301`` for ``POST``, as browsers do), and
with requests' own URL quoting, so the URL it computes is the one requests sends. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from requests.utils import requote_uri

__all__ = ["REDIRECT_STATUSES", "Hop", "next_hop", "same_origin"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Hop:
    """The request a redirect leads to."""

    method: str
    url: str


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs have one origin (RFC 6454 §4: scheme, host, port; default ports
    filled in)."""
    one, two = urlsplit(a), urlsplit(b)
    try:
        ports = (one.port, two.port)
    except ValueError:
        return False
    defaults = {"http": 80, "https": 443}
    return (
        one.scheme.lower() == two.scheme.lower()
        and (one.hostname or "") == (two.hostname or "")
        and (ports[0] or defaults.get(one.scheme.lower()))
        == (ports[1] or defaults.get(two.scheme.lower()))
    )


def next_hop(method: str, url: str, status: int, location: str | None) -> Hop | None:
    """The next request after ``status`` with ``location`` to ``method url``; ``None`` when the
    answer is not a redirect to follow."""
    if status not in REDIRECT_STATUSES or location is None:
        return None
    # requests reads the header as latin-1 bytes and decodes them as UTF-8.
    try:
        target = location.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        target = location
    if target.startswith("//"):
        target = f"{urlsplit(url).scheme}:{target}"
    parts = urlsplit(target)
    # A fragment of the original URL carries over when the new one has none (RFC 9110 §10.2.2).
    if not parts.fragment and urlsplit(url).fragment:
        parts = parts._replace(fragment=urlsplit(url).fragment)
    target = parts.geturl()
    target = requote_uri(target) if parts.netloc else urljoin(url, requote_uri(target))
    method = method.upper()
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method = "GET"
    return Hop(method, target)

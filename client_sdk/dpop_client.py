"""The SDK's side of DPoP (RFC 9449): one key per client, the latest nonce per server, a fresh
proof for every request.

:class:`DPoPSigner` is what :class:`~client_sdk.oidc.OIDCClient` holds when DPoP is on. It signs
the proof of each token request (code exchange, refresh) and of each API call that carries a
DPoP-bound token, always with the same :class:`~client_sdk.dpop.DPoPKey`: every token the client
obtains — the first one and each stepped-up one — is bound to the same ``cnf.jkt``.

Nonces:

- §8 — at the provider: "the authorization server responds to requests that do not include a
  nonce with an HTTP 400 (Bad Request) error response per Section 5.2 of [RFC6749] using
  use_dpop_nonce as the error code value" and the nonce in ``DPoP-Nonce``
  (:func:`provider_nonce_request`);
- §9 — at an API: a ``401`` whose ``DPoP`` challenge says ``error="use_dpop_nonce"``, with the
  nonce in ``DPoP-Nonce`` (:func:`resource_nonce_request`);
- §8.2 — "the server MAY supply the new nonce value ... in the DPoP-Nonce header of any
  response": the signer remembers the latest nonce each server (origin) gave, from any answer,
  and puts it in the next proof to that server.

The retry on ``use_dpop_nonce`` is made once, then :class:`~client_sdk.errors.DPoPNonceRejected`:
at the token endpoint by :meth:`DPoPSigner.token_request`, at an API by :mod:`client_sdk.flow`
(whose sends the HTTP adapters make).

Algorithm (§5.1): the provider lists the algorithms it accepts for proofs in
``dpop_signing_alg_values_supported``; :func:`key_for_provider` refuses a key whose algorithm it
does not list (:class:`~client_sdk.errors.DPoPAlgorithmNotSupported`), and makes the default key
for ``ES256`` when listed, else for the first listed algorithm the SDK can make.

Key lifetime: the key lives as long as the signer (one ``StepUpAuth`` or ``StepUpHTTPXAuth``).
Tokens bound to it are useless without it, so an application that keeps tokens across runs
keeps the key too (:meth:`DPoPKey.private_jwk`, stored like a password; docs/sdk.md).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from client_sdk.challenges import parse_www_authenticate
from client_sdk.dpop import DPOP_ALGORITHMS, DPoPKey
from client_sdk.errors import ChallengeParseError, DPoPAlgorithmNotSupported, DPoPNonceRejected
from client_sdk.protocol import HttpRequest, HttpResponse, json_body, oauth_error

__all__ = [
    "DEFAULT_ALGORITHM",
    "USE_DPOP_NONCE",
    "DPoPSigner",
    "key_for_provider",
    "origin_of",
    "provider_nonce_request",
    "resource_nonce_request",
    "valid_nonce",
]

USE_DPOP_NONCE = "use_dpop_nonce"
#: The algorithm of the key the SDK makes when the provider lists it (or lists none).
DEFAULT_ALGORITHM = "ES256"

# RFC 9449 §8.1: nonce = 1*NQCHAR; NQCHAR = %x21 / %x23-5B / %x5D-7E (RFC 6749 Appendix A).
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# A nonce is a few dozen characters; a longer header is not one to put in every proof.
_NONCE_LONGEST = 1024


def valid_nonce(value: str | None) -> str | None:
    """``value`` if it is a nonce by the §8.1 grammar (and not absurdly long), else ``None``."""
    if value is None or len(value) > _NONCE_LONGEST or not _NONCE.fullmatch(value):
        return None
    return value


def origin_of(url: str) -> str:
    """The server a URL belongs to, for the nonce memory: ``scheme://host[:port]``, lower-case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def key_for_provider(key: DPoPKey | None, supported: Sequence[str] | None) -> DPoPKey:
    """The key to sign proofs with at a provider whose ``dpop_signing_alg_values_supported`` is
    ``supported`` (``None``: the provider does not say). ``key``: the client's own, refused
    (:class:`DPoPAlgorithmNotSupported`) when its algorithm is not listed; ``None``: a new key
    for ``ES256`` if listed, else for the first listed algorithm the SDK can make."""
    if key is not None:
        if supported is None or key.alg in supported:
            return key
        raise DPoPAlgorithmNotSupported(
            f"the provider accepts DPoP proofs signed with {_listed(supported)} "
            f"(dpop_signing_alg_values_supported), not {key.alg}: make the key with one of "
            'them, e.g. DPoPKey.generate("' + (_makeable(supported) or "ES256") + '"), or pass '
            "dpop=True to let the SDK choose",
            alg=key.alg,
            supported=supported,
        )
    if supported is None or DEFAULT_ALGORITHM in supported:
        return DPoPKey.generate(DEFAULT_ALGORITHM)
    alg = _makeable(supported)
    if alg is None:
        raise DPoPAlgorithmNotSupported(
            f"the provider accepts DPoP proofs signed with {_listed(supported)} "
            f"(dpop_signing_alg_values_supported), and the SDK can make keys for "
            f"{', '.join(DPOP_ALGORITHMS)} only",
            alg=None,
            supported=supported,
        )
    return DPoPKey.generate(alg)


def _makeable(supported: Sequence[str]) -> str | None:
    return next((alg for alg in supported if alg in DPOP_ALGORITHMS), None)


def _listed(supported: Sequence[str]) -> str:
    return ", ".join(supported) if supported else "no algorithm at all"


def provider_nonce_request(response: HttpResponse) -> str | None:
    """The nonce a token endpoint asks for (§8): a ``400`` with ``error`` ``use_dpop_nonce`` and
    a valid ``DPoP-Nonce``; ``None`` for any other answer."""
    if response.status != 400:
        return None
    nonce = valid_nonce(response.headers.get("dpop-nonce"))
    if nonce is None:
        return None
    error, _ = oauth_error(json_body(response))
    return nonce if error == USE_DPOP_NONCE else None


def resource_nonce_request(
    status: int, www_authenticate: Sequence[str], dpop_nonce: str | None
) -> str | None:
    """The nonce an API asks for (§9): a ``401`` with a ``DPoP`` challenge whose ``error`` is
    ``use_dpop_nonce``, and a valid ``DPoP-Nonce``; ``None`` for any other answer."""
    nonce = valid_nonce(dpop_nonce)
    if status != 401 or nonce is None or not www_authenticate:
        return None
    try:
        challenges = parse_www_authenticate(list(www_authenticate))
    except ChallengeParseError:
        return None
    asks = any(c.scheme == "dpop" and c.params.get("error") == USE_DPOP_NONCE for c in challenges)
    return nonce if asks else None


class DPoPSigner:
    """Signs every proof of one client with its one key, with the latest nonce of each server.

    Thread-safe: the nonce memory is shared by all the client's threads (a nonce one thread
    learnt saves the others a round trip).
    """

    def __init__(self, key: DPoPKey, clock: Callable[[], float]) -> None:
        self.key = key
        self._clock = clock
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint: the ``cnf.jkt`` of every token bound to it."""
        return self.key.jkt

    def nonce_for(self, url: str) -> str | None:
        """The latest nonce the server of ``url`` gave, or ``None``."""
        with self._lock:
            return self._nonces.get(origin_of(url))

    def remember(self, url: str, nonce: str | None) -> None:
        """Keep ``nonce`` (a ``DPoP-Nonce`` value from an answer of ``url``'s server) for the
        next proof to that server; an invalid value is ignored."""
        nonce = valid_nonce(nonce)
        if nonce is not None:
            with self._lock:
                self._nonces[origin_of(url)] = nonce

    def remember_from(self, url: str, headers: Mapping[str, str]) -> None:
        """:meth:`remember` the ``DPoP-Nonce`` of an answer's headers (lower-case names)."""
        self.remember(url, headers.get("dpop-nonce"))

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A new proof (new ``jti``, ``iat`` now) for ``method url``; with ``ath`` when the
        request carries ``access_token``, and the server's latest nonce when it gave one."""
        return self.key.proof(
            method,
            url,
            now=self._clock(),
            access_token=access_token,
            nonce=self.nonce_for(url),
        )

    def token_request(
        self, request: HttpRequest, send: Callable[[HttpRequest], HttpResponse]
    ) -> HttpResponse:
        """Send a token request (§5) with ``send``, with a new proof, and answer the provider's
        ``use_dpop_nonce`` once (§8); the provider's final answer, whatever it is."""
        response = send(self._with_proof(request))
        self.remember_from(request.url, response.headers)
        if provider_nonce_request(response) is None:
            return response
        # §8: the client retries "with a new DPoP proof containing the supplied nonce value"; a
        # second use_dpop_nonce is final, never a loop.
        response = send(self._with_proof(request))
        self.remember_from(request.url, response.headers)
        if provider_nonce_request(response) is not None:
            raise DPoPNonceRejected(
                "the provider asked again for a DPoP nonce after the proof carried the one it had "
                "just given (RFC 9449 §8); not retrying again",
                url=request.url,
                status_code=response.status,
            )
        return response

    def _with_proof(self, request: HttpRequest) -> HttpRequest:
        headers = {**request.headers, "DPoP": self.proof(request.method, request.url)}
        return HttpRequest(request.method, request.url, headers, request.body)

"""Token introspection (RFC 7662) for opaque access tokens — optional.

The resource server POSTs the token to the provider's ``introspection_endpoint`` with its own client
credentials (RFC 7662 §2.1: "the protected resource MUST also authenticate itself"; we use HTTP
Basic, RFC 6749 §2.3.1) and gets back ``active`` plus the token's claims (§2.2), including ``acr``
and ``auth_time`` when the provider adds them. Results are cached until the token's ``exp`` and at
most ``cache_ttl`` seconds, since every call otherwise costs a round trip.

Same contract as :class:`resource_api.validation.JwtAccessTokenValidator`: verified claims or
:class:`InvalidToken`; :class:`KeySetUnavailable` when the provider cannot be reached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from client_sdk.wire import numeric_date

from .errors import InvalidToken, KeySetUnavailable
from .validation import Fetch, FetchError, check_times, http_fetch, wall_clock

__all__ = ["IntrospectionValidator", "Post", "http_post"]

#: POST a form to a URL with HTTP Basic credentials and return the parsed JSON; raise on failure.
Post = Callable[[str, Mapping[str, str], tuple[str, str]], Any]


def http_post(timeout: float = 5.0) -> Post:
    import requests  # here, not at import: `stepup provider` never needs it (start-up time)

    session = requests.Session()

    def post(url: str, form: Mapping[str, str], auth: tuple[str, str]) -> Any:
        try:
            response = session.post(
                url, data=dict(form), auth=auth, timeout=timeout,
                headers={"Accept": "application/json"},
            )  # fmt: skip
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise FetchError(f"POST {url} failed: {exc}") from exc

    return post


class IntrospectionValidator:
    """Validate opaque (or any) access tokens by asking the provider (RFC 7662)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        client_id: str,
        client_secret: str,
        introspection_endpoint: str | None = None,
        fetch: Fetch | None = None,
        post: Post | None = None,
        clock: Callable[[], float] | None = None,
        leeway: float = 30.0,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._credentials = (client_id, client_secret)
        self._endpoint = introspection_endpoint
        self._fetch = fetch or http_fetch()
        self._post = post or http_post()
        self.clock = clock or wall_clock
        self.leeway = leeway
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: dict[bytes, tuple[Mapping[str, Any], float]] = {}

    def _endpoint_url(self) -> str:
        if self._endpoint is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                doc = self._fetch(url)
            except Exception as exc:
                raise KeySetUnavailable(f"GET {url} failed: {exc}") from exc
            endpoint = doc.get("introspection_endpoint") if isinstance(doc, dict) else None
            if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
                raise KeySetUnavailable(f"{url}: the issuer in the document is not {self.issuer}")
            if not isinstance(endpoint, str):
                raise KeySetUnavailable(f"{url}: no introspection_endpoint")
            self._endpoint = endpoint
        return self._endpoint

    def validate(self, token: str) -> Mapping[str, Any]:
        now = self.clock()
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(digest)
        if hit is not None and now < hit[1]:
            return hit[0]
        url = self._endpoint_url()
        try:
            answer = self._post(url, {"token": token, "token_type_hint": "access_token"},
                                self._credentials)  # fmt: skip
        except Exception as exc:
            raise KeySetUnavailable(f"introspection at {url} failed: {exc}") from exc
        if not isinstance(answer, dict):
            raise KeySetUnavailable(f"introspection at {url} did not answer a JSON object")
        # RFC 7662 §2.2: "active" is REQUIRED; anything but true means the token is not usable.
        if answer.get("active") is not True:
            raise InvalidToken("the access token is not active")
        if "iss" in answer and answer["iss"] != self.issuer:
            raise InvalidToken("the access token was issued by another issuer")
        aud = answer.get("aud")
        if aud is not None and self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidToken("the access token is not meant for this API (aud)")
        # RFC 7662 §2.2: exp, iat, nbf are OPTIONAL; when present they are checked like a JWT's.
        check_times(answer, now, self.leeway, required=())
        exp = numeric_date(answer.get("exp"))
        until = (
            now + self.cache_ttl if exp is None else min(exp + self.leeway, now + self.cache_ttl)
        )
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[digest] = (answer, until)
        return answer

"""The JWKS cache: lazy discovery, key rotation, a bounded refetch rate, and provider outages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from resource_api import InvalidToken, JwksCache, JwtAccessTokenValidator, KeySetUnavailable

from .support import AUDIENCE, DROP, ISSUER, Clock, FakeIssuer, rsa_key

DISCOVERY = f"{ISSUER}/.well-known/openid-configuration"
JWKS = f"{ISSUER}/jwks"


def test_nothing_is_fetched_until_the_first_token(issuer: FakeIssuer, clock: Clock) -> None:
    v = JwtAccessTokenValidator(ISSUER, AUDIENCE, fetch=issuer.fetch, clock=clock)
    assert issuer.fetched == []
    v.validate(issuer.mint())
    assert issuer.fetched == [DISCOVERY, JWKS]


def test_keys_are_imported_once_not_per_token(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource_api.validation as validation

    imports: list[Any] = []
    real = validation.import_key
    monkeypatch.setattr(validation, "import_key", lambda d: imports.append(d) or real(d))
    for _ in range(5):
        validator.validate(issuer.mint())
    assert len(imports) == 1
    assert issuer.fetched == [DISCOVERY, JWKS]


def test_a_new_kid_is_fetched_after_rotation(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    validator.validate(issuer.mint())
    clock.advance(60)
    issuer.signing = rsa_key("k2")
    issuer.published = [rsa_key("k1"), issuer.signing]
    assert validator.validate(issuer.mint())["sub"] == "alice"
    assert issuer.fetched == [DISCOVERY, JWKS, JWKS]


def test_unknown_kids_do_not_hammer_the_provider(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    validator.validate(issuer.mint())  # keys loaded at T0
    stranger = rsa_key("stranger")
    for _ in range(50):
        with pytest.raises(InvalidToken, match="key this server does not know"):
            validator.validate(issuer.mint(key=stranger))
        clock.advance(1)
    # 50 seconds of made-up kids: one refetch at T0+30, none before, none more.
    assert issuer.fetched == [DISCOVERY, JWKS, JWKS]


def test_a_rotation_right_after_a_fetch_is_picked_up_once_the_interval_passes(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    validator.validate(issuer.mint())
    issuer.signing = rsa_key("k2")
    issuer.published = [issuer.signing]
    with pytest.raises(InvalidToken):
        validator.validate(issuer.mint())
    clock.advance(30)
    assert validator.validate(issuer.mint())["sub"] == "alice"


def test_cached_claims_of_a_withdrawn_key_are_forgotten(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    old_token = issuer.mint()
    validator.validate(old_token)
    clock.advance(60)
    issuer.signing = rsa_key("k2")
    issuer.published = [issuer.signing]  # k1 withdrawn (compromised, say)
    validator.validate(issuer.mint())  # unknown kid -> refetch -> k1 gone
    with pytest.raises(InvalidToken):
        validator.validate(old_token)


def test_provider_down_while_the_jwks_is_cached(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    validator.validate(issuer.mint())
    issuer.down = True
    clock.advance(7200)  # past refresh_interval: a refresh is tried, fails, old keys keep working
    assert validator.validate(issuer.mint())["sub"] == "alice"
    assert validator.validate(issuer.mint(sub="bob"))["sub"] == "bob"
    assert issuer.fetched == [DISCOVERY, JWKS, JWKS]  # one failed refresh, then rate-limited


def test_provider_down_with_nothing_cached_is_unavailable_not_invalid(
    issuer: FakeIssuer, validator: JwtAccessTokenValidator, clock: Clock
) -> None:
    issuer.down = True
    token = issuer.mint()
    with pytest.raises(KeySetUnavailable):
        validator.validate(token)
    with pytest.raises(KeySetUnavailable):
        validator.validate(token)
    assert issuer.fetched == [DISCOVERY]  # the second call did not refetch
    issuer.down = False
    clock.advance(30)
    assert validator.validate(token)["sub"] == "alice"


def test_discovery_must_name_the_same_issuer(clock: Clock) -> None:
    bogus = FakeIssuer(clock)
    doc = {"issuer": "https://evil.example", "jwks_uri": JWKS}
    v = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, clock=clock,
        fetch=lambda url: doc if url == DISCOVERY else bogus.fetch(url),
    )  # fmt: skip
    with pytest.raises(KeySetUnavailable, match="issuer"):
        v.validate(bogus.mint())


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": "nope"},
        [1, 2],
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]},
        {"keys": [{"kty": "RSA", "kid": "k1", "n": "bad", "e": "AQAB"}]},
        {"keys": [{"kty": "RSA", "kid": "k1", "use": "enc"}]},
        {"keys": [{"kty": "RSA", "kid": "k1", "alg": "HS256"}]},
    ],
)
def test_unusable_key_sets_never_verify_anything(jwks: Any, clock: Clock) -> None:
    issuer = FakeIssuer(clock)
    v = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, jwks_uri=JWKS, clock=clock, fetch=lambda url: jwks
    )
    with pytest.raises((InvalidToken, KeySetUnavailable)):
        v.validate(issuer.mint())


def test_a_key_without_kid_is_tried(issuer: FakeIssuer, clock: Clock) -> None:
    jwk = issuer.signing.as_dict(private=False)
    del jwk["kid"]
    v = JwtAccessTokenValidator(
        ISSUER, AUDIENCE, jwks_uri=JWKS, clock=clock, fetch=lambda url: {"keys": [jwk]}
    )
    assert v.validate(issuer.mint(header={"kid": DROP}))["sub"] == "alice"


# -- over a real socket ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, Any]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        doc = self.documents.get(self.path)
        body = json.dumps(doc).encode()
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server(issuer: FakeIssuer) -> Iterator[tuple[str, type[_Handler]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    handler = type("Handler", (_Handler,), {"hits": []})
    handler.documents = {
        "/.well-known/openid-configuration": {"issuer": base, "jwks_uri": base + "/jwks"},
        "/jwks": issuer.jwks(),
    }
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, handler
    server.shutdown()
    server.server_close()


@pytest.mark.e2e
def test_discovery_and_jwks_over_http(
    jwks_server: tuple[str, type[_Handler]], clock: Clock
) -> None:
    base, handler = jwks_server
    issuer = FakeIssuer(clock, issuer=base)
    v = JwtAccessTokenValidator(base, AUDIENCE, clock=clock)
    assert v.validate(issuer.mint())["iss"] == base
    assert v.validate(issuer.mint())["iss"] == base
    assert handler.hits == ["/.well-known/openid-configuration", "/jwks"]


def test_jwks_cache_can_be_shared_and_configured(issuer: FakeIssuer, clock: Clock) -> None:
    cache = JwksCache(ISSUER, fetch=issuer.fetch, clock=clock, min_refetch_interval=5)
    v = JwtAccessTokenValidator(ISSUER, AUDIENCE, keys=cache, clock=clock)
    v.validate(issuer.mint())
    assert cache.fetch_count == 2

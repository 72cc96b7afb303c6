"""RFC 9449 §5.1: the SDK signs proofs only with an algorithm the provider lists in
``dpop_signing_alg_values_supported``. A key of another algorithm is refused before the login
(:class:`DPoPAlgorithmNotSupported`); the key the SDK makes (``dpop=True``) is ES256 when the
provider lists it, else the first listed algorithm it can make. No sockets: the discovery document
comes from a fake transport.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from client_sdk import DPoPAlgorithmNotSupported, DPoPError, DPoPKey, StepUpFailed
from client_sdk.dpop_check import ProofChecker
from client_sdk.dpop_client import key_for_provider
from client_sdk.oidc import OIDCClient
from client_sdk.protocol import HttpRequest, HttpResponse, parse_provider_metadata

from .sdk_fakes import ISSUER, Clock, discovery_document

TOKEN_URL = f"{ISSUER}/token"


class Discovery:
    """Answers discovery with ``dpop_signing_alg_values_supported`` = ``algs`` (absent when
    ``None``); records every other request, and refuses it."""

    def __init__(self, algs: list[Any] | None) -> None:
        self.document = discovery_document()
        if algs is not None:
            self.document["dpop_signing_alg_values_supported"] = algs
        self.others: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/.well-known/openid-configuration"):
            return HttpResponse(200, {}, json.dumps(self.document).encode())
        self.others.append(request)
        return HttpResponse(500, {}, b"")


def client(dpop: DPoPKey | bool, transport: Discovery) -> OIDCClient:
    return OIDCClient(ISSUER, "bank-cli", authenticator=None,  # type: ignore[arg-type]
                      transport=transport, clock=Clock(), dpop=dpop)  # fmt: skip


def test_discovery_reads_the_list_and_tells_absent_from_empty() -> None:
    document = discovery_document()
    assert parse_provider_metadata(document, ISSUER).dpop_signing_algs is None
    document["dpop_signing_alg_values_supported"] = ["PS256", 7, "ES256"]
    assert parse_provider_metadata(document, ISSUER).dpop_signing_algs == ("PS256", "ES256")
    document["dpop_signing_alg_values_supported"] = []
    assert parse_provider_metadata(document, ISSUER).dpop_signing_algs == ()


@pytest.mark.parametrize(
    ("listed", "made"),
    [
        (["RS256", "ES256", "PS256"], "ES256"),  # ES256 whenever listed, wherever
        (["ES384", "PS256"], "ES384"),  # else the first listed
        (["HS256", "none", "Ed25519", "ES512"], "Ed25519"),  # never a MAC or none (§4.2)
        (None, "ES256"),  # the provider does not say: the SDK's default
    ],
)
def test_the_key_the_sdk_makes_is_one_the_provider_lists(
    listed: list[str] | None, made: str
) -> None:
    transport = Discovery(listed)
    sdk = client(True, transport)
    sdk.metadata()
    key = sdk.dpop_key
    assert key is not None
    assert key.alg == made
    # Its proofs verify with that algorithm.
    proof = key.proof("POST", TOKEN_URL, now=Clock()())
    checked = ProofChecker(algorithms=(made,)).check(
        proof, method="POST", url=TOKEN_URL, now=Clock()()
    )
    assert checked.jkt == key.jkt


def test_a_key_of_a_listed_algorithm_is_used_as_it_is() -> None:
    key = DPoPKey.generate("PS256")
    sdk = client(key, Discovery(["ES256", "PS256"]))
    sdk.metadata()
    assert sdk.dpop_key is key


def test_a_key_the_provider_does_not_list_is_refused_before_any_token_request() -> None:
    key = DPoPKey.generate("ES384")
    transport = Discovery(["ES256", "RS256"])
    sdk = client(key, transport)
    with pytest.raises(DPoPAlgorithmNotSupported) as caught:
        sdk.login()
    error = caught.value
    assert (error.alg, error.supported) == ("ES384", ("ES256", "RS256"))
    assert str(error) == (
        "the provider accepts DPoP proofs signed with ES256, RS256 "
        "(dpop_signing_alg_values_supported), not ES384: make the key with one of them, e.g. "
        'DPoPKey.generate("ES256"), or pass dpop=True to let the SDK choose'
    )
    assert isinstance(error, DPoPError)
    assert isinstance(error, StepUpFailed)
    assert transport.others == []  # no authorization, no token request was made
    assert sdk.dpop is None


def test_a_provider_listing_nothing_the_sdk_can_make_is_refused() -> None:
    with pytest.raises(DPoPAlgorithmNotSupported) as caught:
        client(True, Discovery(["HS256", "ML-DSA-44"])).metadata()
    assert (caught.value.alg, caught.value.supported) == (None, ("HS256", "ML-DSA-44"))
    assert str(caught.value).startswith(
        "the provider accepts DPoP proofs signed with HS256, ML-DSA-44 "
        "(dpop_signing_alg_values_supported), and the SDK can make keys for ES256, "
    )
    with pytest.raises(DPoPAlgorithmNotSupported) as empty:
        key_for_provider(DPoPKey.generate(), ())
    assert "signed with no algorithm at all" in str(empty.value)


def test_a_provider_that_does_not_list_algorithms_takes_any_key() -> None:
    key = DPoPKey.generate("Ed25519")
    assert key_for_provider(key, None) is key


def test_without_dpop_the_list_is_not_consulted() -> None:
    sdk = client(False, Discovery(["HS256"]))
    sdk.metadata()
    assert (sdk.dpop, sdk.dpop_key) == (None, None)

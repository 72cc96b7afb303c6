"""End to end over real sockets: a web app's login (:class:`RedirectAuthenticator`) with DPoP.

The web app sends the browser to the provider with ``dpop_jkt`` (RFC 9449 §10), keeps the
pending request server-side (as a dict), and on its callback redeems the code with a proof
(§5): the token is DPoP-bound to the app's key, and the next API call carries it on the
``DPoP`` scheme with a proof of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from client_sdk import (
    DPoPKey,
    Event,
    PendingAuthorization,
    StepUpAuth,
    StepUpRequired,
    TokensIssued,
)
from client_sdk.authenticators import RedirectAuthenticator
from client_sdk.dpop import access_token_hash

from ..test_docs_web_app import WEB, sign_in
from . import test_e2e_dpop as dpop
from .test_e2e_dpop import Stack, decode

pytestmark = pytest.mark.e2e

make_stack = dpop.make_stack  # the provider and the bank, with DPoP
CALLBACK = f"{WEB}/callback"  # bank-web's registered redirect URI


def test_the_code_exchange_on_the_callback_carries_a_proof_and_binds_the_token(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    key = DPoPKey.generate()
    events: list[Event] = []
    auth = StepUpAuth(
        stack.issuer, "bank-web", client_secret="bank-web-secret-for-the-local-sandbox",
        authenticator=RedirectAuthenticator(CALLBACK), dpop=key, hooks=[events.append],
        clock=stack.clock,
    )  # fmt: skip

    with pytest.raises(StepUpRequired) as raised:
        requests.get(stack.api + "/accounts", auth=auth, timeout=30)
    query = parse_qs(urlsplit(raised.value.authorization_url).query)
    assert query["dpop_jkt"] == [key.jkt]  # §10: the code is for this key only
    saved = raised.value.pending.to_dict()  # what the app keeps in its session

    browser = requests.Session()
    typed = {"username": "alice", "current-password": "wonderland"}
    callback = sign_in(browser, raised.value.authorization_url, typed)
    tokens = auth.complete_authorization(callback, PendingAuthorization.from_dict(saved))

    # §5: the code went to the token endpoint with a proof for POST /token (after the nonce
    # the provider asked for, §8), and the answer is a DPoP token bound to the key.
    token_posts = [s for s in stack.provider.seen if s.path == "/token"]
    assert len(token_posts) == 2
    for seen in token_posts:
        proof = decode(seen.dpop or "")
        assert (proof["htm"], proof["htu"]) == ("POST", stack.issuer + "/token")
        assert "ath" not in proof
    assert [decode(s.dpop or "").get("nonce") is None for s in token_posts] == [True, False]
    assert (tokens.token_type, tokens.is_dpop) == ("DPoP", True)
    [issued] = [e for e in events if isinstance(e, TokensIssued)]
    assert (issued.grant, issued.access_token_claims["cnf"]) == (
        "authorization_code", {"jkt": key.jkt})  # fmt: skip
    assert decode(tokens.access_token)["cnf"] == {"jkt": key.jkt}

    # The app's next call finds the token, on the DPoP scheme, with a proof for it.
    response = requests.get(stack.api + "/accounts", auth=auth, timeout=30)
    assert response.status_code == 200
    sent = stack.bank.seen[-1]
    assert sent.authorization == f"DPoP {tokens.access_token}"
    assert decode(sent.dpop or "")["ath"] == access_token_hash(tokens.access_token)

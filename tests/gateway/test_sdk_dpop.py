"""The SDK with DPoP (RFC 9449) through ``stepup gateway`` and through nginx asking
``stepup sideband`` with the configuration docs/gateway.md publishes, over real sockets, against
the real provider: a DPoP-bound token, the step-up challenge on the ``DPoP`` scheme, the step-up,
the retry — the token still bound to the same key, and the upstream given the identity headers.

Through nginx the sideband checks each proof's ``htu`` against the URL the client used: the
origin nginx names (``X-Forwarded-Proto``, ``X-Forwarded-Host``) and ``X-Original-URI``. And an
allow that rested on a proof is never cached by nginx: a replayed request must reach the sideband
and be refused.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from client_sdk import (
    Event,
    HeadlessAuthenticator,
    StepUpAuth,
    TokensIssued,
    parse_www_authenticate,
)
from client_sdk.dpop import DPOP_ALGORITHMS, DPoPKey
from provider import create_app as create_provider

from ..servers import Slot, serving
from . import test_nginx as nginx_tests
from .support import Echo, echo_upstream, running_command

pytestmark = pytest.mark.e2e

LOA1, LOA2 = nginx_tests.LOA1, nginx_tests.LOA2

#: nginx with the published site, asking ``stepup sideband``; and with decisions cached.
nginx_stack = nginx_tests.stack
cached_stack = nginx_tests.cached_stack


@dataclass
class Front:
    """Where the SDK calls (the gateway or nginx), the provider, and the upstream's record."""

    issuer: str
    url: str
    echo: Echo


@pytest.fixture
def gateway_stack(tmp_path: Path) -> Iterator[Front]:
    slot = Slot()
    with serving(slot) as issuer, echo_upstream() as echo:
        config = nginx_tests._config(issuer)
        slot.app = create_provider(config, database_url=f"sqlite:///{tmp_path}/op.db")
        command = ("gateway", "--config", str(nginx_tests._config_file(issuer, tmp_path)),
                   "--upstream", echo.url, "--port", "0", "--workers", "1")  # fmt: skip
        with ExitStack() as stack:
            _, url = stack.enter_context(running_command(*command))
            yield Front(issuer, url, echo)


def steps_up_with_dpop(front: Front) -> None:
    events: list[Event] = []
    auth = StepUpAuth(
        front.issuer, "bank-cli", hooks=[events.append], dpop=True,
        authenticator=HeadlessAuthenticator("alice", "wonderland", nginx_tests.ALICE_TOTP),
    )  # fmt: skip
    session = requests.Session()
    first = session.get(f"{front.url}/accounts?page=1", auth=auth, timeout=30)
    assert first.status_code == 200
    assert first.request.headers["Authorization"].startswith("DPoP ")
    [got] = front.echo.received
    assert (got.method, got.target) == ("GET", "/accounts?page=1")
    assert got.header("X-Stepup-Acr") == [LOA1]
    assert got.header("X-Stepup-Client-Id") == ["bank-cli"]
    [subject] = got.header("X-Stepup-Subject")

    response = session.put(
        f"{front.url}/profile/email", json={"email": "alice@example.com"}, auth=auth, timeout=30
    )
    assert response.status_code == 200
    [refused] = response.history
    [challenge] = parse_www_authenticate(refused.headers["WWW-Authenticate"])
    assert refused.status_code == 401
    assert challenge.scheme == "dpop"  # RFC 9449 §7.1, RFC 9470 on the DPoP scheme
    assert challenge.params["error"] == "insufficient_user_authentication"
    assert (challenge.params["acr_values"], challenge.params["max_age"]) == (LOA2, "120")
    assert challenge.params["algs"] == " ".join(DPOP_ALGORITHMS)
    assert challenge.params["resource_metadata"] == (
        f"{front.url}/.well-known/oauth-protected-resource"
    )

    # The stepped-up token is bound to the same key as the first one.
    issued = [e.access_token_claims for e in events if isinstance(e, TokensIssued)]
    assert auth.dpop_key is not None
    assert [claims["cnf"] for claims in issued] == [{"jkt": auth.dpop_key.jkt}] * 2
    assert [claims["acr"] for claims in issued] == [LOA1, LOA2]
    sent = response.request.headers["Authorization"]
    assert sent.startswith("DPoP ")
    assert _claims(sent)["jti"] == issued[-1]["jti"]

    last = front.echo.received[-1]
    assert (last.method, last.target) == ("PUT", "/profile/email")
    assert last.body == b'{"email": "alice@example.com"}'
    assert last.header("X-Stepup-Subject") == [subject]
    assert last.header("X-Stepup-Acr") == [LOA2]
    assert last.header("X-Stepup-Amr") == ["pwd otp mfa"]
    assert last.header("X-Stepup-Client-Id") == ["bank-cli"]
    assert len(front.echo.received) == 2  # the challenged PUT never reached the upstream


def _claims(authorization: str) -> dict[str, Any]:
    payload = authorization.split()[1].split(".")[1]
    value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(value, dict)
    return value


def test_the_sdk_with_dpop_steps_up_through_the_gateway(gateway_stack: Front) -> None:
    steps_up_with_dpop(gateway_stack)


def test_the_sdk_with_dpop_steps_up_through_nginx_and_the_sideband(
    nginx_stack: nginx_tests.Stack,
) -> None:
    # The published configuration names the origin nginx serves (X-Forwarded-Proto: $scheme,
    # X-Forwarded-Host: $http_host) and the request target (X-Original-URI): the sideband
    # checks each proof's htu against that URL, the one the SDK signed.
    steps_up_with_dpop(Front(nginx_stack.issuer, nginx_stack.nginx, nginx_stack.echo))


def test_nginx_never_caches_an_allow_that_rested_on_a_proof(
    cached_stack: nginx_tests.Stack,
) -> None:
    stack = cached_stack
    key = DPoPKey.generate()
    token = nginx_tests.dpop_machine_token(stack.issuer, key)
    url = f"{stack.nginx}/accounts"
    proof = key.proof("GET", url, now=time.time(), access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    # The same request again: nginx's key (method, URL, Authorization) is the same, but the
    # proof was spent (RFC 9449 §11.1) — the sideband must see it, and refuse it.
    replay = requests.get(url, headers=headers, timeout=10)
    [challenge] = parse_www_authenticate(replay.headers["WWW-Authenticate"])
    assert (replay.status_code, challenge.scheme, challenge.params["error"]) == (
        401, "dpop", "invalid_dpop_proof")  # fmt: skip
    # Without a proof at all, likewise.
    bare = requests.get(url, headers={"Authorization": f"DPoP {token}"}, timeout=10)
    assert bare.status_code == 401
    fresh = key.proof("GET", url, now=time.time(), access_token=token)
    again = requests.get(url, headers={**headers, "DPoP": fresh}, timeout=10)
    assert again.status_code == 200
    assert [r.header("X-Test-Cache") for r in stack.echo.received] == [["MISS"], ["MISS"]]

"""A foreign DPoP client: oauth4webapi (npm) obtains a DPoP-bound token from the stack's provider
and calls the demo bank API with proofs (RFC 9449).

The servers run here on 127.0.0.1; the node program (``oauth4webapi_dpop.mjs``) does everything a
client does — discovery, PKCE, ``dpop_jkt``, the code exchange with a proof, the API calls with
proofs, the nonce retries its library leaves to the caller — except signing the user in, which
this test does for it with :class:`~client_sdk.HeadlessAuthenticator` on the URL it prints. The
provider asks for nonces at the token endpoint (§8), the bank at the API (§9).
"""

from __future__ import annotations

import base64
import json
import select
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client_sdk import HeadlessAuthenticator, LoginRequest
from client_sdk.dpop_check import Nonces
from client_sdk.protocol import PendingAuthorization, Requirement
from provider import create_app as create_provider
from provider.clock import Clock
from resource_api import create_app as create_api
from resource_api.dpop import DPoPVerifier
from tests.client_sdk.test_e2e_step_up import Counted, _config, _serve

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("oauth4webapi_dpop.mjs")
ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LOA2 = "urn:stepup:loa:2"
REDIRECT_URI = "http://127.0.0.1:8765/callback"  # registered for bank-cli; never listened on


@dataclass
class Stack:
    issuer: str
    api: str
    clock: Clock


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    provider, bank = Counted(), Counted()
    servers = [_serve(provider), _serve(bank)]
    issuer = f"http://127.0.0.1:{servers[0][0].server_port}"
    api = f"http://127.0.0.1:{servers[1][0].server_port}"
    config = _config(issuer, LOA2)
    clock = Clock()
    provider.app = create_provider(
        config, database_url=f"sqlite:///{tmp_path}/provider.db", clock=clock
    )
    nonces = Nonces(b"the bank's DPoP nonce secret", period=300)
    bank.app = create_api(
        config,
        database_url=f"sqlite:///{tmp_path}/bank.db",
        clock=clock,
        dpop=DPoPVerifier(nonces=nonces, clock=clock),
    )
    yield Stack(issuer, api, clock)
    for server, thread in servers:
        server.shutdown()
        thread.join()
        server.server_close()


def decode(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(value, dict)
    return value


def sign_in(stack: Stack, authorization_url: str) -> str:
    """Take alice through the provider's pages for the node program's authorization request;
    the URL the provider redirected to."""
    pending = PendingAuthorization(
        issuer=stack.issuer, client_id="bank-cli", redirect_uri=REDIRECT_URI, scope="openid",
        state="node's", nonce="node's", code_verifier="node's",
    )  # fmt: skip
    login = LoginRequest(
        issuer=stack.issuer,
        requirement=Requirement(),
        redirect_uri=REDIRECT_URI,
        build=lambda uri: (authorization_url, pending),
        emit=lambda event: None,
    )
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    return authenticator.authenticate(login)


def test_oauth4webapi_gets_a_dpop_bound_token_and_calls_the_bank_with_proofs(
    stack: Stack, node_client: Path
) -> None:
    shutil.copy(SCRIPT, node_client / SCRIPT.name)
    process = subprocess.Popen(
        ["node", SCRIPT.name, stack.issuer, stack.api, "bank-cli", REDIRECT_URI],
        cwd=node_client,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        # Bounded: a node program stuck on a request fails the test instead of hanging it.
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the node program printed no authorization request within 60 s"
        first = process.stdout.readline()
        assert first, process.stderr.read() if process.stderr else ""
        request = json.loads(first)
        process.stdin.write(sign_in(stack, request["authorization_url"]) + "\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    result = json.loads(out)

    # RFC 9449 §5 and §6.1: a DPoP token, bound to the key whose thumbprint node sent as
    # dpop_jkt (oauth4webapi lower-cases token_type, which RFC 6749 §5.1 makes case-insensitive).
    assert result["token_type"] == "dpop"
    claims = decode(result["access_token"])
    assert claims["cnf"] == {"jkt": request["jkt"]}
    assert claims["iss"] == stack.issuer
    # §8: the provider asked for a nonce once; §9: so did the bank.
    assert result["token_nonce_retries"] == 1
    assert result["accounts_nonce_retries"] == 1
    assert result["accounts"]["status"] == 200
    assert len(result["accounts"]["body"]["accounts"]) >= 2
    # The transfer needs a step-up: oauth4webapi parsed the RFC 9470 challenge, on the DPoP
    # scheme (§7.1) with the nonce it had already been given.
    transfer = result["transfer"]
    assert (transfer["challenged"], transfer["status"]) == (True, 401)
    (challenge,) = transfer["challenges"]
    assert challenge["scheme"] == "dpop"
    assert challenge["parameters"]["error"] == "insufficient_user_authentication"
    assert challenge["parameters"]["acr_values"] == LOA2

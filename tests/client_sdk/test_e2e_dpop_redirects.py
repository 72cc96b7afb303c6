"""End to end over real sockets: an API that redirects, called with DPoP-bound tokens.

A DPoP proof names one method and one URL (RFC 9449 §4.2 ``htm``, ``htu``), so each hop of a
followed redirect needs a proof of its own; and credentials never go to another origin. The bank
of ``test_e2e_dpop`` sits behind a front that redirects: to itself (``302`` to a relative path,
``307`` keeping a POST and its body, ``303`` turning a POST into a GET) and to another origin (a
second server, on ``localhost`` rather than ``127.0.0.1``), which records what it was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
import requests

from client_sdk import ConfigurationError, Event, HeadlessAuthenticator, StepUpHTTPXAuth
from client_sdk.dpop import access_token_hash
from client_sdk.redirects import Hop, next_hop, same_origin

from . import test_e2e_dpop as dpop
from .test_e2e_dpop import ALICE_SECRET, LOA2, Recorded, Stack, alice, decode, issued_tokens
from .test_e2e_step_up import _serve

pytestmark = pytest.mark.e2e

make_stack = dpop.make_stack  # the provider and the bank, with DPoP


class Front:
    """Redirects the ``/old/…`` and ``/away`` paths; passes everything else to the bank."""

    def __init__(self, bank: Any, other: str) -> None:
        self.bank = bank
        self.other = other

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        origin = f"http://{environ['HTTP_HOST']}"
        moves = {
            ("GET", "/old/accounts"): ("302 Found", "/accounts"),
            ("POST", "/old/transfers"): ("307 Temporary Redirect", f"{origin}/transfers"),
            ("POST", "/old/lookup"): ("303 See Other", "/accounts?from=lookup"),
            ("GET", "/away"): ("302 Found", f"{self.other}/landing"),
        }
        move = moves.get((method, path))
        if move is None:
            return self.bank(environ, start_response)  # type: ignore[no-any-return]
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(move[0], [("Location", move[1]), ("Content-Length", "0")])
        return [b""]


def landing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
    return [b"landing"]


@pytest.fixture
def other() -> Iterator[Recorded]:
    recorded = Recorded(app=landing)
    server, thread = _serve(recorded)
    recorded.url = f"http://localhost:{server.server_port}"  # type: ignore[attr-defined]
    yield recorded
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def stack(make_stack: Callable[..., Stack], other: Recorded) -> Stack:
    stack = make_stack()
    stack.bank.app = Front(stack.bank.app, other.url)  # type: ignore[attr-defined]
    return stack


def assert_own_proofs(stack: Stack, paths: list[str]) -> None:
    """Each bank request of ``paths`` carried a DPoP token and a proof of its own method, URL
    and token (§4.2, §7.1)."""
    calls = [s for s in stack.bank.seen if s.path in paths]
    assert len(calls) >= len(paths)
    jtis = set()
    for seen in calls:
        assert seen.authorization is not None
        scheme, _, token = seen.authorization.partition(" ")
        assert scheme == "DPoP"
        proof = decode(seen.dpop or "")
        assert (proof["htm"], proof["htu"]) == (seen.method, stack.api + seen.path)
        assert proof["ath"] == access_token_hash(token)
        jtis.add(proof["jti"])
    assert len(jtis) == len(calls)


def test_requests_a_same_origin_redirect_gets_a_fresh_proof_for_each_hop(stack: Stack) -> None:
    session = requests.Session()
    auth = alice(stack, [], dpop=True)
    response = session.get(stack.api + "/old/accounts", auth=auth)
    assert response.status_code == 200
    assert [h.status_code for h in response.history] == [302]
    assert [(s.method, s.path) for s in stack.bank.seen] == [
        ("GET", "/old/accounts"), ("GET", "/accounts")]  # fmt: skip
    assert_own_proofs(stack, ["/old/accounts", "/accounts"])
    # 303: the POST becomes a GET, and the hop's proof says GET (and no query in htu).
    response = session.post(stack.api + "/old/lookup", json={}, auth=auth)
    assert response.status_code == 200
    assert [(s.method, s.path) for s in stack.bank.seen[-2:]] == [
        ("POST", "/old/lookup"), ("GET", "/accounts")]  # fmt: skip
    assert_own_proofs(stack, ["/old/lookup", "/accounts"])
    # Not followed: the redirect comes back, and its next request is the prepared hop.
    moved = session.get(stack.api + "/old/accounts", auth=auth, allow_redirects=False)
    assert moved.status_code == 302
    assert moved.next is not None
    assert session.send(moved.next).status_code == 200
    assert [(s.method, s.path) for s in stack.bank.seen[-2:]] == [
        ("GET", "/old/accounts"), ("GET", "/accounts")]  # fmt: skip
    assert_own_proofs(stack, ["/old/lookup", "/old/accounts", "/accounts"])


def test_requests_a_307_hop_is_stepped_up_with_its_body_and_the_same_key(stack: Stack) -> None:
    session = requests.Session()
    events: list[Event] = []
    auth = alice(stack, events, dpop=True)
    accounts = session.get(stack.api + "/accounts", auth=auth).json()["accounts"]
    body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "4.00"}
    response = session.post(stack.api + "/old/transfers", json=body, auth=auth)
    assert response.status_code == 201
    assert response.json()["amount"] == "4.00"
    # The redirect, the hop's challenge (a DPoP step-up challenge), the hop again.
    assert [s.path for s in stack.bank.seen if s.method == "POST"] == [
        "/old/transfers", "/transfers", "/transfers"]  # fmt: skip
    assert_own_proofs(stack, ["/old/transfers", "/transfers"])
    first, stepped = issued_tokens(events)
    assert stepped["acr"] == LOA2
    assert first["cnf"] == stepped["cnf"] == {"jkt": auth.dpop_key.jkt}  # type: ignore[union-attr]


def test_requests_sends_neither_token_nor_proof_to_another_origin(
    stack: Stack, other: Recorded
) -> None:
    response = requests.get(stack.api + "/away", auth=alice(stack, [], dpop=True))
    assert (response.status_code, response.text) == (200, "landing")
    assert [(s.path, s.authorization, s.dpop) for s in other.seen] == [("/landing", None, None)]
    assert_own_proofs(stack, ["/away"])


def httpx_auth(stack: Stack) -> StepUpHTTPXAuth:
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    return StepUpHTTPXAuth(stack.issuer, "bank-cli", authenticator=authenticator,
                           clock=stack.clock, dpop=True)  # fmt: skip


def test_httpx_with_the_event_hooks_signs_each_hop_and_strips_another_origin(
    stack: Stack, other: Recorded
) -> None:
    auth = httpx_auth(stack)
    with httpx.Client(auth=auth, follow_redirects=True, event_hooks=auth.event_hooks) as client:
        response = client.get(stack.api + "/old/accounts")
        assert response.status_code == 200
        assert_own_proofs(stack, ["/old/accounts", "/accounts"])
        away = client.get(stack.api + "/away")
    assert (away.status_code, away.text) == (200, "landing")
    assert [(s.path, s.authorization, s.dpop) for s in other.seen] == [("/landing", None, None)]


def test_async_httpx_with_the_event_hooks_signs_each_hop(stack: Stack) -> None:
    import anyio

    auth = httpx_auth(stack)

    async def main() -> int:
        async with httpx.AsyncClient(
            auth=auth, follow_redirects=True, event_hooks=auth.async_event_hooks
        ) as client:
            return (await client.get(stack.api + "/old/accounts")).status_code

    assert anyio.run(main) == 200
    assert_own_proofs(stack, ["/old/accounts", "/accounts"])


def test_httpx_following_redirects_without_the_hooks_is_a_configuration_error(
    stack: Stack,
) -> None:
    auth = httpx_auth(stack)
    with (
        httpx.Client(auth=auth, follow_redirects=True) as client,
        pytest.raises(ConfigurationError, match=r"with event_hooks=auth\.event_hooks"),
    ):
        client.get(stack.api + "/old/accounts")
    # The hop went with the first proof, and was refused for it (§4.3: htu).
    stale = decode(stack.bank.seen[-1].dpop or "")
    assert (stack.bank.seen[-1].path, stale["htu"]) == ("/accounts", stack.api + "/old/accounts")
    # httpx's default: the redirect comes back, and the next request goes through the auth.
    del stack.bank.seen[:]
    with httpx.Client(auth=auth) as client:
        moved = client.get(stack.api + "/old/accounts")
        assert moved.status_code == 302
        assert moved.next_request is not None
        assert client.send(moved.next_request).status_code == 200
    assert_own_proofs(stack, ["/old/accounts", "/accounts"])


# --- the next hop, as requests builds it -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "location", "hop"),
    [
        ("GET", 302, "/b?x=1", Hop("GET", "https://api.example/b?x=1")),
        ("POST", 302, "b", Hop("GET", "https://api.example/a/b")),
        ("POST", 301, "/b", Hop("GET", "https://api.example/b")),
        ("PUT", 301, "/b", Hop("PUT", "https://api.example/b")),
        ("POST", 303, "/b", Hop("GET", "https://api.example/b")),
        ("HEAD", 303, "/b", Hop("HEAD", "https://api.example/b")),
        ("POST", 307, "/b", Hop("POST", "https://api.example/b")),
        ("DELETE", 308, "//other.example/c", Hop("DELETE", "https://other.example/c")),
        ("GET", 302, "/caf\xc3\xa9 x", Hop("GET", "https://api.example/caf%C3%A9%20x")),
        ("GET", 200, "/b", None),
        ("GET", 304, "/b", None),
        ("GET", 302, None, None),
    ],
)
def test_next_hop(method: str, status: int, location: str | None, hop: Hop | None) -> None:
    assert next_hop(method, "https://api.example/a/", status, location) == hop


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://api.example/a", "https://API.example:443/b?x", True),
        ("http://api.example/a", "http://api.example:80/", True),
        ("http://api.example/a", "https://api.example/a", False),  # scheme: even an upgrade
        ("https://api.example/a", "https://api.example:8443/a", False),
        ("https://api.example/a", "https://api.example.evil/a", False),
        ("http://127.0.0.1:9001/a", "http://localhost:9001/a", False),
        ("https://api.example/a", "https://api.example:bad/a", False),
    ],
)
def test_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same

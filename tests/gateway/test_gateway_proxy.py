"""``stepup gateway`` in front of an API that is not Flask (``http.server``, echoing what it
received), over real sockets: what is forwarded, what is stripped, what is answered instead."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest
import requests

from client_sdk import parse_www_authenticate
from resource_api.gateway import Enforcer, GatewayApp

from ..resource_api.support import LOA1, LOA2, Clock, FakeIssuer
from .conftest import BankPolicy
from .support import Echo, echo_upstream, free_port, serving_asgi

pytestmark = pytest.mark.e2e


@pytest.fixture
def echo() -> Iterator[Echo]:
    with echo_upstream() as upstream:
        yield upstream


@pytest.fixture
def gateway(enforcer: Enforcer, echo: Echo) -> Iterator[str]:
    with serving_asgi(GatewayApp(enforcer, echo.url + "/base", timeout=2, max_body=4096)) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw_request(url: str, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes | None = None) -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"{host}:{port}")
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    out = (response.status, response.getheaders(), response.read())
    conn.close()
    return out


def test_an_allowed_request_is_forwarded_exactly_with_identity(
    gateway: str, echo: Echo, issuer: FakeIssuer
) -> None:
    token = issuer.mint(client_id="bank-cli")
    status, headers, body = raw_request(gateway, "POST", "/transfer%73/?q=a%20b&q=2", [
        ("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
        ("Connection", "keep-alive, X-Private"), ("X-Private", "hop"), ("Keep-Alive", "300"),
        ("TE", "trailers"), ("Proxy-Authorization", "Basic cHJveHk6cHc="),
        ("X-Stepup-Subject", "mallory"), ("x-stepup-acr", "urn:stepup:loa:9"),
        ("X_Stepup_Client_Id", "evil"), ("X-Forwarded-For", "203.0.113.9"),
        ("X-Custom", "kept"),
    ], b'{"amount": "10.00"}')  # fmt: skip
    assert status == 200
    assert ("x-upstream", "echo") in headers  # ASGI servers send lower-case names
    assert not [h for h in headers if h[0].lower() == "x-upstream-private"]
    [got] = echo.received
    assert (got.method, got.target) == ("POST", "/base/transfer%73/?q=a%20b&q=2")
    assert got.body == b'{"amount": "10.00"}'
    assert got.header("X-Stepup-Subject") == ["alice"]
    assert got.header("X-Stepup-Acr") == [LOA2]
    assert got.header("X-Stepup-Amr") == ["pwd otp mfa"]
    assert got.header("X-Stepup-Client-Id") == ["bank-cli"]
    assert got.header("X_Stepup_Client_Id") == []
    assert got.header("X-Custom") == ["kept"]
    assert got.header("Authorization") == [f"Bearer {token}"]
    for hop in ("Connection", "X-Private", "Keep-Alive", "TE", "Proxy-Authorization"):
        assert got.header(hop) == [], hop
    assert got.header("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert got.header("Via") == ["1.1 stepup-gateway"]
    assert got.header("X-Forwarded-Host") == [gateway.removeprefix("http://")]
    assert json.loads(body)["target"] == "/base/transfer%73/?q=a%20b&q=2"


def test_a_streamed_body_arrives_whole(gateway: str, echo: Echo, issuer: FakeIssuer) -> None:
    chunks = [bytes([65 + i % 26]) * 65536 for i in range(40)]  # 2.5 MiB, chunked
    response = requests.put(gateway + "/upload", data=iter(chunks), timeout=30,
                            headers=bearer(issuer.mint()))  # fmt: skip
    assert response.status_code == 200
    assert echo.received[0].body == b"".join(chunks)
    head = requests.head(gateway + "/accounts", headers=bearer(issuer.mint()), timeout=10)
    assert (head.status_code, head.content) == (200, b"")
    assert echo.received[1].method == "HEAD"


def test_refusals_are_answered_by_the_gateway_and_never_reach_the_api(
    gateway: str, echo: Echo, issuer: FakeIssuer
) -> None:
    response = requests.post(gateway + "/transfers", json={}, timeout=10,
                             headers=bearer(issuer.mint(acr=LOA1)))  # fmt: skip
    assert response.status_code == 401
    [challenge] = parse_www_authenticate(response.headers["WWW-Authenticate"])
    assert challenge.params["acr_values"] == LOA2
    assert challenge.params["resource_metadata"] == (
        f"{gateway}/.well-known/oauth-protected-resource"
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert requests.get(gateway + "/accounts", timeout=10).status_code == 401
    assert echo.received == []
    metadata = requests.get(challenge.params["resource_metadata"], timeout=10).json()
    assert metadata["resource"] == gateway
    assert metadata["authorization_servers"] == [issuer.issuer]


def test_the_bank_rules_in_front_of_a_non_flask_api(
    gateway: str, echo: Echo, issuer: FakeIssuer, clock: Clock, bank_policy: BankPolicy
) -> None:
    token = issuer.mint(auth_time=int(clock()) - 600)  # loa2, 10 minutes ago
    small = requests.post(gateway + "/transfers", json={"amount": "20.00"}, timeout=10,
                          headers=bearer(token))  # fmt: skip
    assert small.status_code == 200
    assert echo.received[0].body == b'{"amount": "20.00"}'  # buffered for the rule, then sent
    large = requests.post(gateway + "/transfers", json={"amount": "1000.01", "to_account": "b"},
                          timeout=10, headers=bearer(token))  # fmt: skip
    assert large.status_code == 401
    [challenge] = parse_www_authenticate(large.headers["WWW-Authenticate"])
    assert challenge.params["max_age"] == "300"
    assert large.json()["authorization_details"] == [
        {"amount": "1000.01", "currency": "EUR", "payee": "b", "type": "payment"}
    ]
    email = requests.put(gateway + "/profile/email", json={"email": "a@b.c"}, timeout=10,
                         headers=bearer(token))  # fmt: skip
    assert email.status_code == 401  # 120 s on this route
    too_big = requests.post(gateway + "/transfers", data=b"x" * 5000, timeout=10,
                            headers=bearer(token))  # fmt: skip
    assert (too_big.status_code, too_big.json()["error"]) == (413, "request_too_large")
    assert len(echo.received) == 1


def test_upstream_down_is_502(enforcer: Enforcer, issuer: FakeIssuer) -> None:
    with serving_asgi(GatewayApp(enforcer, f"http://127.0.0.1:{free_port()}")) as url:
        response = requests.get(url + "/accounts", headers=bearer(issuer.mint()), timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"


def test_upstream_too_slow_is_504(enforcer: Enforcer, echo: Echo, issuer: FakeIssuer) -> None:
    echo.hold = threading.Event()  # the upstream answers only when released
    with serving_asgi(GatewayApp(enforcer, echo.url, timeout=0.3)) as url:
        response = requests.get(url + "/accounts", headers=bearer(issuer.mint()), timeout=10)
        echo.hold.set()
    assert response.status_code == 504
    assert response.json() == {
        "error": "gateway_timeout",
        "error_description": "the upstream API did not answer within 0.3 s",
    }


def test_the_upstream_must_be_an_http_url(enforcer: Enforcer) -> None:
    with pytest.raises(ValueError, match="http"):
        GatewayApp(enforcer, "ftp://example")

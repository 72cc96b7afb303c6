"""nginx (Debian's package) in front of a non-Flask API, asking ``stepup sideband`` through
``auth_request``, with exactly the configuration docs/gateway.md publishes — against the real
provider, its tokens and its login pages (the SDK steps up through nginx).

Skipped with a reason when nginx is absent and CI is not set; in CI (.ci/run installs nginx) an
absent nginx is a failure.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from client_sdk import HeadlessAuthenticator, StepUpAuth, parse_www_authenticate
from client_sdk.dpop import DPOP_ALGORITHMS, DPoPKey
from provider import create_app as create_provider
from stepup.cli import sandbox_config
from stepup.config import RouteConfig, StepupConfig, load_config

from ..resource_api.support import Clock, FakeIssuer
from ..servers import Slot, serving
from .support import (
    DOC_LISTEN,
    DOC_SIDEBAND,
    DOC_UPSTREAM,
    ROOT,
    SANDBOX_REQUIREMENTS,
    Echo,
    echo_upstream,
    free_port,
    nginx_binary,
    published_nginx_cache,
    published_nginx_config,
    running_command,
    running_nginx,
)

pytestmark = pytest.mark.e2e

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"
ALICE_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@dataclass
class Stack:
    issuer: str
    nginx: str
    echo: Echo

    def mint(self, **claims: Any) -> str:
        response = requests.post(
            f"{self.issuer}/sandbox/token", json={"username": "alice", **claims}, timeout=10
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def site(sideband: str, upstream: str) -> str:
    text = published_nginx_config()
    for placeholder in (DOC_LISTEN, DOC_SIDEBAND, DOC_UPSTREAM):
        assert text.count(placeholder) == 1, placeholder  # the only three things a reader edits
    return text.replace(DOC_SIDEBAND, sideband.removeprefix("http://")).replace(
        DOC_UPSTREAM, upstream.removeprefix("http://")
    )


DOC_CACHE_PATH = "/dev/shm/stepup-decisions"


def cached_site(sideband: str, upstream: str, cache: Path) -> str:
    """The published site with the published cache blocks, where the docs say to put them; and,
    for the test only, the cache status of each auth subrequest passed to the upstream."""
    http, location = published_nginx_cache()
    assert http.count(DOC_CACHE_PATH) == 1
    text = http.replace(DOC_CACHE_PATH, str(cache)) + site(sideband, upstream)
    internal = "    location = /_stepup {\n        internal;\n"
    assert text.count(internal) == 1
    text = text.replace(internal, internal + location)
    main = "        auth_request /_stepup;\n"
    status = (
        "        auth_request_set $test_cache $upstream_cache_status;\n"
        "        proxy_set_header X-Test-Cache $test_cache;\n"
    )
    return text.replace(main, main + status)


def _config(issuer: str) -> StepupConfig:
    config = sandbox_config(issuer)
    reports = RouteConfig("GET", "/reports", scope=("reports:read",))
    return replace(config, api=replace(config.api, routes=(*config.api.routes, reports)))


def _config_file(issuer: str, tmp: Path) -> Path:
    """The same config as a file, for ``stepup sideband`` (the command, under granian)."""
    text = (ROOT / "stepup" / "sandbox.toml").read_text()
    text = re.sub(r'^issuer = ".*"$', f'issuer = "{issuer}"', text, flags=re.M)
    text += '\n[[api.routes]]\nmethod = "GET"\npath = "/reports"\nscope = ["reports:read"]\n'
    path = tmp / "stepup.toml"
    path.write_text(text)
    assert load_config(path) == _config(issuer)
    return path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    nginx_binary()
    slot = Slot()
    with serving(slot) as issuer, echo_upstream() as echo:
        config = _config(issuer)
        slot.app = create_provider(config, database_url=f"sqlite:///{tmp_path}/op.db")
        command = ("sideband", "--config", str(_config_file(issuer, tmp_path)), "--port", "0",
                   "--workers", "1", "--public", "/health")  # fmt: skip
        with ExitStack() as stack:
            _, sideband = stack.enter_context(running_command(*command))
            url = stack.enter_context(running_nginx(site(sideband, echo.url), tmp_path))
            yield Stack(issuer, url, echo)


@pytest.fixture
def cached_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack with nginx caching decisions (docs/gateway.md) for at most 30 seconds."""
    nginx_binary()
    slot = Slot()
    with serving(slot) as issuer, echo_upstream() as echo:
        slot.app = create_provider(_config(issuer), database_url=f"sqlite:///{tmp_path}/op.db")
        command = ("sideband", "--config", str(_config_file(issuer, tmp_path)), "--port", "0",
                   "--workers", "1", "--cache-seconds", "30")  # fmt: skip
        (tmp_path / "cache").mkdir()
        with ExitStack() as stack:
            _, sideband = stack.enter_context(running_command(*command))
            text = cached_site(sideband, echo.url, tmp_path / "cache")
            url = stack.enter_context(running_nginx(text, tmp_path))
            yield Stack(issuer, url, echo)


def challenge(response: requests.Response) -> dict[str, str]:
    [parsed] = parse_www_authenticate(response.headers["WWW-Authenticate"])
    assert parsed.scheme == "bearer"
    return dict(parsed.params)


def test_no_token_is_challenged_by_nginx_with_resource_metadata(stack: Stack) -> None:
    response = requests.get(f"{stack.nginx}/accounts", timeout=10)
    assert response.status_code == 401
    metadata = f"{stack.nginx}/.well-known/oauth-protected-resource"
    assert response.headers["WWW-Authenticate"] == f'Bearer resource_metadata="{metadata}"'
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error_description"].startswith("this API needs an access token")
    assert stack.echo.received == []
    document = requests.get(metadata, timeout=10).json()
    assert document == {
        "resource": stack.nginx,
        "authorization_servers": [stack.issuer],
        "bearer_methods_supported": ["header"],
        # This stack's config adds a scoped route to the sandbox's two.
        "scopes_supported": ["reports:read"],
        "stepup_route_requirements": [
            *SANDBOX_REQUIREMENTS,
            {"methods": ["GET"], "path": "/reports", "scope": ["reports:read"]},
        ],
        # RFC 9728 §2 (RFC 9449): the DPoP proof algorithms the resource accepts.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }


def test_weak_token_gets_the_step_up_challenge_through_nginx(stack: Stack) -> None:
    response = requests.put(
        f"{stack.nginx}/profile/email",
        json={"email": "alice@example.com"},
        timeout=10,
        headers={"Authorization": f"Bearer {stack.mint(acr=LOA1)}"},
    )
    assert response.status_code == 401
    assert challenge(response) == {
        "error": "insufficient_user_authentication",
        "error_description": "this request needs authentication at level urn:stepup:loa:2 or "
        "stronger; the token's level is urn:stepup:loa:1",
        "acr_values": LOA2,
        "max_age": "120",
        "resource_metadata": f"{stack.nginx}/.well-known/oauth-protected-resource",
    }
    assert response.json()["acr_values"] == LOA2
    assert response.headers["Cache-Control"] == "no-store"
    assert stack.echo.received == []


def test_strong_token_reaches_the_api_with_identity_and_no_spoofed_headers(stack: Stack) -> None:
    token = stack.mint(acr=LOA2, amr=["pwd", "otp"])
    response = requests.put(
        f"{stack.nginx}/profile/email?x=1",
        json={"email": "alice@example.com"},
        timeout=10,
        headers={
            "Authorization": f"Bearer {token}",
            "X-Stepup-Subject": "mallory",
            "x-stepup-acr": LOA2,
            "X-STEPUP-CLIENT-ID": "evil",
            "X_Stepup_Amr": "otp",
        },
    )
    assert response.status_code == 200
    [got] = stack.echo.received
    assert (got.method, got.target) == ("PUT", "/profile/email?x=1")
    assert got.body == b'{"email": "alice@example.com"}'
    subject = got.header("X-Stepup-Subject")
    assert len(subject) == 1
    assert subject != ["mallory"]
    assert got.header("X-Stepup-Acr") == [LOA2]
    assert got.header("X-Stepup-Amr") == ["pwd otp mfa"]
    assert got.header("X-Stepup-Client-Id") == ["sandbox-minter"]
    assert got.header("X_Stepup_Amr") == []
    assert int(got.header("X-Stepup-Auth-Time")[0]) > 1_700_000_000


def test_nginx_restores_400_403_with_challenge_and_keeps_the_bank_rules(stack: Stack) -> None:
    host, port = stack.nginx.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(
        "GET", "/accounts/../transfers", headers={"Authorization": f"Bearer {stack.mint(acr=LOA2)}"}
    )
    response = conn.getresponse()
    assert response.status == 400
    assert b'"invalid_request"' in response.read()
    conn.close()
    scoped = requests.get(
        f"{stack.nginx}/reports",
        timeout=10,
        headers={"Authorization": f"Bearer {stack.mint(acr=LOA2)}"},
    )
    assert scoped.status_code == 403
    assert challenge(scoped)["error"] == "insufficient_scope"
    assert challenge(scoped)["scope"] == "reports:read"
    assert scoped.json()["error"] == "insufficient_scope"
    stale = stack.mint(acr=LOA2, auth_time=int(time.time()) - 200)
    email = requests.put(
        f"{stack.nginx}/profile/email",
        json={"email": "a@b.c"},
        timeout=10,
        headers={"Authorization": f"Bearer {stale}"},
    )
    assert (email.status_code, challenge(email)["max_age"]) == (401, "120")
    assert requests.get(f"{stack.nginx}/health", timeout=10).status_code == 200
    assert [r.target for r in stack.echo.received] == ["/health"]


def test_the_sdk_steps_up_through_nginx(stack: Stack) -> None:
    auth = StepUpAuth(
        stack.issuer,
        "bank-cli",
        authenticator=HeadlessAuthenticator("alice", "wonderland", ALICE_TOTP),
    )
    session = requests.Session()
    assert session.get(f"{stack.nginx}/accounts", auth=auth, timeout=30).status_code == 200
    assert stack.echo.received[0].header("X-Stepup-Acr") == [LOA1]
    response = session.put(
        f"{stack.nginx}/profile/email", json={"email": "alice@example.com"}, auth=auth, timeout=30
    )
    assert response.status_code == 200
    assert [h.status_code for h in response.history] == [401]
    last = stack.echo.received[-1]
    assert (last.method, last.target) == ("PUT", "/profile/email")
    assert last.header("X-Stepup-Acr") == [LOA2]
    assert last.header("X-Stepup-Amr") == ["pwd otp mfa"]
    assert last.header("X-Stepup-Client-Id") == ["bank-cli"]


def test_keys_unreachable_is_503_with_retry_after_through_nginx(tmp_path: Path) -> None:
    nginx_binary()
    dead = f"http://127.0.0.1:{free_port()}"
    with echo_upstream() as echo:
        command = ("sideband", "--config", str(_config_file(dead, tmp_path)), "--port", "0",
                   "--workers", "1")  # fmt: skip
        with ExitStack() as stack:
            _, sideband = stack.enter_context(running_command(*command))
            url = stack.enter_context(running_nginx(site(sideband, echo.url), tmp_path))
            token = FakeIssuer(Clock()).mint()  # well-formed: the keys are needed
            response = requests.get(
                f"{url}/accounts", timeout=30, headers={"Authorization": f"Bearer {token}"}
            )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert response.json()["error"] == "temporarily_unavailable"
        assert echo.received == []


def test_a_body_rule_is_never_skipped_behind_nginx(stack: Stack) -> None:
    # The sandbox config's rule on large transfers reads the body, which nginx does not send:
    # a transfer through nginx is refused, saying where to route it, whatever its amount.
    token = stack.mint(acr=LOA2, amr=["pwd", "otp"])
    response = requests.post(
        f"{stack.nginx}/transfers",
        json={"amount": "5000.00"},
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert "nginx auth_request" in response.json()["error_description"]
    assert stack.echo.received == []


def dpop_machine_token(issuer: str, key: DPoPKey) -> str:
    """A DPoP-bound client_credentials token from the provider (its nonce asked for first)."""
    url = f"{issuer}/token"
    auth = ("reports-job", "reports-job-secret-for-the-local-sandbox")
    nonce = None
    for _ in range(2):
        proof = key.proof("POST", url, now=time.time(), nonce=nonce)
        response = requests.post(url, data={"grant_type": "client_credentials"}, auth=auth,
                                 headers={"DPoP": proof}, timeout=10)  # fmt: skip
        if response.status_code == 200:
            assert response.json()["token_type"] == "DPoP"
            token: str = response.json()["access_token"]
            return token
        assert response.json()["error"] == "use_dpop_nonce"
        nonce = response.headers["DPoP-Nonce"]
    raise AssertionError("no DPoP token")


def test_a_dpop_token_passes_nginx_with_its_proof_and_is_challenged_on_the_dpop_scheme(
    stack: Stack,
) -> None:
    key = DPoPKey.generate()
    token = dpop_machine_token(stack.issuer, key)

    def send(method: str, path: str, scheme: str = "DPoP") -> requests.Response:
        proof = key.proof(method, stack.nginx + path, now=time.time(), access_token=token)
        headers = {"Authorization": f"{scheme} {token}", "DPoP": proof}
        return requests.request(method, stack.nginx + path, headers=headers, json={}, timeout=10)

    assert send("GET", "/accounts?x=1").status_code == 200
    assert [(r.method, r.target) for r in stack.echo.received] == [("GET", "/accounts?x=1")]
    # A machine token has no authentication to step up: the challenge is on the DPoP scheme.
    stepped = send("PUT", "/profile/email")
    [parsed] = parse_www_authenticate(stepped.headers["WWW-Authenticate"])
    assert (stepped.status_code, parsed.scheme) == (401, "dpop")
    assert (parsed.params["error"], parsed.params["max_age"]) == (
        "insufficient_user_authentication", "120")  # fmt: skip
    assert parsed.params["algs"] == " ".join(DPOP_ALGORITHMS)
    as_bearer = send("GET", "/accounts", scheme="Bearer")
    [parsed] = parse_www_authenticate(as_bearer.headers["WWW-Authenticate"])
    assert (as_bearer.status_code, parsed.scheme, parsed.params["error"]) == (
        401, "dpop", "invalid_token")  # fmt: skip
    assert len(stack.echo.received) == 1


def test_nginx_caches_an_allow_for_that_token_method_and_target_only(cached_stack: Stack) -> None:
    stack = cached_stack
    strong, weak = stack.mint(acr=LOA2), stack.mint(acr=LOA1)

    def get(path: str, token: str, method: str = "GET") -> requests.Response:
        return requests.request(method, f"{stack.nginx}{path}", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    assert get("/accounts", strong).status_code == 200
    assert get("/accounts", strong).status_code == 200
    assert get("/accounts?page=2", strong).status_code == 200
    assert get("/accounts", weak).status_code == 200  # allowed too, by its own decision
    caches = [(r.target, r.header("X-Test-Cache")) for r in stack.echo.received]
    assert caches == [("/accounts", ["MISS"]), ("/accounts", ["HIT"]),
                      ("/accounts?page=2", ["MISS"]), ("/accounts", ["MISS"])]  # fmt: skip
    # The identity of a cached allow is its own token's
    assert [r.header("X-Stepup-Acr") for r in stack.echo.received] == [[LOA2]] * 3 + [[LOA1]]
    # A strong token's cached allow never lets a weak one through to a loa2 route, nor another
    # method on the same path.
    transfer = '{"amount": "10.00", "to": "acc_2"}'
    for _ in range(2):
        allowed = requests.post(f"{stack.nginx}/transfers", data=transfer, timeout=10, headers={
            "Authorization": f"Bearer {strong}", "Content-Type": "application/json"})  # fmt: skip
        assert allowed.status_code == 403  # the body rule: nginx cannot send bodies (fail closed)
    assert get("/transfers", weak, "POST").status_code == 403
    stale = stack.mint(acr=LOA2, auth_time=int(time.time()) - 200)
    for _ in range(2):  # a challenge is never cached
        email = get("/profile/email", stale, "PUT")
        assert (email.status_code, challenge(email)["max_age"]) == (401, "120")
    fresh = stack.mint(acr=LOA2)
    assert get("/profile/email", fresh, "PUT").status_code == 200
    assert get("/profile/email", weak, "PUT").status_code == 401
    assert get("/profile/email", fresh, "PUT").status_code == 200
    assert [r.header("X-Test-Cache") for r in stack.echo.received[4:]] == [["MISS"], ["HIT"]]

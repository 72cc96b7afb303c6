"""StepUpAuth (requests) and StepUpHTTPXAuth (httpx) over in-memory transports.

Both adapters run the same core; these tests hold them to the same behaviour: the token is
attached, a challenge causes exactly one step-up and one retry with the body replayed, the
stepped-up token is reused, a second challenge raises StepUpFailed, and concurrent requests
that meet the same challenge cause one step-up.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from client_sdk import (
    ApiRequestSent,
    ConfigurationError,
    Event,
    StepUpAuth,
    StepUpFailed,
    StepUpHTTPXAuth,
)

from .sdk_fakes import CLIENT_ID, ISSUER, Clock, FakeApi, FakeProvider, Login

API = "https://api.example"


class ApiAdapter(BaseAdapter):
    """A requests transport adapter that answers like the demo API."""

    def __init__(self, api: FakeApi) -> None:
        super().__init__()
        self.api = api

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()  # type: ignore[union-attr]
        if isinstance(body, str):
            body = body.encode()
        path = requests.utils.urlparse(request.url).path
        status, headers = self.api.handle(
            request.method or "", path, request.headers.get("Authorization"), body or b""
        )
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response._content = b"{}"
        response.request = request
        response.url = request.url or ""
        response.connection = self  # type: ignore[attr-defined]
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def api(provider: FakeProvider, clock: Clock) -> FakeApi:
    return FakeApi(provider, clock)


@pytest.fixture
def session(api: FakeApi) -> requests.Session:
    s = requests.Session()
    s.mount(API, ApiAdapter(api))
    return s


def requests_auth(provider: FakeProvider, clock: Clock, **kwargs: Any) -> StepUpAuth:
    auth = StepUpAuth(ISSUER, CLIENT_ID, authenticator=provider, clock=clock, **kwargs)
    auth.client.transport = provider  # the provider is in memory too
    return auth


def httpx_client(api: FakeApi, auth: StepUpHTTPXAuth) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        status, headers = api.handle(
            request.method, request.url.path, request.headers.get("Authorization"), request.content
        )
        return httpx.Response(status, headers=headers, json={})

    return httpx.Client(auth=auth, transport=httpx.MockTransport(handler))


def httpx_auth(provider: FakeProvider, clock: Clock, **kwargs: Any) -> StepUpHTTPXAuth:
    auth = StepUpHTTPXAuth(ISSUER, CLIENT_ID, authenticator=provider, clock=clock, **kwargs)
    auth.client.transport = provider
    return auth


Call = Callable[[str, str, bytes | None], int]


@pytest.fixture(params=["requests", "httpx"])
def call(
    request: pytest.FixtureRequest,
    provider: FakeProvider,
    clock: Clock,
    api: FakeApi,
    session: requests.Session,
    events: list[Event],
) -> Iterator[Call]:
    if request.param == "requests":
        auth: Any = requests_auth(provider, clock, hooks=[events.append])

        def via_requests(method: str, path: str, body: bytes | None) -> int:
            return session.request(method, API + path, data=body, auth=auth).status_code

        yield via_requests
    else:
        client = httpx_client(api, httpx_auth(provider, clock, hooks=[events.append]))

        def via_httpx(method: str, path: str, body: bytes | None) -> int:
            return client.request(method, API + path, content=body).status_code

        yield via_httpx
        client.close()


@pytest.fixture
def events() -> list[Event]:
    return []


def test_transfer_steps_up_once_and_replays_the_body(
    call: Call, api: FakeApi, provider: FakeProvider, events: list[Event]
) -> None:
    assert call("GET", "/accounts", None) == 200
    provider.logins.append(Login(acr="urn:stepup:loa:2"))
    assert call("POST", "/transfers", b'{"amount": 10}') == 201
    assert [(m, p, a, b) for m, p, a, b in api.seen] == [
        ("GET", "/accounts", "Bearer at-2", b""),
        ("POST", "/transfers", "Bearer at-2", b'{"amount": 10}'),
        ("POST", "/transfers", "Bearer at-4", b'{"amount": 10}'),
    ]
    assert len(provider.authorizations) == 2
    assert provider.authorizations[1]["acr_values"] == "urn:stepup:loa:2"
    assert provider.authorizations[1]["max_age"] == "300"
    sent = [(e.attempt, e.reason, e.acr) for e in events if isinstance(e, ApiRequestSent)]
    assert sent == [
        (1, "initial", "urn:stepup:loa:1"),
        (1, "initial", "urn:stepup:loa:1"),
        (2, "after_step_up", "urn:stepup:loa:2"),
    ]


def test_second_transfer_reuses_the_stepped_up_token(
    call: Call, api: FakeApi, provider: FakeProvider
) -> None:
    provider.logins.extend([Login(), Login(acr="urn:stepup:loa:2")])
    assert call("POST", "/transfers", b"1") == 201
    assert call("POST", "/transfers", b"2") == 201
    assert call("GET", "/accounts", None) == 200
    assert [a for _, _, a, _ in api.seen] == [
        "Bearer at-2",
        "Bearer at-4",
        "Bearer at-4",
        "Bearer at-2",  # the everyday token was kept
    ]
    assert len(provider.authorizations) == 2


def test_step_up_again_after_max_age(
    call: Call, api: FakeApi, provider: FakeProvider, clock: Clock
) -> None:
    provider.default_login = Login(acr="urn:stepup:loa:2")
    provider.logins.append(Login())
    assert call("POST", "/transfers", b"1") == 201
    clock.now += 301
    assert call("POST", "/transfers", b"2") == 201
    assert len(provider.authorizations) == 3
    assert len(api.seen) == 4


def test_a_provider_that_cannot_meet_the_level_fails_clearly(
    call: Call, api: FakeApi, provider: FakeProvider
) -> None:
    # The provider issues loa:1 whatever is asked; the ID token check stops it before a retry.
    from client_sdk import LevelNotReached

    with pytest.raises(LevelNotReached, match="not at one of"):
        call("POST", "/transfers", b"1")
    assert len(api.seen) == 1
    assert len(provider.authorizations) == 2


def test_an_api_that_challenges_again_raises_step_up_failed(
    call: Call, api: FakeApi, provider: FakeProvider
) -> None:
    # The SDK reaches the level the challenge named, but the API still refuses the new token.
    provider.logins.extend([Login(), Login(acr="urn:stepup:loa:2")])
    api.handle = _always_challenge(api.handle)  # type: ignore[method-assign]
    with pytest.raises(StepUpFailed) as caught:
        call("POST", "/transfers", b"1")
    assert len(caught.value.challenges) == 2
    assert len(api.seen) == 2
    assert len(provider.authorizations) == 2


def _always_challenge(
    handle: Callable[..., tuple[int, dict[str, str]]],
) -> Callable[..., tuple[int, dict[str, str]]]:
    def wrapped(
        method: str, path: str, auth: str | None, body: bytes = b""
    ) -> tuple[int, dict[str, str]]:
        status, headers = handle(method, path, auth, body)
        if path == "/transfers":
            value = 'Bearer error="insufficient_user_authentication", acr_values="urn:stepup:loa:2"'
            return 401, {"WWW-Authenticate": value}
        return status, headers

    return wrapped


def test_invalid_token_is_refreshed_once(
    provider: FakeProvider, clock: Clock, api: FakeApi, session: requests.Session
) -> None:
    auth = requests_auth(provider, clock, scope="openid offline_access")
    assert session.get(API + "/accounts", auth=auth).status_code == 200
    api.revoked.add("at-2")
    response = session.get(API + "/accounts", auth=auth)
    assert response.status_code == 200
    assert [h.status_code for h in response.history] == [401]
    assert [a for _, _, a, _ in api.seen] == ["Bearer at-2", "Bearer at-2", "Bearer at-3"]
    assert len(provider.authorizations) == 1


def test_requests_rewinds_a_file_body(
    provider: FakeProvider, clock: Clock, api: FakeApi, session: requests.Session
) -> None:
    provider.logins.extend([Login(), Login(acr="urn:stepup:loa:2")])
    auth = requests_auth(provider, clock)
    response = session.post(API + "/transfers", data=io.BytesIO(b"file-body"), auth=auth)
    assert response.status_code == 201
    assert [b for _, _, _, b in api.seen] == [b"file-body", b"file-body"]


def test_requests_refuses_to_replay_a_generator_body(
    provider: FakeProvider, clock: Clock, session: requests.Session
) -> None:
    provider.logins.extend([Login(), Login(acr="urn:stepup:loa:2")])
    auth = requests_auth(provider, clock)
    with pytest.raises(ConfigurationError, match="cannot be replayed"):
        session.post(API + "/transfers", data=(c for c in [b"a", b"b"]), auth=auth)


def test_concurrent_requests_cause_one_step_up(
    provider: FakeProvider, clock: Clock, api: FakeApi, session: requests.Session
) -> None:
    auth = requests_auth(provider, clock)
    assert session.get(API + "/accounts", auth=auth).status_code == 200
    provider.default_login = Login(acr="urn:stepup:loa:2")
    workers = 6
    all_challenged = threading.Barrier(workers)
    original = api.handle

    def handle(
        method: str, path: str, auth_: str | None, body: bytes = b""
    ) -> tuple[int, dict[str, str]]:
        result = original(method, path, auth_, body)
        if result[0] == 401:
            all_challenged.wait(timeout=10)  # every request holds the everyday token's challenge
        return result

    api.handle = handle  # type: ignore[method-assign]
    statuses: list[int] = []

    def transfer() -> None:
        s = requests.Session()
        s.mount(API, ApiAdapter(api))
        statuses.append(s.post(API + "/transfers", data=b"x", auth=auth).status_code)

    threads = [threading.Thread(target=transfer) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert statuses == [201] * workers
    assert len(provider.authorizations) == 2  # the first login and exactly one step-up


def test_httpx_async_client_steps_up(provider: FakeProvider, clock: Clock, api: FakeApi) -> None:
    provider.logins.extend([Login(), Login(acr="urn:stepup:loa:2")])
    auth = httpx_auth(provider, clock)

    async def handler(request: httpx.Request) -> httpx.Response:
        status, headers = api.handle(
            request.method,
            request.url.path,
            request.headers.get("Authorization"),
            await request.aread(),
        )
        return httpx.Response(status, headers=headers)

    async def main() -> int:
        async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as client:
            response = await client.post(API + "/transfers", content=b"async-body")
            return response.status_code

    assert anyio.run(main) == 201
    assert [(a, b) for _, _, a, b in api.seen] == [
        ("Bearer at-2", b"async-body"),
        ("Bearer at-4", b"async-body"),
    ]

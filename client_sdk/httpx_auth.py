"""``StepUpHTTPXAuth``: the step-up core as an ``httpx.Auth`` flow.

httpx's ``auth_flow`` is a generator that yields requests and receives responses; the core
(:mod:`client_sdk.flow`) has the same shape, so this adapter only copies the token into the request
and translates responses. ``requires_request_body = True`` makes httpx read the body first, so the
retry after a step-up replays it.

With ``httpx.AsyncClient`` the token work (discovery, the login, the code exchange) runs in a worker
thread (:func:`anyio.to_thread.run_sync`), so the event loop is never blocked by it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator, Sequence

import anyio.to_thread
import httpx

from client_sdk.authenticators.base import Authenticator
from client_sdk.dpop import DPoPKey
from client_sdk.facade import ClientFacade
from client_sdk.flow import (
    ApiReply,
    DPoPNonce,
    Driver,
    Route,
    Send,
    resolve,
    set_authorization,
    step_up_flow,
)
from client_sdk.hooks import ApiRequestSent, ApiResponseReceived, Hook
from client_sdk.id_token import DEFAULT_LEEWAY
from client_sdk.oidc import OIDCClient
from client_sdk.tokens import TokenCache
from client_sdk.transport import HttpxTransport

__all__ = ["StepUpHTTPXAuth"]


def _reply(response: httpx.Response) -> ApiReply:
    return ApiReply(
        response.status_code,
        tuple(response.headers.get_list("www-authenticate")),
        response.headers.get("dpop-nonce"),
    )


class StepUpHTTPXAuth(ClientFacade, httpx.Auth):
    """The ``httpx`` twin of :class:`~client_sdk.StepUpAuth`: same arguments, same behaviour.

    ``httpx.Client(auth=StepUpHTTPXAuth(issuer, client_id, authenticator=…))``. ``client`` is the
    ``httpx.Client`` used to talk to the provider (its own by default). ``dpop``: as for
    :class:`~client_sdk.StepUpAuth`, one key for every proof of this object.
    """

    requires_request_body = True

    def __init__(
        self,
        issuer: str | None = None,
        client_id: str = "",
        *,
        authenticator: Authenticator,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        scope: str = "openid",
        hooks: Sequence[Hook] = (),
        token_cache: TokenCache | None = None,
        essential_acr: bool = False,
        login_hint: str | None = None,
        leeway: int = DEFAULT_LEEWAY,
        clock: Callable[[], float] | None = None,
        client: httpx.Client | None = None,
        resource: str | None = None,
        dpop: DPoPKey | bool = False,
    ) -> None:
        self.client = OIDCClient(
            issuer,
            client_id,
            authenticator=authenticator,
            transport=HttpxTransport(client),
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            scope=scope,
            hooks=hooks,
            cache=token_cache,
            essential_acr=essential_acr,
            login_hint=login_hint,
            leeway=leeway,
            clock=clock,
            resource=resource,
            dpop=dpop,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # httpx's sync_auth_flow reads the request body first (requires_request_body), then
        # drives this generator.
        method, url = request.method, str(request.url)
        driver = Driver(self.client, method, url, self.client.emit)
        send: Send | None = driver.start()
        while send is not None:
            proof = self.client.dpop_proof(method, url, send.token)
            set_authorization(request.headers, send, proof)
            response = yield request
            send = driver.feed(_reply(response))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        method, url = request.method, str(request.url)
        flow = step_up_flow(Route.of(method, url))
        emit = self.client.emit
        try:
            action = next(flow)
            while True:
                if isinstance(action, Send):
                    # A proof is one signature (no I/O): made on the loop.
                    proof = self.client.dpop_proof(method, url, action.token)
                    set_authorization(request.headers, action, proof)
                    acr = None if action.token is None else action.token.acr
                    emit(ApiRequestSent(method, url, action.attempt, action.reason, acr))
                    response = yield request
                    reply = _reply(response)
                    emit(ApiResponseReceived(method, url, reply.status, reply.www_authenticate))
                    action = flow.send(reply)
                elif isinstance(action, DPoPNonce):
                    action = flow.send(resolve(self.client, action))
                else:
                    # Discovery, the login and the code exchange block: keep them off the loop.
                    result = await anyio.to_thread.run_sync(resolve, self.client, action)
                    action = flow.send(result)
        except StopIteration:
            return

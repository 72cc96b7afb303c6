"""``StepUpHTTPXAuth``: the step-up core as an ``httpx.Auth`` flow.

httpx's ``auth_flow`` is a generator that yields requests and receives responses; the core
(:mod:`client_sdk.flow`) has the same shape, so this adapter only copies the token into the request
and translates responses. ``requires_request_body = True`` makes httpx read the body first, so the
retry after a step-up replays it.

Redirects: httpx follows them (``follow_redirects=True``) inside one step of the auth flow, and
builds each hop from the request before it, with its headers — ``Authorization`` dropped only
across origins, the ``DPoP`` proof always kept — so a DPoP proof would be resent for the wrong
method and URL (RFC 9449 §4.2), and to another origin. An ``Auth`` never sees those hops; the
client's ``request`` event hooks do. :attr:`StepUpHTTPXAuth.event_hooks` (and
:attr:`~StepUpHTTPXAuth.async_event_hooks`) sign each hop for its own method and URL on the same
origin and strip the credentials to another; without them, a DPoP request that httpx redirected
raises :class:`~client_sdk.errors.ConfigurationError`. With ``follow_redirects=False`` (httpx's
default) the flow gets the redirect itself, and ``client.send(response.next_request)`` goes
through the auth flow again, with new credentials.

With ``httpx.AsyncClient`` the token work (discovery, the login, the code exchange) runs in a worker
thread (:func:`anyio.to_thread.run_sync`), so the event loop is never blocked by it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass

import anyio.to_thread
import httpx

from client_sdk.authenticators.base import Authenticator
from client_sdk.dpop import DPoPKey
from client_sdk.errors import ConfigurationError
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
from client_sdk.redirects import same_origin
from client_sdk.tokens import TokenCache
from client_sdk.transport import HttpxTransport

__all__ = ["StepUpHTTPXAuth"]


def _reply(response: httpx.Response) -> ApiReply:
    return ApiReply(
        response.status_code,
        tuple(response.headers.get_list("www-authenticate")),
        response.headers.get("dpop-nonce"),
    )


#: The request extension that tells the redirect hooks which send a hop comes from.
_SIGNED = "stepup.signed"


@dataclass
class _Signed:
    """The request the auth flow signed (``request``, to ``url``) with ``send``; ``hops``: how
    many redirect hops the event hook has prepared since."""

    request: httpx.Request
    url: str
    send: Send
    hops: int = 0


def _mark(request: httpx.Request, url: str, send: Send) -> _Signed:
    signed = _Signed(request, url, send)
    # httpx gives each hop the extensions of the request before it: the hooks find this there.
    request.extensions[_SIGNED] = signed
    return signed


def _check_redirected(signed: _Signed, response: httpx.Response) -> None:
    token = signed.send.token
    # The final response of a followed redirect answers a hop, not the request the flow sent.
    redirected = response.request is not signed.request
    if redirected and signed.hops == 0 and token is not None and token.is_dpop:
        raise ConfigurationError(
            "httpx followed a redirect with the first request's DPoP proof, which names another "
            "method and URL (and may have gone to another origin): create the client with "
            "event_hooks=auth.event_hooks (async_event_hooks for httpx.AsyncClient), so that "
            "each hop is signed for its own URL, or with follow_redirects=False"
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

    @property
    def event_hooks(self) -> dict[str, list[Callable[[httpx.Request], None]]]:
        """``httpx.Client(auth=auth, event_hooks=auth.event_hooks)``: each redirect hop httpx
        follows gets credentials for its own method and URL, and none on another origin."""
        return {"request": [self.sign_redirect]}

    @property
    def async_event_hooks(self) -> dict[str, list[Callable[[httpx.Request], Awaitable[None]]]]:
        """:attr:`event_hooks` for ``httpx.AsyncClient``."""

        async def sign(request: httpx.Request) -> None:
            self.sign_redirect(request)

        return {"request": [sign]}

    def sign_redirect(self, request: httpx.Request) -> None:
        """A ``request`` event hook: a redirect hop of a request this auth signed gets its
        credentials and a new DPoP proof for its own method and URL on the same origin, and
        neither ``Authorization`` nor ``DPoP`` on another. Other requests are left alone."""
        signed = request.extensions.get(_SIGNED)
        if not isinstance(signed, _Signed) or request is signed.request:
            return
        signed.hops += 1
        url = str(request.url)
        if not same_origin(url, signed.url):
            request.headers.pop("Authorization", None)
            request.headers.pop("DPoP", None)
            return
        proof = self.client.dpop_proof(request.method, url, signed.send.token)
        set_authorization(request.headers, signed.send, proof)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # httpx's sync_auth_flow reads the request body first (requires_request_body), then
        # drives this generator.
        method, url = request.method, str(request.url)
        driver = Driver(self.client, method, url, self.client.emit)
        send: Send | None = driver.start()
        while send is not None:
            proof = self.client.dpop_proof(method, url, send.token)
            set_authorization(request.headers, send, proof)
            signed = _mark(request, url, send)
            response = yield request
            _check_redirected(signed, response)
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
                    signed = _mark(request, url, action)
                    acr = None if action.token is None else action.token.acr
                    emit(ApiRequestSent(method, url, action.attempt, action.reason, acr))
                    response = yield request
                    _check_redirected(signed, response)
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

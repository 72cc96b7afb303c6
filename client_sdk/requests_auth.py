"""``StepUpAuth``: the step-up core as a ``requests`` auth object.

Thin by design: :class:`~client_sdk.flow.Driver` decides, this module only attaches the token
and resends. The resend follows the ``requests.auth.HTTPDigestAuth`` idiom: a response hook sends a
copy of the prepared request over the same connection adapter, the body replayed (a file-like body
is rewound; a generator body cannot be replayed and raises :class:`ConfigurationError`).

Redirects (:mod:`client_sdk.redirects`): ``requests`` builds each hop from a copy of the request
it followed, credentials included, and calls no auth object for it. So the response hook of a
redirect prepares the next hop in that request before ``requests`` copies it: to the same origin,
the token for the hop's route and a new DPoP proof for its method and URL, with a hook of its own
(a hop is challenged and stepped up like any call); to another origin, no ``Authorization``, no
``DPoP`` and no hook of ours. (So the ``request`` of a redirect in ``response.history`` shows the
headers prepared for the hop after it; with ``allow_redirects=False``, ``response.next`` is that
prepared hop.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar

from client_sdk.authenticators.base import Authenticator
from client_sdk.dpop import DPoPKey
from client_sdk.errors import ConfigurationError
from client_sdk.facade import ClientFacade
from client_sdk.flow import ApiReply, Driver, Send, set_authorization
from client_sdk.hooks import Hook
from client_sdk.id_token import DEFAULT_LEEWAY
from client_sdk.oidc import OIDCClient
from client_sdk.redirects import next_hop, same_origin
from client_sdk.tokens import TokenCache
from client_sdk.transport import RequestsTransport

__all__ = ["StepUpAuth"]


def _reply(response: requests.Response) -> ApiReply:
    # requests folds repeated fields into one comma-joined value; RFC 9110 §5.3 makes that
    # equivalent, and the challenge parser reads the combined list.
    value = response.headers.get("WWW-Authenticate")
    return ApiReply(
        response.status_code, (value,) if value else (), response.headers.get("DPoP-Nonce")
    )


class StepUpAuth(ClientFacade, AuthBase):
    """Attach tokens to ``requests`` calls and answer RFC 9470 step-up challenges.

    ``StepUpAuth(issuer, client_id, authenticator=…)`` then ``requests.get(url, auth=auth)`` or
    ``session.auth = auth``. One instance is meant to be shared by all threads of one user: its
    token cache and step-ups are thread-safe and single-flight.

    ``session`` is the ``requests.Session`` used to talk to the provider (its own by default).
    ``essential_acr=True`` asks for the challenge's ``acr_values`` as an essential claim, so a
    provider that cannot reach the level answers ``unmet_authentication_requirements``.

    ``issuer`` may be ``None`` (or left out: ``StepUpAuth(client_id=…, authenticator=…)``): the
    first call then goes without a token, and the SDK learns the issuer from the API's RFC 9728
    metadata (``resource_metadata`` in its ``401``), sending that API's ``resource`` (RFC 8707)
    with every request to the provider. ``resource``: the RFC 8707 resource indicator to send
    (default: none when the issuer is given). See docs/sdk.md, "Other challenge dialects".

    ``dpop``: DPoP-bound tokens (RFC 9449) — a :class:`~client_sdk.DPoPKey` (of an algorithm the
    provider lists), or ``True`` for a new key, made with the discovery document, that lives as
    long as this object. Every token request and every API call then carries a proof signed with
    it, stepped-up tokens and redirect hops included. See docs/sdk.md, "DPoP".
    """

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
        session: requests.Session | None = None,
        resource: str | None = None,
        dpop: DPoPKey | bool = False,
    ) -> None:
        self.client = OIDCClient(
            issuer,
            client_id,
            authenticator=authenticator,
            transport=RequestsTransport(session),
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

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        assert r.method is not None
        assert r.url is not None
        hook = self._sign(r, r.method, r.url, _body_position(r))
        r.register_hook("response", hook)  # type: ignore[no-untyped-call]
        return r

    def _sign(
        self, r: requests.PreparedRequest, method: str, url: str, position: int | None
    ) -> Callable[..., requests.Response]:
        """Put the credentials of ``method url`` in ``r``; the response hook that drives them."""
        driver = Driver(self.client, method, url, self.client.emit)
        send = driver.start()
        set_authorization(r.headers, send, self.client.dpop_proof(method, url, send.token))
        return self._on_response(driver, method, url, position)

    def _on_response(
        self, driver: Driver, method: str, url: str, position: int | None
    ) -> Callable[..., requests.Response]:
        def hook(response: requests.Response, **kwargs: Any) -> requests.Response:
            # The request requests copies for a redirect's next hop (before any resend here).
            followed = response.request
            send = driver.feed(_reply(response))
            while send is not None:
                proof = self.client.dpop_proof(method, url, send.token)
                response = _resend(response, send, proof, position, kwargs)
                send = driver.feed(_reply(response))
            if response.is_redirect:
                self._prepare_hop(followed, response, method, url, position, hook)
            return response

        return hook

    def _prepare_hop(
        self,
        followed: requests.PreparedRequest,
        response: requests.Response,
        method: str,
        url: str,
        position: int | None,
        ours: Callable[..., requests.Response],
    ) -> None:
        """Make ``followed`` (already sent) the template of the next hop: ``requests`` copies it,
        changes its URL and method, and sends it without asking the auth object."""
        hop = next_hop(method, url, response.status_code, response.headers.get("Location"))
        if hop is None:
            return
        others = [h for h in followed.hooks.get("response", []) if h is not ours]
        if not same_origin(hop.url, url):
            # Never a token or a proof to another origin (nor a hop hook of ours there).
            followed.headers.pop("Authorization", None)
            followed.headers.pop("DPoP", None)
            followed.hooks = {**followed.hooks, "response": others}
            return
        hook = self._sign(followed, hop.method, hop.url, position)
        followed.hooks = {**followed.hooks, "response": [*others, hook]}


def _body_position(r: requests.PreparedRequest) -> int | None:
    body: Any = r.body
    if body is None or isinstance(body, bytes | str):
        return None
    tell = getattr(body, "tell", None)
    if tell is None:
        return -1  # a generator: cannot be replayed
    try:
        position = tell()
    except OSError:
        return -1
    return position if isinstance(position, int) else -1


def _resend(
    response: requests.Response,
    send: Send,
    proof: str | None,
    position: int | None,
    kwargs: dict[str, Any],
) -> requests.Response:
    request = response.request
    if position == -1:
        raise ConfigurationError(
            "the request body is a stream that cannot be replayed for the retry: pass bytes or a "
            "seekable file"
        )
    if position is not None:
        request.body.seek(position)  # type: ignore[union-attr]
    response.content  # noqa: B018 - read it so the connection returns to the pool
    response.close()
    retry = request.copy()
    # The cookies the first response set apply to the retry, as a browser would send them.
    jar = retry._cookies  # type: ignore[attr-defined]
    extract_cookies_to_jar(jar, request, response.raw)  # type: ignore[no-untyped-call]
    retry.prepare_cookies(jar)
    set_authorization(retry.headers, send, proof)
    connection = response.connection
    new: requests.Response = connection.send(retry, **kwargs)
    # Every earlier answer of this call, oldest first (as requests lists redirects).
    new.history[:0] = [*response.history, response]
    new.request = retry
    return new

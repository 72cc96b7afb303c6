"""The challenge dialects a new authorization answers, and the core that answers them (pure).

RFC 9470 (``insufficient_user_authentication``), RFC 6750 §3.1 (``insufficient_scope`` with
``scope``), Entra's claims challenge (``insufficient_claims`` with base64 ``claims``), RFC 9728
(``resource_metadata``, issuer discovery): one new authorization, one retry, a typed error for
each dialect, never a loop and never a refresh.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from client_sdk import (
    ChallengeParseError,
    ClaimsNotSatisfied,
    InvalidClaimsChallenge,
    ResourceMetadataError,
    ScopeNotGranted,
    StepUpChallenge,
    StepUpFailed,
    find_authorization_challenge,
)
from client_sdk.dialects import canonical_claims, decode_claims, merge_claims
from client_sdk.flow import (
    ApiReply,
    GetToken,
    Refresh,
    ResourceMetadata,
    Route,
    Send,
    StepUp,
    read_reply,
    requirement_for,
    step_up_flow,
)
from client_sdk.protocol import (
    PendingAuthorization,
    ProviderMetadata,
    Requirement,
    authorization_params,
    code_token_request,
    new_authorization,
    refresh_token_request,
)
from client_sdk.resource_metadata import parse_resource_metadata, resource_matches
from client_sdk.tokens import TokenSet

ROUTE = Route.of("POST", "https://mcp.example/mcp")
METADATA = "https://mcp.example/.well-known/oauth-protected-resource"
EVERYDAY = TokenSet("at-1", refresh_token="rt-1", scope="openid", claims={"acr": "loa1"})
NEW = TokenSet("at-2", scope="openid mcp:tools", claims={"acr": "loa1"})

# Microsoft's documented example: standard base64 with padding, an access_token member.
ENTRA_CLAIMS = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
ENTRA_VALUE = base64.b64encode(json.dumps(ENTRA_CLAIMS).encode()).decode()


def scope_challenge(scope: str = "mcp:tools") -> str:
    return (
        f'Bearer error="insufficient_scope", scope="{scope}", '
        f'resource_metadata="{METADATA}", error_description="Additional scope required"'
    )


def claims_challenge(value: str = ENTRA_VALUE) -> str:
    return (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
        f'authorize", error="insufficient_claims", claims="{value}"'
    )


def b64url(document: Any) -> str:
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- reading the dialects ------------------------------------------------------------------


def test_insufficient_scope_is_read_with_its_scope_and_metadata() -> None:
    found = find_authorization_challenge(403, scope_challenge("mcp:tools mcp:read"))
    assert found == StepUpChallenge(
        scheme="bearer",
        error="insufficient_scope",
        scope=["mcp:tools", "mcp:read"],
        error_description="Additional scope required",
        resource_metadata=METADATA,
    )
    assert find_authorization_challenge(401, scope_challenge()) is not None  # 401 is read too
    assert find_authorization_challenge(400, scope_challenge()) is None


def test_insufficient_scope_without_scope_is_not_answered() -> None:
    assert find_authorization_challenge(403, 'Bearer error="insufficient_scope"') is None


def test_rfc9470_challenge_is_read_only_with_401() -> None:
    value = 'DPoP error="insufficient_user_authentication", acr_values="x y", max_age=5'
    found = find_authorization_challenge(401, value)
    assert found is not None
    assert (found.scheme, found.acr_values, found.max_age) == ("dpop", ["x", "y"], 5)
    assert find_authorization_challenge(403, value) is None


def test_other_schemes_and_errors_are_skipped() -> None:
    value = 'Basic realm="x", Bearer error="invalid_token", Bearer error="insufficient_scope"'
    assert find_authorization_challenge(401, value) is None
    two = f'Basic realm="x", {scope_challenge()}'
    found = find_authorization_challenge(403, two)
    assert found is not None
    assert found.error == "insufficient_scope"


def test_entra_claims_challenge_decodes_standard_base64() -> None:
    found = find_authorization_challenge(401, claims_challenge())
    assert found is not None
    assert found.error == "insufficient_claims"
    assert found.claims == ENTRA_CLAIMS
    assert found.realm == ""


def test_claims_in_base64url_without_padding_decode_too() -> None:
    document = {"id_token": {"acr": {"essential": True, "values": ["urn:x:2"]}}, "userinfo": {}}
    assert decode_claims(b64url(document)) == document


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not base64!", "is not base64url"),
        ("abcde", "is not base64url"),  # one character too many for any byte count
        (b64url("just a string"), "is not a JSON object"),
        (b64url([1, 2]), "is not a JSON object"),
        (b64url({}), "is not a JSON object"),
        (b64url({"access_token": "acrs"}), "member is not a JSON object"),
        (base64.b64encode(b"{not json").decode(), "does not decode to JSON"),
        (base64.b64encode(b"\xff\xfe").decode(), "does not decode to JSON"),
        (b64url({"a": {"b": "c" * 9000}}), "at most 8192 are read"),
        (b64url({"id_token": {"x": [[[[[[[[[[]]]]]]]]]]}}) + "===", "is not base64url"),
    ],
)
def test_a_malformed_claims_value_is_a_typed_error(value: str, why: str) -> None:
    with pytest.raises(InvalidClaimsChallenge, match=why) as caught:
        find_authorization_challenge(401, claims_challenge(value))
    assert isinstance(caught.value, ChallengeParseError)
    assert isinstance(caught.value, StepUpFailed)


def test_deeply_nested_claims_are_refused_not_a_crash() -> None:
    deep = "[" * 3000 + "]" * 3000
    value = base64.b64encode(('{"id_token": ' + deep + "}").encode()).decode()
    with pytest.raises(InvalidClaimsChallenge):
        decode_claims(value[:8192])


def test_a_claims_challenge_without_claims_is_a_typed_error() -> None:
    with pytest.raises(InvalidClaimsChallenge, match="without a claims parameter"):
        find_authorization_challenge(401, 'Bearer error="insufficient_claims"')


def test_claims_merge_keeps_both_and_the_first_wins_per_claim() -> None:
    challenge = {"id_token": {"acr": {"essential": True, "value": "c"}}, "access_token": {"x": {}}}
    essential = {"id_token": {"acr": {"values": ["a"]}, "auth_time": {"essential": True}}}
    assert merge_claims(challenge, essential) == {
        "id_token": {"acr": {"essential": True, "value": "c"}, "auth_time": {"essential": True}},
        "access_token": {"x": {}},
    }
    assert canonical_claims({"b": {}, "a": {"z": 1}}) == '{"a":{"z":1},"b":{}}'


# --- what the new authorization asks for ---------------------------------------------------


def test_scope_requirement_is_the_union_at_the_current_level() -> None:
    current = Requirement(("loa2",), 300, ("mcp:read",))
    challenge = find_authorization_challenge(403, scope_challenge("mcp:tools mcp:read"))
    assert challenge is not None
    assert requirement_for(challenge, current) == Requirement(
        ("loa2",), 300, ("mcp:read", "mcp:tools")
    )


def test_claims_requirement_keeps_level_and_scope() -> None:
    current = Requirement(("loa2",), None, ("mcp:tools",))
    challenge = find_authorization_challenge(401, claims_challenge())
    assert challenge is not None
    assert requirement_for(challenge, current) == Requirement(
        ("loa2",), None, ("mcp:tools",), canonical_claims(ENTRA_CLAIMS)
    )


def test_a_step_up_keeps_the_scope_values_a_scope_challenge_added() -> None:
    challenge = StepUpChallenge(scheme="bearer", acr_values=["loa2"], max_age=60)
    assert requirement_for(challenge, Requirement(("loa1",), None, ("mcp:tools",))) == (
        Requirement(("loa2",), 60, ("mcp:tools",))
    )


def _metadata() -> ProviderMetadata:
    return ProviderMetadata(
        "https://op.example", "https://op.example/a", "https://op.example/t", "j"
    )


def _pending(requirement: Requirement, **kw: Any) -> PendingAuthorization:
    return new_authorization(
        issuer="https://op.example",
        client_id="c",
        redirect_uri="http://127.0.0.1/cb",
        scope="openid mcp:read",
        requirement=requirement,
        now=0,
        **kw,
    )


def test_the_authorization_request_carries_union_scope_claims_and_resource() -> None:
    requirement = Requirement(("loa2",), None, ("mcp:tools", "mcp:read"), '{"access_token":{}}')
    pending = _pending(requirement, essential_acr=True, resource="https://mcp.example")
    params = authorization_params(pending)
    assert params["scope"] == "openid mcp:read mcp:tools"
    assert json.loads(params["claims"]) == {
        "access_token": {},
        "id_token": {"acr": {"essential": True, "values": ["loa2"]}},
    }
    assert params["resource"] == "https://mcp.example"
    token = code_token_request(_metadata(), pending, "code-1")
    assert b"resource=https%3A%2F%2Fmcp.example" in (token.body or b"")
    refresh = refresh_token_request(_metadata(), "c", "rt", None, "https://mcp.example")
    assert b"resource=https%3A%2F%2Fmcp.example" in (refresh.body or b"")
    plain = authorization_params(_pending(Requirement()))
    assert "claims" not in plain
    assert "resource" not in plain


def test_a_pending_authorization_round_trips_the_new_fields_and_reads_old_dicts() -> None:
    pending = _pending(Requirement((), None, ("mcp:tools",), '{"a":{}}'), resource="urn:r")
    assert PendingAuthorization.from_dict(pending.to_dict()) == pending
    old = {k: v for k, v in pending.to_dict().items() if k not in ("required_scope", "claims")}
    old.pop("resource")
    assert PendingAuthorization.from_dict(old).requirement == Requirement()


def test_a_token_meets_scope_and_claims_requirements_only_when_it_has_them() -> None:
    needs_tools = Requirement(scope=("mcp:tools",))
    assert NEW.satisfies(needs_tools, 0)
    assert not EVERYDAY.satisfies(needs_tools, 0)
    claims = Requirement(claims='{"a":{}}')
    assert not NEW.satisfies(claims, 0)
    assert TokenSet("at", requirement=claims).satisfies(claims, 0)


# --- the core ------------------------------------------------------------------------------


def _start(token: TokenSet = EVERYDAY) -> Any:
    flow = step_up_flow(ROUTE)
    assert next(flow) == GetToken(ROUTE)
    assert flow.send(token) == Send(token, 1, "initial")
    return flow


def test_insufficient_scope_reads_the_metadata_then_authorizes_anew_never_refreshes() -> None:
    flow = _start()  # EVERYDAY has a refresh token: it is not used
    assert flow.send(ApiReply(403, (scope_challenge(),))) == ResourceMetadata(ROUTE, METADATA)
    action = flow.send(None)
    assert isinstance(action, StepUp)
    assert action.requirement == Requirement(scope=("mcp:tools",))
    assert action.rejected is EVERYDAY
    assert flow.send(NEW) == Send(NEW, 2, "after_step_up")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(200))


def test_insufficient_scope_again_after_the_new_token_is_scope_not_granted() -> None:
    flow = _start()
    flow.send(ApiReply(403, (scope_challenge(),)))
    flow.send(None)
    flow.send(NEW)
    with pytest.raises(ScopeNotGranted) as caught:
        flow.send(ApiReply(403, (scope_challenge("mcp:admin"),)))
    assert caught.value.missing == ("mcp:admin",)
    assert [c.scope for c in caught.value.challenges] == [["mcp:tools"], ["mcp:admin"]]
    assert str(caught.value) == (
        "the API challenged the stepped-up token again (scope=mcp:admin); "
        "the first challenge asked for scope=mcp:tools"
    )


def test_claims_challenge_then_again_is_claims_not_satisfied() -> None:
    flow = _start()
    action = flow.send(ApiReply(401, (claims_challenge(),)))
    assert isinstance(action, StepUp)  # no resource_metadata: straight to the authorization
    assert action.requirement.claims == canonical_claims(ENTRA_CLAIMS)
    flow.send(NEW)
    with pytest.raises(ClaimsNotSatisfied) as caught:
        flow.send(ApiReply(401, (claims_challenge(),)))
    assert len(caught.value.challenges) == 2


def test_a_malformed_claims_challenge_raises_before_any_authorization() -> None:
    flow = _start()
    with pytest.raises(InvalidClaimsChallenge):
        flow.send(ApiReply(401, (claims_challenge("%%%"),)))


def test_another_dialect_after_the_new_token_is_still_the_end() -> None:
    flow = _start()
    flow.send(ApiReply(403, (scope_challenge(),)))
    flow.send(None)
    flow.send(NEW)
    step_up = 'Bearer error="insufficient_user_authentication", acr_values="loa2"'
    with pytest.raises(StepUpFailed) as caught:
        flow.send(ApiReply(401, (step_up,)))
    assert type(caught.value) is StepUpFailed


def test_without_issuer_the_first_send_has_no_token_and_the_metadata_names_the_issuer() -> None:
    flow = step_up_flow(ROUTE)
    assert next(flow) == GetToken(ROUTE)
    bare = flow.send(None)
    assert bare == Send(None, 1, "initial")
    assert bare.authorization is None
    challenge = f'Bearer resource_metadata="{METADATA}"'
    assert flow.send(ApiReply(401, (challenge,))) == ResourceMetadata(ROUTE, METADATA)
    assert flow.send(None) == GetToken(ROUTE)
    assert flow.send(EVERYDAY) == Send(EVERYDAY, 2, "after_discovery")
    assert isinstance(flow.send(ApiReply(403, (scope_challenge(),))), ResourceMetadata)
    assert isinstance(flow.send(None), StepUp)
    assert flow.send(NEW) == Send(NEW, 3, "after_step_up")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(200))


def test_without_issuer_a_401_without_resource_metadata_is_a_typed_error() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(None)
    with pytest.raises(ResourceMetadataError, match="names no resource_metadata"):
        flow.send(ApiReply(401, ('Bearer realm="api"',)))


def test_without_issuer_a_public_resource_needs_no_token() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(None)
    with pytest.raises(StopIteration):
        flow.send(ApiReply(200))


def test_every_dialect_keeps_the_request_at_four_sends_at_most() -> None:
    # No issuer, then invalid_token, then a scope challenge, then a claims challenge.
    replies = iter(
        [
            ApiReply(401, (f'Bearer resource_metadata="{METADATA}"',)),
            ApiReply(401, ('Bearer error="invalid_token"',)),
            ApiReply(403, (scope_challenge(),)),
            ApiReply(401, (claims_challenge(),)),
        ]
    )
    flow = step_up_flow(ROUTE)
    seen: list[Any] = [next(flow)]

    def run() -> None:
        tokens = 0
        while True:
            action = seen[-1]
            if isinstance(action, Send):
                value: Any = next(replies)
            elif isinstance(action, GetToken):
                value = None if tokens == 0 else EVERYDAY
                tokens += 1
            elif isinstance(action, Refresh):
                value = TokenSet("at-r", refresh_token="rt-2")
            elif isinstance(action, StepUp):
                value = NEW
            else:
                value = None
            seen.append(flow.send(value))

    with pytest.raises(ClaimsNotSatisfied):
        run()
    assert [a.reason for a in seen if isinstance(a, Send)] == [
        "initial",
        "after_discovery",
        "after_refresh",
        "after_step_up",
    ]


def test_reading_a_reply_once_gives_everything_the_core_needs() -> None:
    reading = read_reply(
        ApiReply(401, (f'Bearer error="invalid_token", resource_metadata="{METADATA}"',))
    )
    assert reading.invalid_token
    assert reading.challenge is None
    assert reading.resource_metadata == METADATA
    assert read_reply(ApiReply(200, (scope_challenge(),))).challenge is None


# --- RFC 9728 documents --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "url", "ok"),
    [
        ("https://mcp.example", "https://mcp.example/mcp", True),
        ("https://mcp.example/", "https://mcp.example/mcp", True),
        ("https://MCP.example", "https://mcp.example/mcp", True),
        ("https://mcp.example/mcp", "https://mcp.example/mcp", True),
        ("https://mcp.example/v1", "https://mcp.example/v1/tools", True),
        ("https://mcp.example/v1", "https://mcp.example/v10", False),
        ("https://mcp.example:8443", "https://mcp.example/mcp", False),
        ("http://mcp.example", "https://mcp.example/mcp", False),
        ("https://evil.example", "https://mcp.example/mcp", False),
        ("https://mcp.example/?x=1", "https://mcp.example/mcp", False),
    ],
)
def test_rfc9728_3_3_the_resource_must_be_the_api_the_request_went_to(
    resource: str, url: str, ok: bool
) -> None:
    route = Route.of("GET", url)
    assert resource_matches(resource, route.origin, route.path) is ok


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ([], "not a JSON object"),
        ({"authorization_servers": ["https://op"]}, "has no resource"),
        ({"resource": "https://mcp.example"}, "lists no authorization_servers"),
        ({"resource": "https://mcp.example", "authorization_servers": "https://op"}, "not a list"),
        ({"resource": "https://mcp.example", "authorization_servers": [1]}, "not a list"),
    ],
)
def test_rfc9728_2_documents_that_cannot_be_used(document: Any, why: str) -> None:
    with pytest.raises(ResourceMetadataError, match=why) as caught:
        parse_resource_metadata(document, METADATA)
    assert caught.value.url == METADATA


def test_rfc9728_2_a_usable_document() -> None:
    parsed = parse_resource_metadata(
        {
            "resource": "https://mcp.example",
            "authorization_servers": ["https://op.example", "https://other.example"],
            "scopes_supported": ["mcp:tools"],
        },
        METADATA,
    )
    assert parsed.authorization_servers == ("https://op.example", "https://other.example")
    assert parsed.scopes_supported == ("mcp:tools",)


def test_client_id_is_still_required_when_the_issuer_is_left_out() -> None:
    from client_sdk import ConfigurationError, HeadlessAuthenticator, StepUpAuth

    with pytest.raises(ConfigurationError, match="client_id is required"):
        StepUpAuth(authenticator=HeadlessAuthenticator("alice", "pw"))
    auth = StepUpAuth(client_id="bank-cli", authenticator=HeadlessAuthenticator("alice", "pw"))
    assert auth.client.issuer is None
    with pytest.raises(ConfigurationError, match="no issuer yet"):
        auth.login()

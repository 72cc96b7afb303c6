"""The factor API (issue 15): list a user's factors, open a challenge, verify a passcode — with the
login pages' own replay and lockout rules, and an audit row for every verification. On SQLite and
PostgreSQL, at a frozen time."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select

from provider import create_app
from provider.factor_api import SCOPE, TRANSACTION_LIFETIME, Reason
from provider.factor_audit import AuditEntry
from provider.models import Passkey, User
from provider.settings import ClientConfig, UserConfig
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .factor_api_support import (
    FactorApi,
    admin_token,
    audit,
    code_now,
    error_of,
    op_of,
    subject_of,
)
from .flow import LOA2, Client

CAROL_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
NIGHT_DESK = ("night-desk", "night-desk-secret-for-these-tests-only")


@pytest.fixture
def config(config: StepupConfig) -> StepupConfig:
    """The sandbox config, with carol (password and TOTP) and a second admin client."""
    carol = UserConfig("carol", "looking-glass", totp_secret=CAROL_SECRET)
    desk = ClientConfig(
        NIGHT_DESK[0],
        client_secret=NIGHT_DESK[1],
        grant_types=("client_credentials",),
        scope=SCOPE,
    )
    return replace(config, users=(*config.users, carol), clients=(*config.clients, desk))


def test_lists_the_factors_each_user_enrolled(app: Flask) -> None:
    api = FactorApi(app)
    alice, bob = subject_of(app, "alice"), subject_of(app, "bob")
    response = api.factors(alice)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        "sub": alice,
        "username": "alice",
        "factors": [
            {"id": "pwd", "type": "password", "verify": False},
            {"id": "otp", "type": "totp", "verify": True, "digits": 6, "period": 30},
        ],
    }
    # A username names the user too (case-insensitive, as the login form compares it).
    assert api.factors("ALICE").json == response.json
    assert api.factors("bob").json == {
        "sub": bob,
        "username": "bob",
        "factors": [{"id": "pwd", "type": "password", "verify": False}],
    }
    assert error_of(api.factors("nobody")) == (404, "user_not_found")


def test_verifies_a_totp_once_and_refuses_its_replay(app: Flask) -> None:
    api = FactorApi(app)
    alice = subject_of(app, "alice")
    opened = api.challenge("alice")
    assert opened.status_code == 201
    body = opened.json
    assert body is not None
    tid = body["transaction_id"]
    assert body == {
        "status": "waiting",
        "transaction_id": tid,
        "sub": alice,
        "factor": "otp",
        "expires_at": T0_EPOCH + TRANSACTION_LIFETIME,
        "expires_in": TRANSACTION_LIFETIME,
    }
    code = code_now(app)
    verified = api.verify("alice", code, tid)
    assert verified.status_code == 200
    assert verified.json == {
        "status": "verified",
        "sub": alice,
        "factor": "otp",
        "transaction_id": tid,
        "verified_at": T0_EPOCH,
        "amr": ["otp"],
    }
    # The same code again, in the same transaction or a new one: a replay (RFC 6238 §5.2).
    again = api.verify("alice", code, tid)
    assert error_of(again) == (422, "replayed_passcode")
    assert error_of(api.verify("alice", code)) == (422, "replayed_passcode")

    rows = audit(app)
    assert [(r.client_id, r.user_ref, r.subject, r.factor, r.result, r.reason) for r in rows] == [
        ("back-office", "alice", alice, "otp", "success", Reason.VERIFIED),
        ("back-office", "alice", alice, "otp", "failure", Reason.REPLAYED),
        ("back-office", "alice", alice, "otp", "failure", Reason.REPLAYED),
    ]
    assert [r.at for r in rows] == [T0_EPOCH] * 3
    first_id = tid.split(".")[0]
    assert rows[0].transaction_id == rows[1].transaction_id == first_id
    assert rows[2].transaction_id not in (None, first_id)


def test_a_code_spent_on_the_login_page_is_a_replay_here_and_the_other_way_round(
    app: Flask, cli: Client, frozen: FrozenDateTimeFactory
) -> None:
    cli.tokens(acr_values=LOA2)  # the login page took this step's code
    api = FactorApi(app)
    assert error_of(api.verify("alice", code_now(app))) == (422, "replayed_passcode")

    frozen.tick(30)  # the next step: the API takes it first, and the login page refuses it
    assert api.verify("alice", code_now(app)).status_code == 200
    page = cli.browser.get(cli.authorize(acr_values=LOA2, prompt="login").location)
    page = cli.browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    page = cli.browser.get(page.location)
    refused = cli.browser.submit(page, {"one-time-code": code_now(app)})
    assert refused.status_code == 401
    assert "That code was already used" in refused.get_data(as_text=True)


def test_wrong_and_expired_codes_are_refused_with_their_own_codes(app: Flask) -> None:
    api = FactorApi(app)
    assert error_of(api.verify("alice", "000000")) == (422, "invalid_passcode")
    assert error_of(api.verify("alice", code_now(app, back=3))) == (422, "expired_passcode")
    assert error_of(api.verify("alice", "not a code")) == (422, "invalid_passcode")
    assert [r.reason for r in audit(app)] == [Reason.WRONG, Reason.EXPIRED, Reason.WRONG]


def test_lockout_counts_the_login_page_and_the_api_together(
    app: Flask, cli: Client, frozen: FrozenDateTimeFactory
) -> None:
    """Three wrong codes on the login page and two here make the five free failures; the sixth
    guess, here or there, is locked out for 30 seconds — the right code too."""
    cli.tokens()  # signed in with the password; the OTP page is next
    page = cli.browser.get(cli.authorize(acr_values=LOA2).location)
    for _ in range(3):
        page = cli.browser.submit(page, {"one-time-code": "000000"})
        assert page.status_code == 401
    api = FactorApi(app)
    assert error_of(api.verify("alice", "111111")) == (422, "invalid_passcode")
    assert error_of(api.verify("alice", "222222")) == (422, "invalid_passcode")

    locked = api.verify("alice", code_now(app))
    assert error_of(locked) == (429, "too_many_attempts")
    assert locked.headers["Retry-After"] == "30"
    assert locked.json is not None
    assert locked.json["retry_after"] == 30
    on_the_page = cli.browser.submit(page, {"one-time-code": code_now(app)})
    assert on_the_page.status_code == 429
    assert "Try again in 30 seconds" in on_the_page.get_data(as_text=True)

    frozen.tick(30)
    assert api.verify("alice", code_now(app)).status_code == 200
    assert [r.reason for r in audit(app)] == [
        Reason.WRONG,
        Reason.WRONG,
        Reason.THROTTLED,
        Reason.VERIFIED,
    ]


def test_transactions_expire(app: Flask, frozen: FrozenDateTimeFactory) -> None:
    api = FactorApi(app)
    tid = api.transaction("alice")
    frozen.tick(TRANSACTION_LIFETIME - 1)
    assert api.verify("alice", code_now(app), tid).status_code == 200
    frozen.tick(1)
    stale = api.verify("alice", code_now(app), tid)
    assert stale.json == {
        "error": "expired_transaction",
        "error_description": "The transaction has expired: open a new challenge.",
    }
    assert stale.status_code == 400
    assert [r.reason for r in audit(app)] == [Reason.VERIFIED, Reason.EXPIRED_TRANSACTION]


def test_a_transaction_binds_the_client_the_user_and_the_factor(app: Flask) -> None:
    """Opened by the back office for alice's code: forged, presented for carol, or by another
    admin client, it is refused before any code is verified — no guess is spent."""
    api, desk = FactorApi(app), FactorApi(app, admin_token(app, NIGHT_DESK))
    tid = api.transaction("alice")
    forged = tid[:-1] + ("A" if tid[-1] != "A" else "B")
    for sent in (forged, "x.1.y", "", "a" * 5000):
        if sent:
            assert error_of(api.verify("alice", code_now(app), sent)) == (
                400,
                "invalid_transaction",
            )
    assert error_of(api.verify("carol", code_now(app, CAROL_SECRET), tid)) == (
        400,
        "invalid_transaction",
    )
    refused = desk.verify("alice", code_now(app), tid)
    assert refused.json == {
        "error": "invalid_transaction",
        "error_description": "transaction_id was not opened by this client for this user and "
        "factor.",
    }
    rows = audit(app)
    assert [(r.client_id, r.user_ref, r.reason, r.transaction_id) for r in rows] == [
        ("back-office", "alice", Reason.INVALID_TRANSACTION, None),
        ("back-office", "alice", Reason.INVALID_TRANSACTION, None),
        ("back-office", "alice", Reason.INVALID_TRANSACTION, None),
        ("back-office", "carol", Reason.INVALID_TRANSACTION, None),
        ("night-desk", "alice", Reason.INVALID_TRANSACTION, None),
    ]
    # Five refusals, and alice's code is not locked: none of them counted as a guess.
    assert api.verify("alice", code_now(app), tid).status_code == 200


def test_factors_the_api_cannot_challenge(app: Flask) -> None:
    api = FactorApi(app)
    assert error_of(api.challenge("alice", "pwd")) == (400, "unsupported_factor")
    assert error_of(api.challenge("alice", "passkey")) == (404, "factor_not_enrolled")
    assert error_of(api.challenge("alice", "sms")) == (404, "factor_not_found")
    assert error_of(api.challenge("bob", "otp")) == (404, "factor_not_enrolled")
    assert error_of(api.challenge("nobody", "otp")) == (404, "user_not_found")
    assert audit(app) == []  # challenges are not verifications
    assert error_of(api.verify("alice", "123456", "x", factor="pwd")) == (400, "unsupported_factor")
    assert error_of(api.verify("nobody", "123456", "x")) == (404, "user_not_found")
    assert [(r.user_ref, r.subject, r.factor, r.reason) for r in audit(app)] == [
        ("alice", subject_of(app, "alice"), "pwd", Reason.UNSUPPORTED_FACTOR),
        ("nobody", None, "otp", Reason.UNKNOWN_USER),
    ]


def test_audit_entries_say_success_only_for_a_verification() -> None:
    entry = AuditEntry(1, "c", "u", None, "otp", Reason.VERIFIED)
    assert entry.result == "success"
    others = [r for r in Reason if r is not Reason.VERIFIED]
    assert {AuditEntry(1, "c", "u", None, "otp", r).result for r in others} == {"failure"}


def test_a_passkey_is_listed_but_not_challenged(app: Flask) -> None:
    """A passkey answers only the provider's own origin (its RP ID): the API says the user has
    one, with whether it is a hardware key, and refuses to challenge it."""
    with op_of(app).db.session() as s:
        user_id = s.scalar(select(User.id).where(User.username == "alice"))
        s.add(
            Passkey(
                user_id=user_id,
                credential_id="Y3JlZGVudGlhbA",
                public_key=b"cose",
                sign_count=0,
                aaguid="00000000-0000-0000-0000-000000000000",
                attestation_format="none",
                hardware=True,
                backup_eligible=False,
                transports=["usb"],
                created_at=T0_EPOCH,
            )
        )
        s.commit()
    api = FactorApi(app)
    assert api.factors("alice").json["factors"][-1] == {  # type: ignore[index]
        "id": "passkey",
        "type": "webauthn",
        "verify": False,
        "hardware": True,
    }
    refused = api.challenge("alice", "passkey")
    assert error_of(refused) == (400, "unsupported_factor")
    assert "a passkey answers only the provider's own pages" in refused.json["error_description"]  # type: ignore[index]


def test_the_sandboxs_reuse_switch_applies_here_as_on_the_login_pages(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    relaxed = replace(config.provider, sandbox_allow_totp_reuse=True)
    app = create_app(replace(config, provider=relaxed), database_url=sqlite_url)
    api = FactorApi(app)
    code = code_now(app)
    assert [api.verify("alice", code).status_code for _ in range(2)] == [200, 200]

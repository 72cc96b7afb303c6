"""Passkeys in storage (``provider.passkey_login``), on SQLite and PostgreSQL: a challenge is
bound to its interaction and used once, also by two requests at the same moment; a signature
counter only goes up, also when two assertions race; a credential id is registered once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from client_sdk.authenticators.passkey import SoftwarePasskey
from provider import passkey_login, store
from provider.app import Provider
from provider.factors import passkey as pk
from provider.factors.passkey import PasskeyRefused, RelyingParty
from provider.models import Interaction, Passkey, User

RP = RelyingParty.for_issuer("http://localhost:9000")


def _op(app: Flask) -> Provider:
    op: Provider = app.extensions["stepup_provider"]
    return op


def _user(op: Provider, name: str) -> User:
    with op.db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
    assert user is not None
    return user


def _interaction(op: Provider) -> str:
    with op.db.session() as s:
        return store.start_interaction(
            s, browser_id="b", client_id="bank-cli", params={}, now=op.clock.now()
        )


def _register(op: Provider, user: User, key: SoftwarePasskey) -> passkey_login.Verified:
    interaction = _interaction(op)
    with op.db.session() as s:
        challenge = passkey_login.issue_challenge(s, interaction, "create")
        options = pk.creation_options(
            RP,
            user_handle=user.subject.encode(),
            username=user.username,
            display_name=user.username,
            challenge=challenge,
            exclude=[],
            user_verification="required",
        )
        return passkey_login.register(
            s,
            RP,
            user=user,
            interaction_id=interaction,
            form_value=pk_json(key.create(options, RP.origin)),
            require_uv=True,
            now=op.clock.now(),
        )


def pk_json(value: Any) -> str:
    import json

    return json.dumps(value)


def _assertion(op: Provider, key: SoftwarePasskey, interaction: str) -> str:
    with op.db.session() as s:
        challenge = passkey_login.issue_challenge(s, interaction, "get")
    options = pk.request_options(RP, challenge=challenge, allow=None, user_verification="required")
    return pk_json(key.get(options, RP.origin))


def _authenticate(
    op: Provider, interaction: str, value: str, user: User | None = None
) -> passkey_login.Verified:
    with op.db.session() as s:
        return passkey_login.authenticate(
            s,
            RP,
            user=user,
            interaction_id=interaction,
            form_value=value,
            require_uv=True,
            hardware_only=False,
            now=op.clock.now(),
        )


def test_a_registered_passkey_signs_its_owner_in_and_its_counter_is_stored(app: Flask) -> None:
    op = _op(app)
    alice = _user(op, "alice")
    key = SoftwarePasskey()
    done = _register(op, alice, key)
    assert done.factors == ("passkey", "uv")
    assert done.credential.credential_id == key.id
    with op.db.session() as s:
        assert passkey_login.user_passkey_factors(s, alice.id) == {"passkey", "uv"}
        assert passkey_login.user_passkey_factors(s, _user(op, "bob").id) == frozenset()

    interaction = _interaction(op)
    signed_in = _authenticate(op, interaction, _assertion(op, key, interaction))
    assert (signed_in.user.username, signed_in.factors) == ("alice", ("passkey", "uv"))
    with op.db.session() as s:
        row = s.scalar(select(Passkey).where(Passkey.credential_id == key.id))
        assert row is not None
        assert (row.sign_count, row.last_used_at) == (1, op.clock.now())


def test_a_replayed_assertion_is_refused_because_its_challenge_is_used(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    interaction = _interaction(op)
    value = _assertion(op, key, interaction)
    _authenticate(op, interaction, value)
    with pytest.raises(PasskeyRefused) as refused:
        _authenticate(op, interaction, value)
    assert refused.value.code == "challenge"


def test_a_challenge_works_only_in_its_own_interaction_and_ceremony(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    mine, other = _interaction(op), _interaction(op)
    value = _assertion(op, key, mine)
    with pytest.raises(PasskeyRefused) as elsewhere:
        _authenticate(op, other, value)
    assert elsewhere.value.code == "challenge"
    # A registration challenge is no assertion challenge, though the string is the same.
    with op.db.session() as s:
        challenge = passkey_login.issue_challenge(s, mine, "create")
        stored = s.get(Interaction, mine)
        assert stored is not None
        assert stored.passkey_challenge == f"create:{challenge}"
    options = pk.request_options(RP, challenge=challenge, allow=None, user_verification="required")
    with pytest.raises(PasskeyRefused) as wrong_kind:
        _authenticate(op, mine, pk_json(key.get(options, RP.origin)))
    assert wrong_kind.value.code == "challenge"


def test_a_new_page_replaces_the_challenge_of_the_last_one(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    interaction = _interaction(op)
    first = _assertion(op, key, interaction)
    _assertion(op, key, interaction)  # the page again: a new challenge
    with pytest.raises(PasskeyRefused) as refused:
        _authenticate(op, interaction, first)
    assert refused.value.code == "challenge"


def test_a_credential_id_is_registered_once(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    again = SoftwarePasskey.from_json(key.to_json())
    with pytest.raises(PasskeyRefused) as refused:
        _register(op, _user(op, "bob"), again)
    assert refused.value.code == "excluded"
    with op.db.session() as s:
        owners = s.scalars(select(Passkey.user_id).where(Passkey.credential_id == key.id)).all()
    assert owners == [_user(op, "alice").id]


def test_several_passkeys_per_user(app: Flask) -> None:
    op = _op(app)
    alice = _user(op, "alice")
    keys = [SoftwarePasskey(), SoftwarePasskey()]
    for key in keys:
        _register(op, alice, key)
    with op.db.session() as s:
        assert [r.credential_id for r in passkey_login.credentials_of(s, alice.id)] == [
            k.id for k in keys
        ]
    for key in keys:
        interaction = _interaction(op)
        assert _authenticate(op, interaction, _assertion(op, key, interaction)).user.id == alice.id


def test_another_users_passkey_does_not_step_this_user_up(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    interaction = _interaction(op)
    with pytest.raises(PasskeyRefused) as refused:
        _authenticate(op, interaction, _assertion(op, key, interaction), user=_user(op, "bob"))
    assert (refused.value.code, refused.value.detail) == (
        "unknown_credential",
        "another user's passkey",
    )


def test_an_unknown_credential_and_a_wrong_user_handle_are_refused(app: Flask) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    stranger = SoftwarePasskey(rp_id=RP.id, user_handle=b"nobody")
    interaction = _interaction(op)
    with pytest.raises(PasskeyRefused) as unknown:
        _authenticate(op, interaction, _assertion(op, stranger, interaction))
    assert unknown.value.code == "unknown_credential"
    key.user_handle = _user(op, "bob").subject.encode()  # claims to be bob's
    interaction = _interaction(op)
    with pytest.raises(PasskeyRefused) as handle:
        _authenticate(op, interaction, _assertion(op, key, interaction))
    assert (handle.value.code, handle.value.detail) == (
        "unknown_credential",
        "the user handle is not the owner's",
    )


def _race(n: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n, timeout=30)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_one_assertion_sent_twice_at_once_signs_in_once(app: Flask, round_: int) -> None:
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    interaction = _interaction(op)
    value = _assertion(op, key, interaction)
    results = _race(2, lambda _: _authenticate(op, interaction, value))
    won = [r for r in results if isinstance(r, passkey_login.Verified)]
    lost = [r for r in results if isinstance(r, PasskeyRefused)]
    assert len(won) == 1
    assert [r.code for r in lost] == ["challenge"]


@pytest.mark.parametrize("round_", range(3))
def test_a_clone_racing_the_original_with_one_count_loses(app: Flask, round_: int) -> None:
    """Two authenticators with one key and one counter (a copy), each in its own interaction,
    both at count 1 at the same moment: one is accepted, the other refused as a clone — the
    counter is raised by a conditional UPDATE, not checked and then written."""
    op = _op(app)
    key = SoftwarePasskey()
    _register(op, _user(op, "alice"), key)
    clone = SoftwarePasskey.from_json(key.to_json())
    interactions = [_interaction(op), _interaction(op)]
    values = [
        _assertion(op, key, interactions[0]),
        _assertion(op, clone, interactions[1]),
    ]
    results = _race(2, lambda i: _authenticate(op, interactions[i], values[i]))
    won = [r for r in results if isinstance(r, passkey_login.Verified)]
    lost = [r for r in results if isinstance(r, PasskeyRefused)]
    assert len(won) == 1
    assert [r.code for r in lost] == ["sign_count"]
    with op.db.session() as s:
        assert s.scalar(select(Passkey.sign_count).where(Passkey.credential_id == key.id)) == 1

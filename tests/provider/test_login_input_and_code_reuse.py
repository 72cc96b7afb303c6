"""Hostile input at the login pages, and a code reused while its first exchange is minting."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from provider.app import Provider
from provider.clients import ClientAdapter
from provider.issuance import CodeRecord
from provider.models import Grant
from provider.oauth import InvalidGrantError
from provider.tokens import AuthContext

from .flow import LOA1, Browser, Client


@pytest.mark.parametrize("hint", ["al\x00ice", "x" * 5000], ids=["nul", "long"])
def test_login_hint_that_the_database_cannot_hold_is_not_a_500(app: Flask, hint: str) -> None:
    response = Client(Browser(app)).authorize(login_hint=hint)
    assert response.status_code in (303, 400)
    if "\x00" in hint:
        assert response.status_code == 400
        assert "NUL byte" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("username", "status"),
    [("al\x00ice", 400), ("a" * 400, 401), ("ALICE", 303), ("é" * 100, 401)],
    ids=["nul", "long", "case", "unicode"],
)
def test_any_typed_username_gets_an_answer_not_a_500(
    app: Flask, username: str, status: int
) -> None:
    browser = Browser(app)
    page = browser.get(Client(browser).authorize().location)
    response = browser.submit(page, {"username": username, "current-password": "wonderland"})
    assert response.status_code == status


def test_long_usernames_are_throttled_too(app: Flask) -> None:
    browser = Browser(app)
    page = browser.get(Client(browser).authorize().location)
    statuses = []
    for _ in range(6):
        page = browser.submit(page, {"username": "z" * 400, "current-password": "x"})
        statuses.append(page.status_code)
    assert statuses == [401, 401, 401, 401, 401, 429]


def test_code_reused_while_its_first_exchange_is_minting_revokes_those_tokens(app: Flask) -> None:
    """The window RFC 6749 §4.1.2's revocation could miss: both requests have read the code as
    unused and signed their tokens; whichever records its grant second must be refused, and what
    the first one issued revoked."""
    op: Provider = app.extensions["stepup_provider"]
    code = Client(Browser(app)).sign_in()["code"]
    first = op.issuance.find_code(code, "bank-cli")
    second = op.issuance.find_code(code, "bank-cli")  # the reuse, read mid-exchange
    assert first is not None
    assert second is not None
    client = op.issuance.query_client("bank-cli")
    assert isinstance(client, ClientAdapter)

    def issue(record: CodeRecord) -> dict[str, object]:
        return op.issuance.issue(
            client=client, user=record.user, scope="openid", nonce=None, family=None,
            context=AuthContext(LOA1, ("pwd",), 0), code_id=record.id,
        )  # fmt: skip

    issued = issue(first)
    with pytest.raises(InvalidGrantError, match="used twice"):
        issue(second)
    with op.db.session() as s:
        grants = list(s.scalars(select(Grant).where(Grant.code_id == first.id)))
    assert len(grants) == 1
    assert grants[0].revoked_at is not None
    assert grants[0].jti == op.signer.verify(str(issued["access_token"]), typ="at+jwt")["jti"]  # type: ignore[index]
    assert op.issuance.find_code(code, "bank-cli") is None  # and the code is spent

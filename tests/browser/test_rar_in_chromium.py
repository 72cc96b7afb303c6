"""RFC 9396 in a real browser: Chromium starts the playground's payment example, sees the payment
on every login page (with the accessible name screen readers announce), approves it with the
password and a one-time code, and lands on the tokens; a second approval right after is asked
for the code again, and Cancel sends access_denied back to the application."""

from __future__ import annotations

from playwright.sync_api import Page

from provider.factors.totp import code_at
from stepup.inprocess import Sandbox

from .conftest import Screenshot

PAYMENT = '[{"type": "payment", "amount": "1500", "currency": "EUR", "payee": "acc_bob"}]'


def _start(page: Page, sandbox: Sandbox) -> None:
    page.goto(f"{sandbox.issuer}/sandbox/try")
    page.fill("#acr_values", "urn:stepup:loa:2")
    page.fill("#authorization_details", PAYMENT)
    page.click("button:has-text('Start sign-in')")


def _shows_the_payment(page: Page) -> None:
    notice = page.get_by_role("region", name="Sandbox playground asks you to approve")
    assert notice.locator("li").all_inner_texts() == ["Pay 1500.00 EUR to acc_bob"]
    described = page.locator("form").first.get_attribute("aria-describedby") or ""
    assert described.split()[0] == "transaction"


def test_the_payment_is_shown_and_approved_with_a_fresh_code(
    page: Page, sandbox: Sandbox, screenshot: Screenshot
) -> None:
    alice = sandbox.user("alice")
    assert alice.password is not None
    assert alice.totp_secret is not None
    _start(page, sandbox)
    assert page.inner_text("h1") == "Enter your username and password"
    _shows_the_payment(page)
    screenshot(page, "password")
    page.fill("#username", "alice")
    page.fill("#password", alice.password)
    page.click("button[value=continue]")
    assert page.inner_text("h1") == "Enter your one-time code"
    _shows_the_payment(page)
    screenshot(page, "code")
    page.fill("#code", code_at(alice.totp_secret, sandbox.now()))
    page.click("button[value=continue]")
    assert page.url.startswith(f"{sandbox.issuer}/sandbox/callback?")
    assert page.inner_text("#result") == "Signed in as alice"
    claims = page.locator("pre[aria-label='Access token claims']").inner_text()
    assert '"payee": "acc_bob"' in claims

    # Signed in at level 2 seconds ago: the next approval still asks for a code.
    sandbox.advance_clock(30)
    _start(page, sandbox)
    assert page.inner_text("h1") == "Enter your one-time code"
    _shows_the_payment(page)
    assert "To approve this transaction, confirm it is you." in page.inner_text("#step-reason")
    page.click("button[value=cancel]")
    assert page.url.startswith(f"{sandbox.issuer}/sandbox/callback?")
    assert "access_denied" in page.inner_text("main")
    screenshot(page, "cancelled")

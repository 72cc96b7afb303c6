"""What a person (and their screen reader) sees on the login pages: headings that name the fields,
errors tied to the inputs they are about, the favicon, and the pages' Content-Security-Policy."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from .flow import LOA2, Browser, Client

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' http: "
    "https:; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture
def browser(sqlite_app: Flask) -> Browser:
    """These tests are about pages, not storage: SQLite only."""
    return Browser(sqlite_app)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each ``h1``."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.h1: list[str] = []
        self._in_h1 = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_h1 = self._in_h1 or tag == "h1"
        if tag == "h1":
            self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data

    def by_id(self, element_id: str) -> tuple[str, dict[str, str]]:
        found = [t for t in self.tags if t[1].get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id={element_id}"
        return found[0]

    def aria(self, element_id: str) -> dict[str, str]:
        """The aria-* attributes of one element."""
        return {k: v for k, v in self.by_id(element_id)[1].items() if k.startswith("aria-")}


def page_of(response: TestResponse) -> Elements:
    return Elements(response.get_data(as_text=True))


def password_page(cli: Client, **extra: str) -> TestResponse:
    response = cli.authorize(**extra)
    return cli.browser.get(response.location)


def test_password_page_heading_names_its_fields(cli: Client) -> None:
    page = password_page(cli)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert page_of(page).h1 == ["Enter your username and password"]
    assert '<p class="who">to sign in to <strong>Bank CLI</strong>.</p>' in html
    assert "<title>Sign in to Bank CLI · Stepup</title>" in html


def test_password_page_says_what_comes_after_it(cli: Client) -> None:
    page = password_page(cli, acr_values=LOA2)
    assert (
        '<p class="who">to sign in to <strong>Bank CLI</strong>; then a one-time code.</p>'
        in page.get_data(as_text=True)
    )


def test_a_page_without_an_error_has_no_aria_error_state(cli: Client) -> None:
    elements = page_of(password_page(cli))
    assert elements.aria("username") == {}
    assert elements.aria("password") == {}
    assert not [t for t in elements.tags if t[1].get("id") == "form-error"]


def test_wrong_password_marks_both_fields_and_points_them_at_the_error(
    cli: Client, browser: Browser
) -> None:
    page = password_page(cli)
    response = browser.submit(page, {"username": "alice", "current-password": "nope"})
    assert response.status_code == 401
    elements = page_of(response)
    assert elements.by_id("form-error") == (
        "p",
        # data-error: the machine code scripts read (client_sdk's HeadlessAuthenticator)
        {"class": "error", "role": "alert", "id": "form-error", "data-error": "wrong"},
    )
    described = {"aria-describedby": "form-error", "aria-invalid": "true"}
    assert elements.aria("username") == described
    assert elements.aria("password") == described


def test_an_empty_password_marks_only_the_password(cli: Client, browser: Browser) -> None:
    page = password_page(cli)
    response = browser.submit(page, {"username": "alice", "current-password": ""})
    assert response.status_code == 401
    elements = page_of(response)
    assert elements.aria("username") == {"aria-describedby": "form-error"}
    assert elements.aria("password") == {
        "aria-describedby": "form-error",
        "aria-invalid": "true",
    }


def test_wrong_code_marks_the_code_field(cli: Client, browser: Browser) -> None:
    page = password_page(cli, acr_values=LOA2)
    otp_page = browser.submit(page, {"username": "alice", "current-password": "wonderland"})
    otp_page = browser.get(otp_page.location)
    assert page_of(otp_page).aria("code") == {}
    response = browser.submit(otp_page, {"one-time-code": "000000"})
    assert response.status_code == 401
    assert page_of(response).aria("code") == {
        "aria-describedby": "form-error",
        "aria-invalid": "true",
    }


def test_a_locked_account_points_at_the_message_but_marks_nothing_wrong(
    cli: Client, browser: Browser
) -> None:
    page = password_page(cli)
    for _ in range(6):
        response = browser.submit(page, {"username": "alice", "current-password": "nope"})
        page = response
    assert response.status_code == 429
    elements = page_of(response)
    assert elements.aria("password") == {"aria-describedby": "form-error"}
    assert elements.aria("username") == {"aria-describedby": "form-error"}


def test_favicon_is_served_and_named_by_the_pages(cli: Client, sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    ico = http.get("/favicon.ico")
    assert ico.status_code == 200
    assert ico.mimetype == "image/vnd.microsoft.icon"
    assert ico.data[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    svg = http.get("/static/favicon.svg")
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    icons = [a for tag, a in page_of(password_page(cli)).tags if a.get("rel") == "icon"]
    assert icons == [{"rel": "icon", "href": "/static/favicon.svg", "type": "image/svg+xml"}]


def test_login_pages_allow_no_script(cli: Client) -> None:
    page = password_page(cli)
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert not [t for t in page_of(page).tags if t[0] == "script"]

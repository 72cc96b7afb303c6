"""Read a login page: its forms, their inputs and buttons, the ``role="alert"`` text, the page text.

Pure, stdlib only (:mod:`html.parser`). Inputs are found by their ``autocomplete`` tokens (HTML
Living Standard §4.10.18.7): ``username``, ``current-password``, ``one-time-code``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Button", "Field", "Form", "Page", "parse_page"]

_VOID = frozenset(
    (
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    )
)
_HIDDEN_TEXT = frozenset(("script", "style", "template", "title", "head"))


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    value: str
    autocomplete: tuple[str, ...]
    checked: bool = False

    def has_token(self, token: str) -> bool:
        return token in self.autocomplete


@dataclass(frozen=True)
class Button:
    name: str | None
    value: str
    type: str


@dataclass
class Form:
    action: str | None
    method: str
    fields: list[Field] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)

    def field_with(self, token: str) -> Field | None:
        return next((f for f in self.fields if f.has_token(token)), None)


@dataclass
class Page:
    forms: list[Form] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def alert(self) -> str | None:
        joined = " ".join(a for a in self.alerts if a)
        return joined or None


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None
        self._stack: list[str] = []
        self._alert_depths: list[int] = []
        self._alert_text: list[list[str]] = []
        self._hidden_depth = 0
        self._text: list[str] = []
        self._button: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _HIDDEN_TEXT:
            self._hidden_depth += 1
        if tag == "form":
            self._form = Form(action=a.get("action"), method=(a.get("method") or "get").lower())
            self.page.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self._form.buttons.append(Button(a.get("name"), a.get("value") or "", kind))
            else:
                tokens = tuple((a.get("autocomplete") or "").lower().split())
                self._form.fields.append(
                    Field(a["name"] or "", kind, a.get("value") or "", tokens, "checked" in a)
                )
        elif tag == "button":
            self._button = (a, [])
        if tag not in _VOID:
            self._stack.append(tag)
            if (a.get("role") or "").lower() == "alert":
                self._alert_depths.append(len(self._stack))
                self._alert_text.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TEXT and self._hidden_depth:
            self._hidden_depth -= 1
        if tag == "button" and self._button is not None:
            attrs, _ = self._button
            if self._form is not None and (attrs.get("type") or "submit").lower() == "submit":
                self._form.buttons.append(
                    Button(attrs.get("name"), attrs.get("value") or "", "submit")
                )
            self._button = None
        if tag == "form":
            self._form = None
        if tag in self._stack:
            while self._stack:
                depth = len(self._stack)
                popped = self._stack.pop()
                if self._alert_depths and self._alert_depths[-1] == depth:
                    self._alert_depths.pop()
                    text = _collapse(" ".join(self._alert_text.pop()))
                    self.page.alerts.append(text)
                if popped == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        self._text.append(data)
        for chunk in self._alert_text:
            chunk.append(data)

    def close(self) -> None:
        super().close()
        while self._alert_text:
            self.page.alerts.append(_collapse(" ".join(self._alert_text.pop())))
        self.page.text = _collapse(" ".join(self._text))


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def parse_page(html: str) -> Page:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.page

"""Read a login page: its forms, their inputs and buttons, the ``role="alert"`` text, the page text.

Pure, stdlib only (:mod:`html.parser`). Inputs are found by their ``autocomplete`` tokens (HTML
Living Standard §4.10.18.7): ``username``, ``current-password``, ``one-time-code``.

:meth:`Page.prompt` is what a person is asked on the page, the way assistive technology reads it:
the ``h1`` heading, the description the form's inputs point at with ``aria-describedby`` (WAI-ARIA
1.2 §6.6), the ``<label>`` of each input to fill, and the ``role="alert"`` error. Not the rest of
the page: banners, navigation, and on an enrolment page the TOTP secret.
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
    id: str | None = None
    #: The ids in the input's ``aria-describedby``.
    described_by: tuple[str, ...] = ()

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
    #: The ids in the form's ``aria-describedby``.
    described_by: tuple[str, ...] = ()
    #: The form's ``data-*`` attributes, without the prefix (the provider's passkey pages carry
    #: ``data-passkey`` and ``data-passkey-options`` there).
    data: dict[str, str] = field(default_factory=dict)

    def field_with(self, token: str) -> Field | None:
        return next((f for f in self.fields if f.has_token(token)), None)


@dataclass
class Page:
    forms: list[Form] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    text: str = ""
    #: The text of the first ``h1``.
    heading: str = ""
    #: The ``data-error`` attribute of each ``role="alert"`` element that has one: a machine code
    #: for the error (the provider's are ``wrong``, ``expired``, ``replayed``, ``throttled``).
    alert_codes: list[str] = field(default_factory=list)
    #: ``<label>`` texts by the id of the input they label.
    labels: dict[str, str] = field(default_factory=dict)
    #: Text of every element that has an id, by id (for ``aria-describedby``).
    texts_by_id: dict[str, str] = field(default_factory=dict)

    @property
    def alert(self) -> str | None:
        joined = " ".join(a for a in self.alerts if a)
        return joined or None

    def prompt(self, form: Form, tokens: tuple[str, ...]) -> str:
        """What the page asks for ``form``: one line each for the heading, what the form is
        described by, the labels of the inputs whose ``autocomplete`` has one of ``tokens``, what
        those inputs are described by, and the alert. Each text once."""
        asked = [f for f in form.fields if any(f.has_token(t) for t in tokens)]
        described = dict.fromkeys(i for f in asked for i in f.described_by)
        lines = [
            self.heading,
            *(self.texts_by_id.get(i, "") for i in form.described_by),
            *(self.labels.get(f.id or "", "") for f in asked),
            *(self.texts_by_id.get(i, "") for i in described),
            self.alert or "",
        ]
        return "\n".join(dict.fromkeys(line for line in lines if line))


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
        # Elements whose text is being collected, by stack depth: alerts, labels, ids, the h1.
        self._collecting: list[tuple[int, str, str | None, list[str]]] = []
        self._label_targets: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _HIDDEN_TEXT:
            self._hidden_depth += 1
        if tag == "form":
            self._form = Form(
                action=a.get("action"),
                method=(a.get("method") or "get").lower(),
                described_by=tuple((a.get("aria-describedby") or "").split()),
                data={k[5:]: v or "" for k, v in attrs if k.startswith("data-")},
            )
            self.page.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self._form.buttons.append(Button(a.get("name"), a.get("value") or "", kind))
            else:
                tokens = tuple((a.get("autocomplete") or "").lower().split())
                ident = a.get("id")
                if ident is None and self._label_targets:
                    # An input inside a <label> without for=: that label is the input's.
                    ident = f"\x00label-{len(self.page.labels)}-{len(self._form.fields)}"
                    self._label_targets[-1] = self._label_targets[-1] or ident
                self._form.fields.append(
                    Field(
                        a["name"] or "",
                        kind,
                        a.get("value") or "",
                        tokens,
                        "checked" in a,
                        ident,
                        tuple((a.get("aria-describedby") or "").split()),
                    )
                )
        elif tag == "button":
            self._button = (a, [])
        if tag not in _VOID:
            self._stack.append(tag)
            depth = len(self._stack)
            if (a.get("role") or "").lower() == "alert":
                self._alert_depths.append(depth)
                self._alert_text.append([])
                if a.get("data-error"):
                    self.page.alert_codes.append(a["data-error"] or "")
            if tag == "label":
                self._label_targets.append(a.get("for"))
                self._collecting.append((depth, "label", None, []))
            if a.get("id"):
                self._collecting.append((depth, "id", a["id"], []))
            if tag == "h1" and not self.page.heading:
                self._collecting.append((depth, "h1", None, []))

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
                while self._collecting and self._collecting[-1][0] == depth:
                    self._finish(*self._collecting.pop()[1:])
                if popped == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        self._text.append(data)
        for chunk in self._alert_text:
            chunk.append(data)
        for *_, chunks in self._collecting:
            chunks.append(data)

    def _finish(self, kind: str, ident: str | None, chunks: list[str]) -> None:
        text = _collapse("".join(chunks))  # "needs <b>level 2</b>." reads "needs level 2."
        if kind == "h1":
            self.page.heading = self.page.heading or text
        elif kind == "id" and ident is not None:
            self.page.texts_by_id.setdefault(ident, text)
        elif kind == "label":
            target = self._label_targets.pop() if self._label_targets else None
            if target is not None:
                self.page.labels.setdefault(target, text)

    def close(self) -> None:
        super().close()
        while self._alert_text:
            self.page.alerts.append(_collapse(" ".join(self._alert_text.pop())))
        while self._collecting:
            self._finish(*self._collecting.pop()[1:])
        self.page.text = _collapse(" ".join(self._text))


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def parse_page(html: str) -> Page:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.page

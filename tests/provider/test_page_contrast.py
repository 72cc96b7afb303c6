"""The login pages' colours meet WCAG 2.2 AA contrast in the light and the dark scheme.

The ratios are computed from the CSS variables in ``provider/static/style.css`` (WCAG 2.2
"relative luminance" and "contrast ratio" definitions): 4.5:1 for text (SC 1.4.3), 3:1 for the
edges of inputs, focus outlines and other non-text marks (SC 1.4.11). The stylesheet names no
colour outside its variable blocks, so the pairs below are every pair the pages can show.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "provider" / "static" / "style.css").read_text()
TEXT, NON_TEXT = 4.5, 3.0

# (foreground variable, background variable, minimum): what the templates put together.
PAIRS = [
    ("fg", "bg", TEXT),  # body text
    ("muted", "bg", TEXT),  # "Signed in as", hints
    ("accent", "bg", TEXT),  # the brand, links
    ("error", "bg", TEXT),  # field errors
    ("on-accent", "accent", TEXT),  # primary buttons
    ("fg", "notice-bg", TEXT),  # the "why" notice
    ("muted", "notice-bg", TEXT),  # the level's value in the notice
    ("accent", "notice-bg", TEXT),  # a link in the notice
    ("banner-fg", "banner-bg", TEXT),  # "Sandbox provider — test users only"
    ("fg", "field-bg", TEXT),  # what is typed
    ("fg", "code-bg", TEXT),  # decoded tokens in the playground
    ("field-border", "field-bg", NON_TEXT),  # an input's edge, inside
    ("field-border", "bg", NON_TEXT),  # an input's edge, outside; the secondary button's edge
    ("error", "field-bg", NON_TEXT),  # an invalid input's edge
    ("accent", "bg", NON_TEXT),  # focus outline
    ("accent", "notice-bg", NON_TEXT),  # the notice's left rule
]


def _comments_removed(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.S)


def _variables(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([\w-]+)\s*:\s*(#[0-9a-fA-F]{6})\s*;", block))


def schemes() -> dict[str, dict[str, str]]:
    css = _comments_removed(CSS)
    light = re.search(r"^:root\s*\{(.*?)\}", css, re.S | re.M)
    dark = re.search(
        r"@media\s*\(prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{(.*?)\}", css, re.S
    )
    assert light is not None
    assert dark is not None
    return {"light": _variables(light.group(1)), "dark": _variables(dark.group(1))}


def luminance(hex_colour: str) -> float:
    """WCAG 2.2 relative luminance of an sRGB colour ``#rrggbb``."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_contrast_formula_matches_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the AA grey


def test_both_schemes_define_the_same_colours() -> None:
    found = schemes()
    assert set(found["light"]) == set(found["dark"])
    assert {name for pair in PAIRS for name in pair[:2]} <= set(found["light"])


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS)
def test_wcag_aa_contrast(scheme: str, fg: str, bg: str, minimum: float) -> None:
    colours = schemes()[scheme]
    ratio = contrast(colours[fg], colours[bg])
    assert ratio >= minimum, f"{scheme}: --{fg} on --{bg} is {ratio:.2f}:1, needs {minimum}:1"


LITERAL = re.compile(
    r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklch)\(|\b(?:white|black)\b"
)


def literal_colours(css: str) -> list[str]:
    """Declarations, other than the variables themselves, that write a colour literally."""
    declarations = re.findall(
        r"(?<![-\w])(-?-?[a-z][a-z-]*)\s*:\s*([^;{}]+)", _comments_removed(css)
    )
    return [
        f"{prop}: {value.strip()}"
        for prop, value in declarations
        if not prop.startswith("--") and LITERAL.search(value)
    ]


def test_the_literal_colour_check_finds_one() -> None:
    sample = ":root { --bg: #ffffff; } .qr svg { background: #fff; } a { color: rgb(0 0 0); }"
    assert literal_colours(sample) == ["background: #fff", "color: rgb(0 0 0)"]


def test_no_colour_outside_the_variables() -> None:
    """A colour written into a rule would escape the contrast check above."""
    assert literal_colours(CSS) == []

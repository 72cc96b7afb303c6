"""``stepup policy check``: what the API's policy decides for one request, and why.

    stepup policy check [--config FILE] --request 'POST /transfers' \\
        [--header 'X-Risk: high' ...] [--body '{"amount": "1500.00"}' | --body @body.json] \\
        (--token JWT | --claims '{"acr": "...", "auth_time": ...}' | --claims @claims.json) \\
        [--now EPOCH]

It evaluates the config's ``[[api.routes]]`` and ``[[api.rules]]`` exactly as the API does and
prints the decision the way PingAuthorize's policy tester does: the request and the token, every
rule with how it fared, the combined requirement, the token checked against it, and the answer.
The token's claims are read without checking its signature — this tests the policy, not the token.
Without ``--config``, the built-in sandbox config. Exit 0 when a decision was printed, 1 for bad
input, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["add_policy_parser", "cmd_policy_check"]


class _InputError(ValueError):
    """An argument that cannot be read; the message says which and why."""


def _text_or_file(value: str, what: str) -> str:
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text(encoding="utf-8")
    except OSError as exc:
        raise _InputError(f"{what}: cannot read {value[1:]}: {exc.strerror}") from None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _InputError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _InputError(f"{what}: must be a JSON object")
    return value


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise _InputError("--token: not a JWT (three base64url parts separated by dots)")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except (binascii.Error, ValueError):
        raise _InputError("--token: the payload is not base64url") from None
    return _json_object(payload.decode("utf-8", "replace"), "--token payload")


def _request(args: argparse.Namespace) -> tuple[Any, list[str]]:
    from resource_api.policy import HttpRequest, parse_json_body

    line = args.request.split()
    if len(line) != 2 or not line[1].startswith("/"):
        raise _InputError("--request: write it as 'METHOD /path?query', e.g. 'POST /transfers'")
    method, target = line[0].upper(), urlsplit(line[1])
    query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
    headers: dict[str, str] = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise _InputError(f"--header: write it as 'Name: value', not {h!r}")
        headers[name.strip().lower()] = value.strip()
    body, shown = None, None
    if args.body is not None:
        raw = _text_or_file(args.body, "--body")
        headers.setdefault("content-type", "application/json")
        body = parse_json_body(raw.encode(), headers["content-type"])
        if body is None and headers["content-type"].startswith("application/json"):
            raise _InputError("--body: not valid JSON")
        shown = json.dumps(json.loads(raw)) if body is not None else raw.strip()
    details = [f"           {name}: {value}" for name, value in headers.items()]
    if shown is not None:
        details.append(f"           body {shown}")
    return HttpRequest(method, unquote(target.path), query, headers, body), details


def _claims(args: argparse.Namespace) -> dict[str, Any]:
    if args.token is not None:
        return _jwt_claims(_text_or_file(args.token, "--token"))
    return _json_object(_text_or_file(args.claims, "--claims"), "--claims")


def cmd_policy_check(args: argparse.Namespace, out: TextIO) -> int:
    from resource_api.bank.app import acr_order_from_config
    from resource_api.policy import Policy, explain

    from .cli import sandbox_config
    from .config import load_config

    config = load_config(args.config) if args.config else sandbox_config()
    policy = Policy.from_settings(
        config.api.routes, config.api.rules, acr_order_from_config(config)
    )
    try:
        request, details = _request(args)
        claims = _claims(args)
    except _InputError as exc:
        sys.stderr.write(f"stepup policy check: {exc}\n")
        return 1
    now = args.now if args.now is not None else time.time()
    # The decision is printed in full below; the engine's own warning would say it twice.
    engine_log = logging.getLogger("resource_api.policy")
    was_disabled, engine_log.disabled = engine_log.disabled, True
    try:
        decision = policy.evaluate(request, claims, now)
    finally:
        engine_log.disabled = was_disabled
    source = args.config or "built-in sandbox config"
    out.write(
        f"Policy     {source}: {len(policy.rules)} rules (routes first, then [[api.rules]])\n"
    )
    if args.token is not None:
        out.write("           (the token's claims are read without checking its signature)\n")
    out.write(explain(decision, details=details) + "\n")
    return 0


def add_policy_parser(sub: Any) -> None:
    """Register ``stepup policy check`` on the ``stepup`` command's subparsers."""
    policy = sub.add_parser("policy", help="test the API's policy rules on a request")
    commands = policy.add_subparsers(dest="policy_command", required=True)
    p = commands.add_parser(
        "check",
        help="print what the policy decides for a request and a token, and why",
        description=(
            "Evaluate the config's [[api.routes]] and [[api.rules]] as the API does, and print "
            "the decision the way PingAuthorize's policy tester does: the request and the token, "
            "every rule and how it fared, the combined requirement, the token checked against "
            "it, and the answer. The token's claims are read without checking its signature. "
            "Exit 0 when a decision was printed, 1 for bad input, 2 for a bad config."
        ),
    )
    p.add_argument("--config", help="TOML config file (default: built-in sandbox config)")
    p.add_argument("--request", required=True, help="'METHOD /path?query', e.g. 'POST /transfers'")
    p.add_argument(
        "--header", action="append", default=[], help="'Name: value' (repeat for several)"
    )
    p.add_argument("--body", help="the JSON body, or @FILE")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--token", help="an access token (JWT), or @FILE; signature not checked")
    who.add_argument("--claims", help="the token's claims as a JSON object, or @FILE")
    p.add_argument(
        "--now", type=float, help="the time, seconds since the epoch (default: the clock)"
    )
    p.set_defaults(func=cmd_policy_check)

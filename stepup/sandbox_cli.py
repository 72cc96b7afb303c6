"""``stepup clock``, ``stepup token``, ``stepup fault``: a running sandbox's time, tokens and
faults, from a shell.

    stepup clock show                 the sandbox's time
    stepup clock advance 10m          move it forward (90s, 10m, 2h, 1d, or plain seconds)
    stepup clock set 1767225600       put it at an epoch time
    stepup token --user alice --acr urn:stepup:loa:2 --auth-time -2h   a signed access token
    stepup fault cancel alice         alice's next login is cancelled (also refuse, unmet; --count)
    stepup fault down 30s             every endpoint but /sandbox/* answers 503 for 30 s
    stepup fault list | clear         the armed faults; disarm them all
    stepup approve alice              approve alice's oldest pending CIBA request (--request ID)
    stepup deny alice                 deny it

Both talk to the sandbox over HTTP (``/sandbox/clock``, ``/sandbox/token``; contracts 8 and 11)
rather than opening its database: the sandbox's clock may have been moved and only the running
process knows by how much (``--auth-time -2h`` means two hours before *its* now); the token is
signed with the keys the running provider publishes and recorded where introspection finds it;
and a provider not in sandbox mode refuses (404), so these commands cannot mint tokens for a
real deployment even when its database is at hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, TextIO
from urllib.parse import quote

__all__ = ["add_sandbox_commands", "duration", "negative_values"]

DEFAULT_ISSUER = "http://127.0.0.1:9000"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([+-]?)([0-9]{1,9})([smhd]?)")


class SandboxUnreachable(Exception):
    pass


def duration(text: str) -> int:
    """``90s``, ``10m``, ``2h``, ``1d`` or plain seconds, optionally signed: seconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds or a number with s, m, h or d (10m, 2h)"
        )
    sign, number, unit = m.groups()
    seconds = int(number) * _UNITS[unit or "s"]
    return -seconds if sign == "-" else seconds


def negative_values(argv: list[str]) -> list[str]:
    """argparse reads ``-2h`` as an option: ``--auth-time -2h`` becomes ``--auth-time=-2h``, and
    in ``clock advance -10m`` the value gets a leading space, which argparse does not take for
    an option's dash (:func:`duration` ignores it). (A ``--`` would not do: argparse has already
    given the optional positional its empty value when it meets one after other options.)"""
    fixed: list[str] = []
    for i, arg in enumerate(argv):
        previous = argv[i - 1] if i else ""
        if previous == "--auth-time" and _DURATION.fullmatch(arg):
            fixed[-1] = f"--auth-time={arg}"
        elif previous == "advance" and arg.startswith("-") and _DURATION.fullmatch(arg):
            fixed.append(f" {arg}")
        else:
            fixed.append(arg)
    return fixed


def _auth_time(text: str) -> tuple[str, int]:
    """``--auth-time``: an epoch time (``1767225600``) or a signed duration before now (``-2h``)."""
    if text.startswith("-"):
        return "ago", -duration(text)
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return "epoch", int(text)
    raise argparse.ArgumentTypeError(
        f"{text!r}: give an epoch time (1767225600) or how long ago, with a minus sign (-2h)"
    )


def _issuer(args: argparse.Namespace) -> str:
    if args.issuer:
        return str(args.issuer).rstrip("/")
    if args.config:
        from .config import load_config

        return load_config(args.config).issuer.rstrip("/")
    return DEFAULT_ISSUER


def _call(issuer: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import requests

    url = f"{issuer}{path}"
    try:
        response = requests.request(method, url, json=body, timeout=30)
    except requests.RequestException:
        raise SandboxUnreachable(
            f"no sandbox answers at {issuer} (start one with `stepup sandbox`, or pass --issuer)"
        ) from None
    if response.status_code == 404:
        raise SandboxUnreachable(
            f"{issuer} is not a sandbox: {path} is only served with [provider] sandbox = true"
        )
    try:
        answer = response.json()
    except ValueError:
        raise SandboxUnreachable(f"{url} answered {response.status_code}, not JSON") from None
    if response.status_code != 200:
        raise SandboxUnreachable(str(answer.get("error_description") or answer))
    return answer


def _show_time(answer: dict[str, Any], out: TextIO) -> None:
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(answer["now"]))
    offset = answer["offset"]
    moved = f" ({offset:+d} s from the real clock)" if offset else " (the real time)"
    out.write(f"Sandbox time: {when}, epoch {answer['now']}{moved}\n")


def cmd_clock(args: argparse.Namespace, out: TextIO) -> int:
    issuer = _issuer(args)
    if args.action != "show" and args.value is None:
        sys.stderr.write(f"stepup clock: {args.action} needs a value (advance 10m, set EPOCH)\n")
        return 2
    try:
        if args.action == "show":
            answer = _call(issuer, "GET", "/sandbox/clock")
        elif args.action == "advance":
            answer = _call(issuer, "POST", "/sandbox/clock", {"advance": duration(args.value)})
        else:
            answer = _call(issuer, "POST", "/sandbox/clock", {"set": _epoch(args.value)})
    except (SandboxUnreachable, argparse.ArgumentTypeError) as exc:
        sys.stderr.write(f"stepup clock: {exc}\n")
        return 1
    _show_time(answer, out)
    return 0


def _epoch(text: str | None) -> int:
    kind, value = _auth_time(text or "")
    if kind != "epoch":
        raise argparse.ArgumentTypeError(f"{text!r} is not an epoch time")
    return value


def cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    issuer = _issuer(args)
    body: dict[str, Any] = {"username": args.user, "id_token": bool(args.id_token)}
    if args.acr:
        body["acr"] = args.acr
    if args.amr:
        body["amr"] = [a for part in args.amr for a in part.replace(",", " ").split()]
    if args.scope:
        body["scope"] = args.scope
    try:
        if args.auth_time is not None:
            kind, value = args.auth_time
            if kind == "ago":
                value = int(_call(issuer, "GET", "/sandbox/clock")["now"]) - value
            body["auth_time"] = value
        answer = _call(issuer, "POST", "/sandbox/token", body)
    except SandboxUnreachable as exc:
        sys.stderr.write(f"stepup token: {exc}\n")
        return 1
    if args.json:
        out.write(json.dumps(answer, indent=2) + "\n")
        return 0
    out.write(f"{answer['access_token']}\n")
    if args.id_token:
        out.write(f"{answer['id_token']}\n")
    return 0


def _show_faults(answer: dict[str, Any], out: TextIO) -> None:
    down = answer["down"]
    if down:
        out.write(f"The provider is down for {down['retry_after']} more s of sandbox time.\n")
    for f in answer["faults"]:
        logins = "login" if f["count"] == 1 else f"{f['count']} logins"
        out.write(f"{f['fault']}: {f['user']}'s next {logins}\n")
    if not down and not answer["faults"]:
        out.write("No fault is armed.\n")


def cmd_fault(args: argparse.Namespace, out: TextIO) -> int:
    issuer = _issuer(args)
    body: dict[str, Any] | None = None
    try:
        if args.action in ("list", "clear"):
            if args.target is not None:
                raise argparse.ArgumentTypeError(f"{args.action} takes no argument")
        elif args.action == "down":
            if args.target is None:
                raise argparse.ArgumentTypeError("down needs how long: 30s, 2m")
            body = {"fault": "down", "seconds": duration(args.target)}
        else:
            if args.target is None:
                raise argparse.ArgumentTypeError(f"{args.action} needs a username")
            body = {"fault": args.action, "user": args.target, "count": args.count}
    except argparse.ArgumentTypeError as exc:
        sys.stderr.write(f"stepup fault: {exc}\n")
        return 2
    method = {"list": "GET", "clear": "DELETE"}.get(args.action, "POST")
    try:
        answer = _call(issuer, method, "/sandbox/faults", body)
    except SandboxUnreachable as exc:
        sys.stderr.write(f"stepup fault: {exc}\n")
        return 1
    _show_faults(answer, out)
    return 0


def cmd_decide(args: argparse.Namespace, out: TextIO) -> int:
    """``stepup approve USER`` / ``stepup deny USER``: what the user's phone would do
    (``POST /sandbox/device/<user>/approve|deny``; contract 14)."""
    issuer = _issuer(args)
    body: dict[str, Any] = {} if args.request is None else {"request": args.request}
    try:
        answer = _call(
            issuer, "POST", f"/sandbox/device/{quote(args.user, safe='')}/{args.action}", body
        )
    except SandboxUnreachable as exc:
        sys.stderr.write(f"stepup {args.action}: {exc}\n")
        return 1
    verb = "Approved" if answer["outcome"] == "approved" else "Denied"
    line = f"{verb} request {answer['request']} of {answer['client_id']} for {answer['user']}"
    if answer.get("binding_message"):
        line += f": {answer['binding_message']!r}"
    out.write(line + "\n")
    for entry in answer.get("authorization_details") or ():
        out.write(f"  {entry['type']}: {json.dumps(entry, sort_keys=True)}\n")
    return 0


def add_sandbox_commands(sub: Any) -> None:
    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--issuer", help=f"the sandbox's issuer URL (default: {DEFAULT_ISSUER})")
        p.add_argument("--config", help="take the issuer from this TOML config file")

    p = sub.add_parser("clock", help="show or move a running sandbox's clock")
    target(p)
    p.add_argument("action", choices=["show", "advance", "set"])
    p.add_argument("value", nargs="?", help="advance: 90s, 10m, 2h, 1d; set: an epoch time")
    p.set_defaults(func=cmd_clock)

    p = sub.add_parser("token", help="mint a signed access token with chosen claims (sandbox)")
    target(p)
    p.add_argument("--user", required=True, help="a seeded username")
    p.add_argument("--acr", help="the level (default: the weakest); an alias works too")
    p.add_argument(
        "--amr", action="append", help="factors, comma-separated (default: the level's factors)"
    )
    p.add_argument(
        "--auth-time",
        type=_auth_time,
        help="when the user authenticated: epoch seconds, or -2h for two hours before "
        "the sandbox's now (default: now)",
    )
    p.add_argument("--scope", help="default: openid")
    p.add_argument("--id-token", action="store_true", help="print the ID token on a second line")
    p.add_argument("--json", action="store_true", help="print the whole token response")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("fault", help="make a running sandbox fail on purpose (negative paths)")
    target(p)
    p.add_argument("action", choices=["cancel", "refuse", "unmet", "down", "list", "clear"])
    p.add_argument("target", nargs="?", help="cancel/refuse/unmet: a username; down: 30s, 2m")
    p.add_argument("--count", type=int, default=1, help="how many of the user's next logins")
    p.set_defaults(func=cmd_fault)

    for action, verb in (("approve", "approve"), ("deny", "deny")):
        p = sub.add_parser(
            action, help=f"{verb} a user's oldest pending CIBA request, as their phone would"
        )
        target(p)
        p.set_defaults(action=action)
        p.add_argument("user", help="a seeded username")
        p.add_argument("--request", type=int, help="the request's id (default: the oldest)")
        p.set_defaults(func=cmd_decide)

"""A policy decision in words, the way PingAuthorize's policy tester shows one: the request and the
token, each rule and how it fared, the combined requirement, the token checked against it, and the
decision with the response it gives.

What ``stepup policy check`` prints, and what the engine logs at debug level. Pure: no Flask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..authorization_details import covers
from ..challenges import bearer_challenge
from ..step_up import AcrOrder, Allow, AuthContext, Challenge, InsufficientScope, Requirement
from .engine import Denied, PolicyDecision, Refused, RuleOutcome
from .rules import Deny, describe_requirement

__all__ = ["explain", "explain_token", "response_lines"]

_WIDTH = 16  # the status column


def _one_line(source: str) -> str:
    return " ".join(source.split())


def _rule_lines(o: RuleOutcome) -> list[str]:
    rule = o.rule
    label = {
        "applied": "applies",
        "false": "not applicable",
        "not_matched": "not applicable",
        "failed": "FAILED",
    }[o.status]
    pad = " " * (2 + _WIDTH)
    lines = [f"  {label:<{_WIDTH}}{rule.name}"]
    if rule.condition is not None and o.status != "not_matched":
        lines.append(f"{pad}when: {_one_line(rule.condition.source)}")
    if o.status == "not_matched":
        lines.append(pad + (o.error or "its match does not hold"))
    elif o.status == "false":
        lines.append(f"{pad}the condition is false")
    elif o.status == "failed":
        what = "the condition failed" if rule.condition is not None else "it failed"
        lines.append(f"{pad}{what}: {o.error}")
        lines.append(f"{pad}fails closed: the request is refused")
    else:
        lead = f"{pad}the condition is true; it " if rule.condition is not None else f"{pad}"
        if isinstance(o.effect, Deny):
            lines.append(f"{lead}denies: {o.effect.reason}")
        elif isinstance(o.effect, Requirement):
            lines.append(f"{lead}requires {describe_requirement(o.effect)}")
        else:
            lines.append(f"{pad}its Python code adds nothing for this request")
    return lines


def _token_lines(ctx: AuthContext) -> list[str]:
    acr = ctx.authentication_policy or "none"
    amr = " ".join(ctx.amr) or "none"
    sub = ctx.claims.get("sub")
    lines = [f"Token      sub {sub if isinstance(sub, str) else 'none'}, "
             f"client {ctx.client_id or 'none'}, scope {' '.join(sorted(ctx.scope)) or 'none'}",
             f"           acr {acr} (authentication_policy), amr {amr}"]  # fmt: skip
    t, age = ctx.authentication_time, ctx.authentication_age
    if t is None or age is None or not math.isfinite(age):
        lines.append("           no auth_time: authentication_time and authentication_age are null")
    else:
        lines.append(
            f"           auth_time {t:.0f}, {math.floor(age)} seconds before now "
            "(authentication_age)"
        )
    return lines


def explain_token(context: AuthContext, requirement: Requirement, order: AcrOrder) -> list[str]:
    """Why the token does or does not meet ``requirement``, one line per part."""
    if requirement == Requirement():
        return ["no rule asks for a step-up: any valid token will do"]
    lines: list[str] = []
    if requirement.scope:
        missing = [s for s in requirement.scope if s not in context.scope]
        if missing:
            lines.append(f"no  scope lacks {' '.join(missing)}")
        else:
            lines.append(f"ok  scope has {' '.join(requirement.scope)}")
    if requirement.acr_values:
        wanted = " or ".join(requirement.acr_values)
        acr = context.authentication_policy
        if acr is None:
            lines.append(f"no  acr: the token has none; {wanted} is needed")
        elif order.satisfies(acr, requirement.acr_values):
            lines.append(f"ok  acr {acr} meets {wanted}")
        else:
            lines.append(f"no  acr {acr} does not meet {wanted}")
    if requirement.max_age is not None:
        age = context.authentication_age
        if age is None:
            lines.append(
                f"no  auth_time: the token has none; a login within {requirement.max_age} "
                "seconds is needed"
            )
        elif math.floor(age) > requirement.max_age:
            lines.append(
                f"no  last login {math.floor(age)} seconds ago: more than max_age "
                f"{requirement.max_age}"
            )
        else:
            lines.append(
                f"ok  last login {math.floor(age)} seconds ago: within max_age "
                f"{requirement.max_age}"
            )
    if requirement.authorization_details:
        if covers(context.claims.get("authorization_details"), requirement.authorization_details):
            lines.append("ok  authorization_details: the token's approval covers this transaction")
        else:
            lines.append(
                "no  authorization_details: the token's approval (if any) does not cover this "
                "transaction"
            )
    return lines


def response_lines(decision: PolicyDecision) -> list[str]:
    """The decision and the HTTP answer it gives."""
    out = decision.outcome
    if isinstance(out, Allow):
        return ["Decision   allow: the request goes on to the API"]
    if isinstance(out, Challenge):
        header = bearer_challenge(
            error=out.error, error_description=out.description, acr_values=out.acr_values,
            max_age=out.max_age, authorization_details=out.authorization_details,
        )  # fmt: skip
        return [
            f"Decision   challenge: {out.status_code} {out.error}",
            f"           WWW-Authenticate: {header}",
        ]
    if isinstance(out, InsufficientScope):
        header = bearer_challenge(
            error=out.error, error_description=out.description, scope=out.scope
        )
        return [
            f"Decision   refuse: {out.status_code} {out.error}",
            f"           WWW-Authenticate: {header}",
        ]
    if isinstance(out, Denied):
        return [f"Decision   deny: {out.status_code} {out.error} (rule '{out.rule}': "
                f"{out.description})"]  # fmt: skip
    assert isinstance(out, Refused)
    return [
        f"Decision   refuse (fails closed): {out.status_code} {out.error}",
        f"           {out.reason}",
    ]


def explain(decision: PolicyDecision, *, details: Sequence[str] = ()) -> str:
    """The whole decision, several lines, no trailing newline. ``details``: lines to show under
    the request (its headers and body, when the caller wants them shown — never in logs)."""
    lines = [
        f"Request    {decision.method} {decision.path}",
        *details,
        *_token_lines(decision.context),
        "",
    ]
    outcomes = decision.all_outcomes()
    lines.append("Rules, in order:" if outcomes else "Rules: none")
    for o in outcomes:
        lines.extend(_rule_lines(o))
    lines.append("")
    out = decision.outcome
    if isinstance(out, Denied | Refused):
        lines.append("Requirement: not combined (the request is refused)")
    else:
        lines.append(f"Requirement  {describe_requirement(decision.requirement)}")
        lines.extend(
            "  " + line
            for line in explain_token(decision.context, decision.requirement, decision.order)
        )
    lines.append("")
    lines.extend(response_lines(decision))
    return "\n".join(lines)

"""``[[api.rules]]`` in the config file, ``stepup policy check``, and a bad rule at start."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stepup.cli import main
from stepup.config import ConfigError, RuleConfig, load_config, parse_config

SANDBOX = Path(__file__).parent.parent / "stepup" / "sandbox.toml"
NOW = "1700000000"
LARGE = "transfers above 1,000.00 need the approval of that transfer"
PAYMENT = '{"amount":"1500.00","currency":"EUR","payee":"b","type":"payment"}'


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def config_with(rules: str) -> str:
    return SANDBOX.read_text() + rules


# --- the config file ---------------------------------------------------------------------------


def test_the_sandbox_config_has_the_large_transfer_rule() -> None:
    assert load_config(SANDBOX).api.rules == (
        RuleConfig(
            name=LARGE, methods=("POST",), path="/transfers",
            when="  type(request.body) == map && has(request.body.amount)\n"
                 "  && type(request.body.amount) in [double, string]\n"
                 "  && double(request.body.amount) > 1000.0 && double(request.body.amount) <= "
                 "1000000.0\n"
                 "  && has(request.body.to_account) && type(request.body.to_account) == string\n",
            max_age=300,
            authorization_details='  {"type": "payment", "amount": request.body.amount,\n'
                                  '   "currency": request.body.?currency.orValue("EUR"), '
                                  '"payee": request.body.to_account}\n',
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ('name = "x"\nwhen = "request.body.amount >"\nmax_age = 1',
         "api.rules[1] ('x').when: line 1, column 22: Syntax error: mismatched input '<EOF>'"),
        ('name = "x"\nwhen = """\nsub == "a" &&\n  authentication_agee > 5"""\nmax_age = 1',
         "api.rules[1] ('x').when: line 2, column 3: undeclared reference to "
         "'authentication_agee'"),
        ('name = "x"\nmax_age = 1\nmax_ag = 2', "api.rules[1]: unknown key(s) max_ag"),
        ('name = "x"\nmethods = []\nmax_age = 1',
         "api.rules[1] ('x').methods: leave it out to match every method"),
        ('name = "x"\npath = "transfers"\nmax_age = 1', "api.rules[1] ('x').path: must start"),
        ('name = "x"', "api.rules[1] ('x').effect: give acr_values and/or max_age"),
        (f'name = "{LARGE}"\nmax_age = 1', "api.rules.name: '" + LARGE + "' appears twice"),
        ('max_age = 1', "api.rules[1].name: required, a non-empty string"),
    ],
)  # fmt: skip
def test_a_bad_rule_names_the_file_the_rule_and_the_position(
    tmp_path: Path, rule: str, error: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config_with(f"\n[[api.rules]]\n{rule}\n"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}: {error}")


def test_rules_are_optional() -> None:
    text = SANDBOX.read_text()
    without = text[: text.index("# Policy rules")]
    assert parse_config(tomllib.loads(without)).api.rules == ()


def test_stepup_api_with_a_bad_rule_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config_with('\n[[api.rules]]\nname = "typo"\nwhen = "request.bdy.x == 1"\n'
                                'max_age = 1\n'))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "stepup.cli", "api", "--config", str(path), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"stepup: configuration error: {path}: api.rules[1] ('typo').when: line 1, column 12: "
        "undeclared reference to 'request.bdy.x'\n"
    )


def test_stepup_api_with_a_rule_on_no_endpoint_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config_with('\n[[api.rules]]\nname = "typo"\npath = "/transfer"\n'
                                'max_age = 1\n'))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "stepup.cli", "api", "--config", str(path), "--port", "0",
         "--database", f"sqlite:///{tmp_path}/db.sqlite"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        f"stepup: configuration error: {path}: these configured routes match no endpoint of the "
        "API: rule 'typo' (/transfer)\n"
    )


# --- stepup policy check -----------------------------------------------------------------------

ALICE = {
    "sub": "alice", "client_id": "bank-cli", "scope": "openid profile", "acr": "urn:stepup:loa:2",
    "amr": ["pwd", "otp", "mfa"], "auth_time": 1699999400,
}  # fmt: skip


def test_policy_check_explains_a_challenge() -> None:
    code, out = run(
        "policy", "check", "--config", str(SANDBOX), "--request", "POST /transfers",
        "--header", "X-Request-Id: 7", "--body", '{"from_account": "a", "to_account": "b", '
        '"amount": "1500.00"}', "--claims", json.dumps(ALICE), "--now", NOW,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines() == [
        f"Policy     {SANDBOX}: 3 rules (routes first, then [[api.rules]])",
        "Request    POST /transfers",
        "           x-request-id: 7",
        "           content-type: application/json",
        '           body {"from_account": "a", "to_account": "b", "amount": "1500.00"}',
        "Token      sub alice, client bank-cli, scope openid profile",
        "           acr urn:stepup:loa:2 (authentication_policy), amr pwd otp mfa",
        "           auth_time 1699999400, 600 seconds before now (authentication_age)",
        "",
        "Rules, in order:",
        "  applies         route POST /transfers",
        "                  requires acr urn:stepup:loa:2, max_age 3600",
        "  not applicable  route PUT /profile/email",
        "                  method POST is not PUT",
        f"  applies         {LARGE}",
        "                  when: type(request.body) == map && has(request.body.amount) && "
        "type(request.body.amount) in [double, string] && double(request.body.amount) > 1000.0 "
        "&& double(request.body.amount) <= 1000000.0 && has(request.body.to_account) && "
        "type(request.body.to_account) == string",
        "                  the condition is true; it requires max_age 300, authorization_details "
        f"[{PAYMENT}]",
        "",
        f"Requirement  acr urn:stepup:loa:2, max_age 300, authorization_details [{PAYMENT}]",
        "  ok  acr urn:stepup:loa:2 meets urn:stepup:loa:2",
        "  no  last login 600 seconds ago: more than max_age 300",
        "  no  authorization_details: the token's approval (if any) does not cover this "
        "transaction",
        "",
        "Decision   challenge: 401 insufficient_user_authentication",
        '           WWW-Authenticate: Bearer error="insufficient_user_authentication", '
        'error_description="this request needs a login within the last 300 seconds; the '
        "user's last login was 600 seconds ago; this request needs the user's approval of this "
        "very transaction; the token's authorization_details do not cover it\", "
        'acr_values="urn:stepup:loa:2", max_age=300, authorization_details="'
        + base64.urlsafe_b64encode(f"[{PAYMENT}]".encode()).rstrip(b"=").decode()
        + '"',
    ]


def test_policy_check_reads_a_token_and_files(tmp_path: Path) -> None:
    payload = base64.urlsafe_b64encode(json.dumps(ALICE).encode()).rstrip(b"=").decode()
    (tmp_path / "token").write_text(f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln\n")
    (tmp_path / "body.json").write_text('{"from_account": "a", "to_account": "b", "amount": 5}')
    code, out = run(
        "policy", "check", "--request", "POST /transfers", "--body", f"@{tmp_path}/body.json",
        "--token", f"@{tmp_path}/token", "--now", NOW,
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [
        "Policy     built-in sandbox config: 3 rules (routes first, then [[api.rules]])",
        "           (the token's claims are read without checking its signature)",
    ]
    assert lines[-6:] == [
        "",
        "Requirement  acr urn:stepup:loa:2, max_age 3600",
        "  ok  acr urn:stepup:loa:2 meets urn:stepup:loa:2",
        "  ok  last login 600 seconds ago: within max_age 3600",
        "",
        "Decision   allow: the request goes on to the API",
    ]


def test_policy_check_shows_a_failed_condition_and_a_deny(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(config_with(
        '\n[[api.rules]]\nname = "only people transfer"\nmethods = ["POST"]\n'
        'when = "client_id == \'reports-job\'"\ndeny = "machines may not move money"\n'
    ))  # fmt: skip
    code, out = run(
        "policy", "check", "--config", str(path), "--request", "POST /transfers",
        "--body", '{"amount": "1,5", "to_account": "b"}', "--claims", json.dumps(ALICE),
        "--now", NOW,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[13:] == [
        f"  FAILED          {LARGE}",
        "                  when: type(request.body) == map && has(request.body.amount) && "
        "type(request.body.amount) in [double, string] && double(request.body.amount) > 1000.0 "
        "&& double(request.body.amount) <= 1000000.0 && has(request.body.to_account) && "
        "type(request.body.to_account) == string",
        "                  the condition failed: cannot convert string to double",
        "                  fails closed: the request is refused",
        "  not applicable  only people transfer",
        "                  when: client_id == 'reports-job'",
        "                  the condition is false",
        "",
        "Requirement: not combined (the request is refused)",
        "",
        "Decision   refuse (fails closed): 403 access_denied",
        f"           rule '{LARGE}' could not be evaluated: cannot convert string to double",
    ]
    code, out = run(
        "policy", "check", "--config", str(path), "--request", "POST /transfers",
        "--body", '{"amount": "1.5"}', "--now", NOW,
        "--claims", json.dumps({**ALICE, "client_id": "reports-job"}),
    )  # fmt: skip
    assert out.splitlines()[-1] == (
        "Decision   deny: 403 access_denied (rule 'only people transfer': machines may not move "
        "money)"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--request", "POST", "--claims", "{}"],
         "--request: write it as 'METHOD /path?query', e.g. 'POST /transfers'"),
        (["--request", "GET /", "--claims", "[]"], "--claims: must be a JSON object"),
        (["--request", "GET /", "--token", "abc"],
         "--token: not a JWT (three base64url parts separated by dots)"),
        (["--request", "GET /", "--claims", "{}", "--header", "nocolon"],
         "--header: write it as 'Name: value', not 'nocolon'"),
        (["--request", "POST /transfers", "--claims", "{}", "--body", "{oops"],
         "--body: not valid JSON"),
    ],
)  # fmt: skip
def test_policy_check_says_what_input_is_wrong(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("policy", "check", *args)
    assert (code, out) == (1, "")
    assert capsys.readouterr().err == f"stepup policy check: {error}\n"


# --- the worked examples of docs/policies.md ---------------------------------------------------


def test_the_worked_examples_in_the_docs_compile_and_decide_as_described(tmp_path: Path) -> None:
    from resource_api.bank.app import acr_order_from_config
    from resource_api.policy import Denied, HttpRequest, Policy
    from resource_api.step_up import Allow, Challenge

    docs = (Path(__file__).parent.parent / "docs" / "policies.md").read_text()
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", docs, re.S) if "[[api.rules]]" in b]
    assert len(blocks) == 6
    sandbox = SANDBOX.read_text()
    path = tmp_path / "examples.toml"
    path.write_text(sandbox[: sandbox.index("# Policy rules")] + "\n".join(blocks))
    config = load_config(path)
    policy = Policy.from_settings(
        config.api.routes, config.api.rules, acr_order_from_config(config)
    )
    now = 1_700_000_000
    alice = {**ALICE, "auth_time": now - 100}

    def decide(request: HttpRequest, **claims: object) -> object:
        return policy.evaluate(request, {**alice, **claims}, now).outcome

    risky_large = HttpRequest("POST", "/transfers", headers={"X-Risk": "HIGH"},
                              body={"amount": "2000"})  # fmt: skip
    outcome = decide(risky_large)
    assert isinstance(outcome, Challenge)
    assert (outcome.acr_values, outcome.max_age) == (("urn:stepup:loa:2",), 60)
    history = HttpRequest("GET", "/accounts/acc_1/transactions")
    outcome = decide(history, acr="urn:stepup:loa:1", amr=["pwd"], auth_time=now - 601)
    assert isinstance(outcome, Challenge)
    assert (outcome.acr_values, outcome.max_age) == (("urn:stepup:loa:2",), None)
    small = HttpRequest("POST", "/transfers", body={"amount": 5})
    assert decide(small, client_id="bank-web", acr="urn:stepup:loa:1") == Denied(
        "the web client never moves money on a password-only login",
        "log in with your one-time code to move money from the web client",
    )
    assert decide(small, client_id="reports-job") == Denied(
        "the reports job only reads", "the reports job may only read"
    )
    assert decide(HttpRequest("GET", "/accounts"), client_id="reports-job") == Allow()

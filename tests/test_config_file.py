"""The configuration file contract (DESIGN.md, contract 3): strict parsing, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepup.config import ConfigError, load_config, parse_config

MINIMAL = """
issuer = "http://127.0.0.1:9000"
[[acr_levels]]
value = "urn:stepup:loa:1"
factors = ["pwd"]
[[acr_levels]]
value = "urn:stepup:loa:2"
factors = ["pwd", "otp"]
[[users]]
username = "alice"
password = "s3cret"
totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
[[clients]]
client_id = "bank-cli"
redirect_uris = ["http://127.0.0.1:8765/callback"]
[api]
audience = "https://bank.example/api"
[[api.routes]]
method = "POST"
path = "/transfers"
acr_values = ["urn:stepup:loa:2"]
max_age = 300
"""


def test_the_contract_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "stepup.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.issuer == "http://127.0.0.1:9000"
    assert [lv.value for lv in config.acr_levels] == ["urn:stepup:loa:1", "urn:stepup:loa:2"]
    assert config.acr_levels[1].factors == ("pwd", "otp")
    assert config.users[0].totp_secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert config.clients[0].is_confidential is False
    route = config.api.routes[0]
    assert (route.method, route.path, route.acr_values, route.max_age) == (
        "POST",
        "/transfers",
        ("urn:stepup:loa:2",),
        300,
    )
    assert config.api_issuer == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("max_age = 300", "max_ag = 300"), "unknown key(s) max_ag"),
        (("max_age = 300", "max_age = -1"), "max_age: must be an integer >= 0"),
        (("max_age = 300", 'max_age = "300"'), "max_age: must be an integer >= 0"),
        (('factors = ["pwd"]', 'factors = ["sms"]'), "unknown factor 'sms'"),
        (
            ('factors = ["pwd"]', 'factors = ["otp"]'),
            "every level needs the password factor 'pwd' or a 'passkey'",
        ),
        (('factors = ["pwd"]', 'factors = ["pwd", "uv"]'), "uv qualifies a passkey: add 'passkey'"),
        (('issuer = "http://127.0.0.1:9000"', ""), "issuer: required"),
        (
            ('totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"', 'totp_secret = "not base32!"'),
            "totp_secret: not valid base32",
        ),
        (
            ('totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"', 'totp_secret = "JBSWY3DP"'),
            "too short",
        ),
        (
            ('redirect_uris = ["http://127.0.0.1:8765/callback"]', ""),
            "the authorization_code grant needs at least one",
        ),
        (('path = "/transfers"', 'path = "transfers"'), "path: must start with '/'"),
        (('value = "urn:stepup:loa:2"', 'value = "urn:stepup:loa:1"'), "appears twice"),
    ],
)
def test_invalid_files_name_the_key_and_the_fix(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace(*change, 1))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert message in str(excinfo.value)


def test_not_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("issuer = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_client_credentials_needs_a_secret() -> None:
    data = {
        "issuer": "http://x",
        "acr_levels": [{"value": "a", "factors": ["pwd"]}],
        "clients": [{"client_id": "job", "grant_types": ["client_credentials"]}],
    }
    with pytest.raises(ConfigError, match="client_credentials needs a client_secret"):
        parse_config(data)


def test_dpop_switches_parse_and_default_to_strict() -> None:
    data: dict[str, object] = {
        "issuer": "http://x",
        "acr_levels": [{"value": "a", "factors": ["pwd"]}],
        "clients": [
            {"client_id": "agent", "redirect_uris": ["http://127.0.0.1/cb"],
             "dpop_bound_access_tokens": True},
            {"client_id": "cli", "redirect_uris": ["http://127.0.0.1/cb"]},
        ],
    }  # fmt: skip
    config = parse_config(data)
    assert [c.dpop_bound_access_tokens for c in config.clients] == [True, False]
    assert config.provider.dpop_require_nonce is True
    data["provider"] = {"dpop_require_nonce": False}
    assert parse_config(data).provider.dpop_require_nonce is False
    data["clients"] = [{"client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"],
                        "dpop_bound_access_tokens": "yes"}]  # fmt: skip
    with pytest.raises(ConfigError, match="dpop_bound_access_tokens"):
        parse_config(data)


def test_code_lifetime_is_capped_at_60_seconds() -> None:
    data = {
        "issuer": "http://x",
        "acr_levels": [{"value": "a", "factors": ["pwd"]}],
        "provider": {"authorization_code_lifetime": 600},
    }
    assert parse_config(data).provider.authorization_code_lifetime == 60


def test_errors_name_the_file_and_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "stepup.toml"
    path.write_text(MINIMAL.replace("max_age = 300", "max_ag = 300"))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert str(excinfo.value) == f"{path}: api.routes[0]: unknown key(s) max_ag"


def test_sandbox_client_secrets_are_at_least_32_characters() -> None:
    """Some RP libraries refuse shorter client secrets; the sandbox's must work with all of them."""
    from stepup.cli import sandbox_config

    secrets = {c.client_id: c.client_secret for c in sandbox_config().clients if c.client_secret}
    confidential = {"back-office", "bank-payments", "bank-web", "reports-job"}
    assert set(secrets) == confidential
    assert {k: len(v) >= 32 for k, v in secrets.items()} == dict.fromkeys(confidential, True)


RULE = """
[[api.rules]]
name = "large transfers"
path = "/transfers"
when = "double(request.body.amount) > 1000.0"
acr_values = ["urn:stepup:loa:2"]
"""


@pytest.mark.parametrize(("rules", "loaded"), [("", False), (RULE, True)])
def test_reading_a_config_imports_the_policy_engine_only_for_its_rules(
    tmp_path: Path, rules: str, loaded: bool
) -> None:
    """``stepup provider`` reads the whole file, [api] included, and catches the libraries'
    ``ConfigurationError``: neither may import the CEL engine, nor joserfc with the rest of
    ``resource_api``, when there is no rule to compile (issue 11, start-up). A rule is still
    compiled as the file is read, so a bad one stops the program at start."""
    import subprocess
    import sys

    path = tmp_path / "stepup.toml"
    path.write_text(MINIMAL + rules)
    code = (
        "import sys\n"
        "from resource_api.errors import ConfigurationError\n"
        "from stepup.config import load_config\n"
        f"config = load_config({str(path)!r})\n"
        "print(len(config.api.rules), 'cel_expr_python' in sys.modules, 'joserfc' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [str(int(loaded)), str(loaded), "False"]

"""The configuration file: one TOML file describes the whole stack.

The keys below are a contract (DESIGN.md, "Contracts" §3): programs outside this repository
write these files, so a key once published keeps its meaning. Parsing is strict — an unknown key
or a value of the wrong type is a :class:`ConfigError` that names the key — because a typo in a
security setting (``max_ag = 300``) must not silently turn a requirement off.

The provider reads ``issuer``, ``acr_levels``, ``users``, ``clients`` and ``provider``; the demo API
reads ``api`` (and ``issuer`` as the default issuer it trusts). The value types belong to the
libraries (``provider.settings``, ``resource_api.settings``; re-exported here): each part receives
only plain frozen values, and neither library imports this package.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.ciba_request import GRANT_TYPE as CIBA_GRANT_TYPE
from provider.settings import (
    SANDBOX_ONLY,
    AcrLevelConfig,
    ClientConfig,
    ProviderSettings,
    SettingsError,
    UserConfig,
)
from resource_api.settings import ApiConfig, RouteConfig, RuleConfig

__all__ = [
    "AcrLevelConfig",
    "ApiConfig",
    "ClientConfig",
    "ConfigError",
    "ProviderSettings",
    "RouteConfig",
    "RuleConfig",
    "StepupConfig",
    "UserConfig",
    "load_config",
    "parse_config",
]

KNOWN_FACTORS = ("pwd", "otp", "passkey", "hwk", "uv")


class ConfigError(SettingsError):
    """The configuration file is invalid; the message names the key and what to fix."""


@dataclass(frozen=True)
class StepupConfig:
    issuer: str
    acr_levels: tuple[AcrLevelConfig, ...]
    users: tuple[UserConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    api: ApiConfig = field(default_factory=ApiConfig)
    provider: ProviderSettings = field(default_factory=ProviderSettings)

    @property
    def api_issuer(self) -> str:
        return self.api.issuer or self.issuer

    @property
    def access_token_audience(self) -> str:
        return self.api.audience


def load_config(path: str | Path) -> StepupConfig:
    """Read and validate a TOML configuration file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, source=str(p))


def parse_config(data: Mapping[str, Any], *, source: str = "config") -> StepupConfig:
    """Validate an already-parsed TOML document; errors read ``SOURCE: key.path: problem``."""
    try:
        return _parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _parse(data: Mapping[str, Any]) -> StepupConfig:
    r = _Reader(data, "")
    issuer = r.string("issuer").rstrip("/")
    levels = tuple(_level(t) for t in r.tables("acr_levels", required=True))
    users = tuple(_user(t) for t in r.tables("users"))
    clients = tuple(_client(t) for t in r.tables("clients"))
    api = _api(r.table("api")) if "api" in data else ApiConfig()
    provider = _provider(r.table("provider")) if "provider" in data else ProviderSettings()
    r.done()
    _check_unique("acr_levels", [v for lv in levels for v in (lv.value, *lv.aliases)])
    _check_unique("users.username", [u.username for u in users])
    _check_unique("clients.client_id", [c.client_id for c in clients])
    return StepupConfig(issuer, levels, users, clients, api, provider)


def _level(r: _Reader) -> AcrLevelConfig:
    factors = tuple(r.strings("factors"))
    for f in factors:
        if f not in KNOWN_FACTORS:
            known = ", ".join(KNOWN_FACTORS)
            raise ConfigError(f"{r.where}.factors: unknown factor {f!r} (known: {known})")
    if "pwd" not in factors and "passkey" not in factors:
        # The first factor says who the user is: a username and password, or a passkey (whose
        # user handle names its owner). A one-time code alone names nobody.
        raise ConfigError(
            f"{r.where}.factors: every level needs the password factor 'pwd' or a 'passkey'"
        )
    qualifiers = sorted({"hwk", "uv"} & set(factors))
    if qualifiers and "passkey" not in factors:
        raise ConfigError(
            f"{r.where}.factors: {', '.join(qualifiers)} qualifies a passkey: add 'passkey'"
        )
    lifetime = r.optional_int("elevation_lifetime", minimum=1)
    level = AcrLevelConfig(
        value=r.string("value"),
        factors=factors,
        aliases=tuple(r.strings("aliases", required=False)),
        elevation_lifetime=lifetime,
        description=r.optional_string("description") or "",
    )
    r.done()
    return level


def _user(r: _Reader) -> UserConfig:
    user = UserConfig(
        username=r.string("username"),
        password=r.string("password"),
        totp_secret=r.optional_string("totp_secret"),
        name=r.optional_string("name"),
        email=r.optional_string("email"),
    )
    r.done()
    if user.totp_secret is not None:
        _check_base32(f"{r.where}.totp_secret", user.totp_secret)
    return user


def _client(r: _Reader) -> ClientConfig:
    defaults = ClientConfig(client_id="")
    try:
        client = ClientConfig(
            client_id=r.string("client_id"),
            redirect_uris=tuple(r.strings("redirect_uris", required=False)),
            client_secret=r.optional_string("client_secret"),
            name=r.optional_string("name"),
            grant_types=tuple(r.strings("grant_types", required=False) or defaults.grant_types),
            scope=r.optional_string("scope") or defaults.scope,
            post_logout_redirect_uris=tuple(r.strings("post_logout_redirect_uris", required=False)),
            require_pkce=r.optional_bool("require_pkce", defaults.require_pkce),
            dpop_bound_access_tokens=r.optional_bool(
                "dpop_bound_access_tokens", defaults.dpop_bound_access_tokens
            ),
        )
    except ConfigError:
        raise
    except SettingsError as exc:  # a rule of the provider's own (public clients keep PKCE)
        raise ConfigError(f"{r.where}: {exc}") from None
    r.done()
    known = {"authorization_code", "refresh_token", "client_credentials", CIBA_GRANT_TYPE}
    for g in client.grant_types:
        if g not in known:
            raise ConfigError(f"{r.where}.grant_types: unknown grant type {g!r}")
    for g in ("client_credentials", CIBA_GRANT_TYPE):
        if g in client.grant_types and not client.is_confidential:
            raise ConfigError(f"{r.where}: {g} needs a client_secret")
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise ConfigError(
            f"{r.where}.redirect_uris: the authorization_code grant needs at least one"
        )
    return client


def _api(r: _Reader) -> ApiConfig:
    routes = []
    for t in r.tables("routes"):
        method = t.string("method").upper()
        path = t.string("path")
        if not path.startswith("/"):
            raise ConfigError(f"{t.where}.path: must start with '/'")
        routes.append(
            RouteConfig(
                method=method,
                path=path,
                acr_values=tuple(t.strings("acr_values", required=False)),
                max_age=t.optional_int("max_age", minimum=0),
                scope=tuple(t.strings("scope", required=False)),
            )
        )
        t.done()
    rules = tuple(_rule(t) for t in r.tables("rules"))
    _check_unique("api.rules.name", [rule.name for rule in rules])
    api = ApiConfig(
        audience=r.optional_string("audience") or ApiConfig.audience,
        issuer=r.optional_string("issuer"),
        routes=tuple(routes),
        rules=rules,
        acr_order=tuple(r.strings("acr_order", required=False)),
    )
    r.done()
    return api


def _rule(t: _Reader) -> RuleConfig:
    name = t.string("name")
    where = f"{t.where} ({name!r})"
    methods = tuple(m.upper() for m in t.strings("methods", required=False))
    if "methods" in t.data and not methods:
        raise ConfigError(f"{where}.methods: leave it out to match every method")
    rule = RuleConfig(
        name=name,
        methods=methods,
        path=t.optional_string("path"),
        when=t.optional_string("when"),
        acr_values=tuple(t.strings("acr_values", required=False)),
        max_age=t.optional_int("max_age", minimum=0),
        scope=tuple(t.strings("scope", required=False)),
        deny=t.optional_string("deny"),
        authorization_details=t.optional_string("authorization_details"),
    )
    t.done()
    # The CEL engine, imported only by a config that has rules (``stepup provider`` reads [api]
    # without serving it: issue 11).
    from resource_api.policy import PolicyError, Rule

    try:
        Rule.compile(rule)
    except PolicyError as exc:
        # "api.rules[1] ('big transfers').when: line 1, column 22: Syntax error: ..."
        raise ConfigError(f"{where}.{exc.detail}") from None
    return rule


def _provider(r: _Reader) -> ProviderSettings:
    d = ProviderSettings()
    sandbox = r.optional_bool("sandbox", d.sandbox)
    switches = {name: r.optional_bool(name, False) for name in SANDBOX_ONLY}
    for name, on in switches.items():
        if on and not sandbox:
            raise ConfigError(f"{r.at(name)}: only in sandbox mode; it needs sandbox = true")
    try:
        settings = ProviderSettings(
            access_token_lifetime=r.optional_int("access_token_lifetime", minimum=1)
            or d.access_token_lifetime,
            id_token_lifetime=r.optional_int("id_token_lifetime", minimum=1) or d.id_token_lifetime,
            refresh_token_lifetime=r.optional_int("refresh_token_lifetime", minimum=1)
            or d.refresh_token_lifetime,
            authorization_code_lifetime=min(
                r.optional_int("authorization_code_lifetime", minimum=1)
                or d.authorization_code_lifetime,
                60,  # OIDC/OAuth BCP: codes live a short time; we cap at 60 s whatever is asked.
            ),
            session_lifetime=r.optional_int("session_lifetime", minimum=1) or d.session_lifetime,
            allow_totp_enrolment=r.optional_bool("allow_totp_enrolment", d.allow_totp_enrolment),
            dpop_require_nonce=r.optional_bool("dpop_require_nonce", d.dpop_require_nonce),
            allow_passkey_enrolment=r.optional_bool(
                "allow_passkey_enrolment", d.allow_passkey_enrolment
            ),
            sandbox=sandbox,
            sandbox_allow_totp_reuse=switches["sandbox_allow_totp_reuse"],
            sandbox_loopback_clients=switches["sandbox_loopback_clients"],
            resources=tuple(r.strings("resources", required=False)),
        )
    except SettingsError as exc:  # a value the provider refuses (a resource that is no URI)
        raise ConfigError(str(exc)) from None
    r.done()
    return settings


def _check_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{what}: {v!r} appears twice")
        seen.add(v)


def _check_base32(where: str, secret: str) -> None:
    import base64
    import binascii

    s = secret.replace(" ", "").upper()
    try:
        raw = base64.b32decode(s + "=" * (-len(s) % 8))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not valid base32") from None
    if len(raw) < 10:
        raise ConfigError(f"{where}: too short; RFC 4226 asks for at least 128 bits (26 chars)")


class _Reader:
    """Typed access to one TOML table that remembers which keys were read, to reject the rest."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str) -> Any:
        self.read.add(key)
        return self.data.get(key)

    def string(self, key: str) -> str:
        v = self._get(key)
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{self.at(key)}: required, a non-empty string")
        return v

    def optional_string(self, key: str) -> str | None:
        v = self._get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise ConfigError(f"{self.at(key)}: must be a string")
        return v

    def strings(self, key: str, *, required: bool = True) -> list[str]:
        v = self._get(key)
        if v is None and not required:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise ConfigError(f"{self.at(key)}: must be a list of non-empty strings")
        if required and not v:
            raise ConfigError(f"{self.at(key)}: must not be empty")
        return v

    def optional_int(self, key: str, *, minimum: int) -> int | None:
        v = self._get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ConfigError(f"{self.at(key)}: must be an integer >= {minimum}")
        return v

    def optional_bool(self, key: str, default: bool) -> bool:
        v = self._get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ConfigError(f"{self.at(key)}: must be true or false")
        return v

    def table(self, key: str) -> _Reader:
        v = self._get(key)
        if not isinstance(v, dict):
            raise ConfigError(f"{self.at(key)}: must be a table")
        return _Reader(v, self.at(key))

    def tables(self, key: str, *, required: bool = False) -> list[_Reader]:
        v = self._get(key)
        if v is None and not required:
            return []
        if not isinstance(v, list) or not v or not all(isinstance(x, dict) for x in v):
            raise ConfigError(f"{self.at(key)}: must be one or more [[{key}]] tables")
        return [_Reader(x, f"{self.at(key)}[{i}]") for i, x in enumerate(v)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            where = f"{self.where}: " if self.where else ""
            raise ConfigError(f"{where}unknown key(s) {', '.join(unknown)}")

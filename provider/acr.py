"""Authentication levels (``acr``): the configured, ordered levels and what satisfies what.

OpenID Connect Core 1.0 §2 defines ``acr`` as "a string specifying an Authentication Context Class
Reference value that identifies the Authentication Context Class that the authentication performed
satisfied", and leaves the values and their order to the deployment. Ours come from the
``[[acr_levels]]`` tables of the configuration, **weakest first**:

* a higher level satisfies a request for a lower one (by position, ``rank``);
* aliases map foreign values onto our levels (the PAPE multi-factor URI, Okta's ``urn:okta:loa:…``),
  so a client written for another provider works unchanged;
* a level may bound how long a session keeps it once reached (``elevation_lifetime``).

**Which factors an elevation lifetime bounds.** A level's ``elevation_lifetime`` bounds the
factors that level *adds* over the level below it (for the weakest level, or a level that adds
none: all of its factors). A factor stays bound by the lifetimes of the weaker levels that added it
too. With the sandbox levels (loa1 = pwd, loa2 = pwd + otp for 15 minutes) the OTP goes stale for
loa2 after 15 minutes while the password keeps the session at loa1 — the session "falls back to the
level its remaining factors give", and the next step-up asks for the OTP only.

Pure: no I/O; time is passed in as epoch seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from .settings import AcrLevelConfig, SettingsError

__all__ = ["FACTOR_ORDER", "PASSKEY_QUALIFIERS", "AcrLevel", "AcrPolicy"]

# The factors we know, in the order a user is asked for them. ``passkey``: a WebAuthn assertion;
# ``uv`` and ``hwk`` qualify it: the authenticator verified the user (PIN or biometric), and the
# credential's attestation chains to a root trusted for hardware keys. A level of passkeys alone
# (no ``pwd``, no ``otp``) needs ``uv``: the passkey is then both factors.
FACTOR_ORDER: tuple[str, ...] = ("pwd", "otp", "passkey", "hwk", "uv")
# Factors that only say something about how a passkey was used: they need ``passkey`` beside them.
PASSKEY_QUALIFIERS: frozenset[str] = frozenset({"hwk", "uv"})


@dataclass(frozen=True)
class AcrLevel:
    """One configured level. ``rank`` is its position, 0 being the weakest."""

    value: str
    factors: tuple[str, ...]
    aliases: tuple[str, ...]
    elevation_lifetime: int | None
    description: str
    rank: int

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical value, then the aliases."""
        return (self.value, *self.aliases)


def _ordered_factors(factors: Collection[str], where: str) -> tuple[str, ...]:
    unknown = sorted(set(factors) - set(FACTOR_ORDER))
    if unknown:
        raise SettingsError(
            f"{where}: unknown factor(s) {', '.join(unknown)} (known: {', '.join(FACTOR_ORDER)})"
        )
    if not factors:
        raise SettingsError(f"{where}: a level needs at least one factor")
    qualifiers = sorted(set(factors) & PASSKEY_QUALIFIERS)
    if qualifiers and "passkey" not in factors:
        raise SettingsError(f"{where}: {', '.join(qualifiers)} qualifies a passkey: add passkey")
    have = set(factors)
    if "passkey" in have and not have & {"pwd", "otp"}:
        have.add("uv")  # a passkey alone is both factors only when it verifies the user
    return tuple(f for f in FACTOR_ORDER if f in have)


class AcrPolicy:
    """The ordered levels, built from the configuration (weakest first)."""

    def __init__(self, configs: Sequence[AcrLevelConfig]) -> None:
        if not configs:
            raise SettingsError("acr_levels: at least one level is needed")
        levels: list[AcrLevel] = []
        by_name: dict[str, AcrLevel] = {}
        for rank, c in enumerate(configs):
            level = AcrLevel(
                value=c.value,
                factors=_ordered_factors(c.factors, f"acr_levels[{rank}].factors"),
                aliases=tuple(c.aliases),
                elevation_lifetime=c.elevation_lifetime,
                description=c.description,
                rank=rank,
            )
            for name in level.names:
                if name in by_name:
                    raise SettingsError(f"acr_levels: {name!r} appears twice")
                by_name[name] = level
            levels.append(level)
        self._levels: tuple[AcrLevel, ...] = tuple(levels)
        self._by_name = by_name
        self._lifetimes = self._factor_lifetimes(self._levels)

    @staticmethod
    def _factor_lifetimes(levels: Sequence[AcrLevel]) -> dict[tuple[int, str], int | None]:
        """For each (level rank, factor): the tightest elevation lifetime that bounds the factor."""
        out: dict[tuple[int, str], int | None] = {}
        below: AcrLevel | None = None
        for level in levels:
            added = [f for f in level.factors if below is None or f not in below.factors]
            bounded = added or list(level.factors)
            for f in level.factors:
                bounds: list[int] = []
                if f in bounded and level.elevation_lifetime is not None:
                    bounds.append(level.elevation_lifetime)
                if below is not None and f in below.factors:
                    inherited = out[(below.rank, f)]
                    if inherited is not None:
                        bounds.append(inherited)
                out[(level.rank, f)] = min(bounds) if bounds else None
            below = level
        return out

    @property
    def levels(self) -> tuple[AcrLevel, ...]:
        """All levels, weakest first."""
        return self._levels

    @property
    def weakest(self) -> AcrLevel:
        return self._levels[0]

    @property
    def values_supported(self) -> list[str]:
        """Discovery's ``acr_values_supported``: canonical values, then aliases."""
        return [lv.value for lv in self._levels] + [a for lv in self._levels for a in lv.aliases]

    def resolve(self, value: str) -> AcrLevel | None:
        """The level a canonical value or an alias names; ``None`` for a value we do not know."""
        return self._by_name.get(value)

    def satisfies(self, level: AcrLevel, requested_value: str) -> bool:
        """Whether a session at ``level`` meets a request for ``requested_value``.

        A higher level satisfies a lower one; an alias counts as the level it names. An unknown
        value is satisfied by nothing.
        """
        requested = self.resolve(requested_value)
        return requested is not None and level.rank >= requested.rank

    def level_for(self, fresh_factors: Collection[str]) -> AcrLevel | None:
        """The strongest level whose factors are all in ``fresh_factors``; ``None`` if none is."""
        have = set(fresh_factors)
        for level in reversed(self._levels):
            if have.issuperset(level.factors):
                return level
        return None

    def factor_lifetime(self, level: AcrLevel, factor: str) -> int | None:
        """How long (seconds) a verification of ``factor`` counts towards ``level`` (None: always).

        See the module docstring for which factors a level's ``elevation_lifetime`` bounds.
        """
        return self._lifetimes.get((level.rank, factor))

    def is_fresh(self, level: AcrLevel, factor: str, verified_at: int, now: int) -> bool:
        """Whether a verification of ``factor`` at ``verified_at`` still counts towards ``level``.

        Stale when ``now - verified_at > lifetime`` (exactly the lifetime is still fresh).
        """
        lifetime = self.factor_lifetime(level, factor)
        return lifetime is None or now - verified_at <= lifetime

    def level_reached(self, verified: Mapping[str, int], now: int) -> AcrLevel | None:
        """The strongest level whose factors were all verified and are all still fresh for it.

        ``verified`` maps a factor name to the time it was last verified.
        """
        for level in reversed(self._levels):
            if all(
                f in verified and self.is_fresh(level, f, verified[f], now) for f in level.factors
            ):
                return level
        return None

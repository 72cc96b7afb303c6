"""The Stepup OpenID provider.

``create_app(config, *, database_url=None, database=None, clock=None)`` returns the Flask
application; ``stepup provider`` serves it. ``config`` is any object with the attributes of
:class:`provider.settings.ProviderConfig` (``stepup.config.StepupConfig`` is one): the provider
reads no files itself. See docs/provider.md.

The names are imported when first used, so that importing one module of the package
(``provider.settings``, ``provider.db``) does not import Flask, Authlib and every view: the
``stepup`` command reads its config before it needs the app (docs/benchmarks.md, start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .clock import Clock
    from .db import Database

__all__ = ["Clock", "Database", "create_app"]

_LAZY = {"Clock": "clock", "Database": "db", "create_app": "app"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'provider' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"provider.{module}"), name)
    globals()[name] = value
    return value

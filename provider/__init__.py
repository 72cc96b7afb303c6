"""The Stepup OpenID provider.

``create_app(config, *, database_url=None, database=None, clock=None)`` returns the Flask
application; ``stepup provider`` serves it. ``config`` is any object with the attributes of
:class:`provider.settings.ProviderConfig` (``stepup.config.StepupConfig`` is one): the provider
reads no files itself. See docs/provider.md.
"""

from .app import create_app
from .clock import Clock
from .db import Database

__all__ = ["Clock", "Database", "create_app"]

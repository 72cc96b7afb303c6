"""The Stepup OpenID provider.

``create_app(config: stepup.config.StepupConfig, *, database_url=None, database=None, clock=None)``
returns the Flask application; ``stepup provider`` serves it. See docs/provider.md.
"""

from .app import create_app
from .clock import Clock
from .db import Database

__all__ = ["Clock", "Database", "create_app"]

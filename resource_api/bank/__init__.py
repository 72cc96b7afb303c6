"""The demo bank API (``stepup api``): accounts, transactions, transfers, profile e-mail."""

from .app import acr_order_from_config, create_app

__all__ = ["acr_order_from_config", "create_app"]

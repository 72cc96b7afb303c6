"""Revision scripts, one per schema change, oldest first; see ``docs/provider.md``."""

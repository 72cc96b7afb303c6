"""The provider's HTTP endpoints, one blueprint per group."""

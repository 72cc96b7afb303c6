"""The `stepup` command and the configuration file shared by the provider and the demo API."""

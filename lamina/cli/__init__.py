"""The `lamina` command. It talks to a running server only through the public API."""

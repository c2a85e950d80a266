"""Logs, metrics and traces: written by the invoke path, read by the API and the CLI."""

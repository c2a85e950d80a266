"""`lamina deploy -t template.yaml`: AWS SAM templates applied through Lamina's own API."""


class NotServed(Exception):
    """This Lamina server does not serve the API a resource needs (yet)."""

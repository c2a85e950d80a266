"""The HTTP surface: Lambda's REST API and the JSON protocols of the other services Lamina serves.

Parses requests, validates the wire shape, maps domain objects to wire dicts and errors to bytes.
"""

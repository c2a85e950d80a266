"""Errors of the EventBridge API, by their modelled names; api/events.py puts them on the wire."""

from __future__ import annotations


class EventsError(Exception):
    code = "InternalException"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResourceNotFoundException(EventsError):
    code = "ResourceNotFoundException"


class ValidationException(EventsError):
    code = "ValidationException"


class LimitExceededException(EventsError):
    code = "LimitExceededException"


class InvalidEventPatternException(EventsError):
    code = "InvalidEventPatternException"


class UnknownOperationException(EventsError):
    code = "UnknownOperationException"


class SerializationException(EventsError):
    code = "SerializationException"

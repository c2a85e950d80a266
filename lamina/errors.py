"""The one hierarchy of Lambda errors, raised in any layer and put on the wire by api/ only.

    LambdaError
    ├── InvalidParameterValueException      400  a value breaks a rule of Lambda's
    ├── InvalidRequestContentException      400  the body cannot be parsed (an Invoke payload that is not JSON)
    ├── ValidationException                 400  a model constraint (pattern, range, enum); unmodelled in botocore
    ├── ResourceInUseException              400
    ├── ResourceNotFoundException           404
    ├── ProvisionedConcurrencyConfigNotFoundException 404
    ├── ResourceConflictException           409  exists already, or the function is not in a state for this
    ├── PolicyLengthExceededException       400  a resource-based policy over its size limit
    ├── PreconditionFailedException         412  a stale RevisionId
    ├── RequestTooLargeException            413  a payload or package over Lambda's limit
    ├── UnsupportedMediaTypeException       415
    ├── TooManyRequestsException            429  throttled, with Lambda's Reason
    └── ServiceException                    500  a fault of the server itself, never of the function

Status codes and the casing of the message member follow botocore's Lambda model, so that boto3
raises the modelled exception with the same members as against AWS.
"""

from __future__ import annotations


class LambdaError(Exception):
    """A Lambda API error: a type name, an HTTP status and a message."""

    status = 400
    message_key = "message"
    fault = "User"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, object]:
        """The JSON body AWS sends with this error."""
        return {"Type": self.fault, self.message_key: self.message}

    def headers(self) -> dict[str, str]:
        return {}


class InvalidParameterValueException(LambdaError):
    pass


class InvalidRequestContentException(LambdaError):
    pass


class ValidationException(LambdaError):
    pass


class ResourceInUseException(LambdaError):
    message_key = "Message"


class ResourceNotFoundException(LambdaError):
    status = 404
    message_key = "Message"


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    status = 404


class ResourceConflictException(LambdaError):
    status = 409


class PreconditionFailedException(LambdaError):
    status = 412


class RequestTooLargeException(LambdaError):
    status = 413


class UnsupportedMediaTypeException(LambdaError):
    status = 415


class TooManyRequestsException(LambdaError):
    """Throttled. `reason` is one of the model's ThrottleReason values."""

    status = 429

    def __init__(
        self, reason: str, message: str = "Rate Exceeded.", retry_after_s: int = 1
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        return {**super().body(), "Reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceException(LambdaError):
    status = 500
    message_key = "Message"
    fault = "Service"


class AccessDeniedException(LambdaError):
    """Unmodelled in botocore's Lambda model; AWS answers it for IAM denials."""

    status = 403
    message_key = "Message"


class PolicyLengthExceededException(LambdaError):
    """A resource-based policy over Lambda's size limit (20 KB for a function)."""

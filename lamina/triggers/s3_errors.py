"""Errors of the S3 API over bucket folders, by S3's codes and statuses; api/s3.py puts them on
the wire as S3's XML error document."""

from __future__ import annotations


class S3Error(Exception):
    code = "InternalError"
    status = 500

    def __init__(self, message: str, *, resource: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource


def _error(code: str, status: int) -> type[S3Error]:
    return type(code, (S3Error,), {"code": code, "status": status})


NoSuchBucket = _error("NoSuchBucket", 404)
NoSuchKey = _error("NoSuchKey", 404)
NoSuchUpload = _error("NoSuchUpload", 404)
BucketNotEmpty = _error("BucketNotEmpty", 409)
BucketAlreadyOwnedByYou = _error("BucketAlreadyOwnedByYou", 409)
BucketAlreadyExists = _error("BucketAlreadyExists", 409)
InvalidBucketName = _error("InvalidBucketName", 400)
InvalidArgument = _error("InvalidArgument", 400)
InvalidRequest = _error("InvalidRequest", 400)
InvalidRange = _error("InvalidRange", 416)
InvalidDigest = _error("InvalidDigest", 400)
BadDigest = _error("BadDigest", 400)
KeyTooLongError = _error("KeyTooLongError", 400)
MalformedXML = _error("MalformedXML", 400)
IncompleteBody = _error("IncompleteBody", 400)
InvalidPart = _error("InvalidPart", 400)
InvalidPartOrder = _error("InvalidPartOrder", 400)
EntityTooSmall = _error("EntityTooSmall", 400)
EntityTooLarge = _error("EntityTooLarge", 400)
PreconditionFailed = _error("PreconditionFailed", 412)
AccessDenied = _error("AccessDenied", 403)
NotImplementedError_ = _error("NotImplemented", 501)
MethodNotAllowed = _error("MethodNotAllowed", 405)

"""An S3-compatible REST API over bucket folders, on the same endpoint as Lambda.

A request is S3's when its SigV4 credential scope names the `s3` service (the Authorization
header, or X-Amz-Credential of a presigned URL) or it is signed with S3's SigV2 (`AWS key:sig`,
or `AWSAccessKeyId` + `Signature` in the query: boto3's presigned URLs). Signatures are not
checked (Lamina does not authenticate requests yet). Addressing is path style
(`/bucket/key`, what botocore uses for an IP address or `localhost`), or virtual-hosted when the
Host is `bucket.localhost` (or `bucket.s3.localhost`).

Bodies stream to disk; aws-chunked bodies (`Content-Encoding: aws-chunked`, signed or unsigned
chunks, with trailing checksums) are decoded on the way. Errors are S3's XML error document.
The storage side is lamina/triggers/object_store.py.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import errno
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote
from xml.etree import ElementTree as ET
from xml.parsers import expat

from lamina.errors import LambdaError, ResourceNotFoundException
from lamina.triggers.buckets import Bucket, Buckets
from lamina.triggers.object_store import ObjectInfo, ObjectStore
from lamina.triggers.s3_errors import (
    AccessDenied,
    IncompleteBody,
    InvalidArgument,
    InvalidRange,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    MethodNotAllowed,
    NoSuchBucket,
    NotImplementedError_,
    PreconditionFailed,
    S3Error,
)

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML = "application/xml"
MAX_XML_BYTES = 2 * 1024 * 1024
READ_CHUNK = 256 * 1024
_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_KEPT_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
# Sub-resources of S3's API that Lamina does not serve: NotImplemented rather than acting as if
# the plain operation was meant.
_UNSERVED = frozenset(
    [
        "acl",
        "accelerate",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metrics",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "tagging",
        "torrent",
        "versions",
        "website",
    ]
)


def is_s3_request(headers: dict[str, str], query_string: bytes) -> bool:
    """Signed for S3: SigV4 with service `s3` (header or presigned query), or SigV2."""
    auth = headers.get("authorization", "")
    if auth:
        return "/s3/aws4_request" in auth or auth.startswith("AWS ")
    if query_string:
        return (
            b"%2Fs3%2Faws4_request" in query_string
            or b"/s3/aws4_request" in query_string
            or (b"AWSAccessKeyId=" in query_string and b"Signature=" in query_string)
        )
    return False


def request_region(headers: dict[str, str], query: dict[str, list[str]], default: str) -> str:
    for text in (headers.get("authorization", ""), "Credential=" + _one(query, "X-Amz-Credential")):
        m = _CREDENTIAL_RE.search(text)
        if m:
            return m.group(1)
    return default


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


# -- XML -----------------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _doc(root: ET.Element) -> bytes:
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=NS)


def _refuse_dtd(*_: object) -> None:
    raise ValueError("a DTD")


def _check_no_dtd(body: bytes) -> None:
    """S3's request bodies have no DTD: refusing one means no entity is ever declared, so no
    expansion bomb or external entity reaches the tree, whatever the linked expat's own limits."""
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.Parse(body, True)


def _parse_xml(body: bytes) -> ET.Element:
    try:
        _check_no_dtd(body)
        root = ET.fromstring(body)
    except (ET.ParseError, expat.ExpatError, ValueError):
        raise MalformedXML(
            "The XML you provided was not well-formed or did not validate against our "
            "published schema"
        ) from None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _http_date(t: dt.datetime) -> str:
    return email.utils.format_datetime(t, usegmt=True)


def _etag(info: ObjectInfo) -> str:
    return f'"{info.etag}"'


# -- aws-chunked ---------------------------------------------------------------------------------


class ChunkedDecoder:
    """Decodes an aws-chunked body (`size[;chunk-signature=...]` CRLF data CRLF ..., a zero
    chunk, trailing headers such as x-amz-checksum-crc32, an empty line) as it arrives."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.state = "size"
        self.remaining = 0
        self.trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = bytearray()
        while True:
            if self.state == "size" or self.state == "trailer":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    if len(self.buf) > 8192:
                        raise IncompleteBody("The aws-chunked body is malformed.")
                    break
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                if self.state == "size":
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise IncompleteBody("The aws-chunked body is malformed.") from None
                    if size < 0:
                        raise IncompleteBody("The aws-chunked body is malformed.")
                    self.remaining = size
                    self.state = "data" if size else "trailer"
                elif not line:
                    self.state = "done"
                else:
                    name, _, value = line.decode("latin-1").partition(":")
                    self.trailers[name.strip().lower()] = value.strip()
            elif self.state == "data":
                take = min(self.remaining, len(self.buf))
                out += self.buf[:take]
                del self.buf[:take]
                self.remaining -= take
                if self.remaining:
                    break
                self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b"\r\n":
                    raise IncompleteBody("The aws-chunked body is malformed.")
                del self.buf[:2]
                self.state = "size"
            else:  # done: anything after the last line is ignored
                self.buf.clear()
                break
        return bytes(out)

    def finish(self) -> None:
        if self.state == "trailer" and not self.buf:
            self.state = "done"  # a body that ends right after the zero chunk
        if self.state != "done":
            raise IncompleteBody("You did not provide the number of bytes specified.")


class Call:
    """One S3 request: where it points, its headers and query, and its body as a stream."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        default_region: str,
    ) -> None:
        self.method: str = scope["method"]
        self.headers = headers
        self.query = parse_qs(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        self.receive = receive
        self.request_id = uuid.uuid4().hex[:16].upper()
        self.region = request_region(headers, self.query, default_region)
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        host = (
            headers.get("host", "").rsplit(":", 1)[0] if "]" not in headers.get("host", "") else ""
        )
        self.bucket = ""
        if host.endswith(".localhost"):
            self.bucket = host.removesuffix(".localhost").removesuffix(".s3")
            self.key = unquote(raw_path[1:])
        else:
            bucket, _, key = raw_path[1:].partition("/")
            self.bucket = unquote(bucket)
            self.key = unquote(key)
        self.host = headers.get("host", "")
        self.body_read = False

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return name in self.query

    @property
    def resource(self) -> str:
        return "/" + self.bucket + ("/" + self.key if self.key else "")

    async def _raw(self) -> AsyncIterator[bytes]:
        self.body_read = True
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise IncompleteBody("The client went away before the body was complete.")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    def chunked(self) -> bool:
        return "aws-chunked" in self.headers.get("content-encoding", "") or self.headers.get(
            "x-amz-content-sha256", ""
        ).startswith("STREAMING-")

    async def stream(self, trailers: dict[str, str]) -> AsyncIterator[bytes]:
        """The payload, aws-chunked decoded; its trailers land in `trailers` at the end."""
        declared = self.headers.get("content-length")
        if not self.chunked():
            size = 0
            async for chunk in self._raw():
                size += len(chunk)
                yield chunk
            if declared is not None and declared.isdecimal() and size != int(declared):
                raise IncompleteBody("You did not provide the number of bytes specified.")
            return
        decoder = ChunkedDecoder()
        size = 0
        async for chunk in self._raw():
            out = decoder.feed(chunk)
            if out:
                size += len(out)
                yield out
        decoder.finish()
        trailers.update(decoder.trailers)
        decoded = self.headers.get("x-amz-decoded-content-length")
        if decoded is not None and decoded.isdecimal() and size != int(decoded):
            raise IncompleteBody("You did not provide the number of bytes specified.")

    async def body(self, limit: int = MAX_XML_BYTES) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream({}):
            size += len(chunk)
            if size > limit:
                raise InvalidRequest("The request body is too large for this operation.")
            parts.append(chunk)
        return b"".join(parts)

    def meta(self) -> dict[str, str]:
        return {
            k.removeprefix("x-amz-meta-"): v
            for k, v in self.headers.items()
            if k.startswith("x-amz-meta-")
        }

    def kept_headers(self) -> dict[str, str]:
        out = {}
        for name in _KEPT_HEADERS:
            value = self.headers.get(name)
            if name == "content-encoding" and value:
                value = ",".join(
                    v.strip() for v in value.split(",") if v.strip() and v.strip() != "aws-chunked"
                )
            if value:
                out[name] = value
        return out


class Reply:
    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        file: Path | None = None,
        span: tuple[int, int] | None = None,  # (first byte, length) of `file`
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        self.file = file
        self.span = span


def _xml_reply(root: ET.Element, status: int = 200) -> Reply:
    return Reply(status, _doc(root), [("content-type", XML)])


def error_reply(error: S3Error, call: Call | None) -> Reply:
    root = ET.Element("Error")
    _el(root, "Code", error.code)
    _el(root, "Message", error.message)
    resource = call.resource if call is not None else error.resource
    if resource:
        _el(root, "Resource", resource)
    _el(root, "RequestId", call.request_id if call is not None else "")
    headers = [("content-type", XML)]
    if isinstance(error, InvalidRange) and error.resource.startswith("bytes */"):
        headers.append(("content-range", error.resource))
    return Reply(error.status, _doc(root), headers)


class S3Gateway:
    def __init__(self, store: ObjectStore, buckets: Buckets, *, default_region: str) -> None:
        self.store = store
        self.buckets = buckets
        self.default_region = default_region

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        call: Call | None = None
        try:
            call = Call(scope, receive, headers, self.default_region)
            reply = await self.dispatch(call)
        except S3Error as error:
            reply = error_reply(error, call)
        except LambdaError as error:  # from the bucket notifications' checks
            kind = NoSuchBucket if isinstance(error, ResourceNotFoundException) else InvalidArgument
            reply = error_reply(kind(error.message), call)
        except OSError as exc:
            # The bucket's folder said no (permissions, a full disk, a name too long).
            log.warning("S3 request %s %s: %s", scope.get("method"), scope.get("path"), exc)
            reply = error_reply(_os_error(exc), call)
        except Exception:
            log.exception("S3 request %s %s failed", scope.get("method"), scope.get("path"))
            reply = error_reply(
                S3Error("We encountered an internal error. Please try again."), call
            )
        if (
            call is not None
            and not call.body_read
            and "100-continue" in headers.get("expect", "").lower()
        ):
            # The client holds its body back until told to go on, and the server would take
            # its next request for that body: this connection is done.
            reply.headers.append(("connection", "close"))
        await self._send(send, reply, call)

    async def _send(self, send: Send, reply: Reply, call: Call | None) -> None:
        request_id = call.request_id if call is not None else uuid.uuid4().hex[:16].upper()
        head = [
            (b"x-amz-request-id", request_id.encode()),
            (b"x-amz-id-2", base64.b64encode(request_id.encode()).decode().encode()),
        ]
        length = reply.span[1] if reply.file is not None and reply.span else len(reply.body)
        head.append((b"content-length", str(length).encode()))
        head.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": head})
        if reply.file is None or reply.span is None or (call is not None and call.method == "HEAD"):
            await send({"type": "http.response.body", "body": reply.body})
            return
        start, left = reply.span
        f = await asyncio.to_thread(reply.file.open, "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            while left > 0:
                chunk = await asyncio.to_thread(f.read, min(READ_CHUNK, left))
                if not chunk:
                    break  # the file shrank meanwhile: the client sees a short body
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            else:
                if reply.span[1] == 0:  # an empty object: the body message still ends it
                    await send({"type": "http.response.body", "body": b""})
                return
        finally:
            await asyncio.to_thread(f.close)
        # Shorter than announced: end the response; the server drops the connection.
        await send({"type": "http.response.body", "body": b""})

    # -- routing ---------------------------------------------------------------------------------

    async def dispatch(self, call: Call) -> Reply:
        unserved = sorted(k for k in call.query if k in _UNSERVED)
        if unserved:
            raise NotImplementedError_(
                f"Lamina does not serve the S3 sub-resource ?{unserved[0]}.",
                resource=call.resource,
            )
        m = call.method
        if not call.bucket:
            if m == "GET":
                return self.list_buckets(call)
            raise MethodNotAllowed("The specified method is not allowed against this resource.")
        if not call.key:
            if m == "GET":
                if call.has("location"):
                    return self.get_location(call)
                if call.has("notification"):
                    return self.get_notification(call)
                if call.has("versioning"):
                    self.store.bucket(call.bucket)
                    return _xml_reply(_root("VersioningConfiguration"))
                if call.has("uploads"):
                    raise NotImplementedError_("Lamina does not serve ListMultipartUploads.")
                return await self.list_objects(call)
            if m == "PUT":
                if call.has("notification"):
                    return await self.put_notification(call)
                return await self.create_bucket(call)
            if m == "HEAD":
                bucket = self.store.bucket(call.bucket)
                return Reply(200, headers=[("x-amz-bucket-region", bucket.region)])
            if m == "DELETE":
                await self.store.delete_bucket(call.bucket)
                return Reply(204)
            if m == "POST" and call.has("delete"):
                return await self.delete_objects(call)
            raise MethodNotAllowed("The specified method is not allowed against this resource.")
        if m in ("GET", "HEAD"):
            if call.has("uploadId"):
                raise NotImplementedError_("Lamina does not serve ListParts.")
            return await self.get_object(call)
        if m == "PUT":
            if call.has("uploadId") or call.has("partNumber"):
                return await self.upload_part(call)
            if "x-amz-copy-source" in call.headers:
                return await self.copy_object(call)
            return await self.put_object(call)
        if m == "POST":
            if call.has("uploads"):
                return await self.create_upload(call)
            if call.has("uploadId"):
                return await self.complete_upload(call)
        if m == "DELETE":
            if call.has("uploadId"):
                await self.store.abort_upload(call.bucket, call.key, call.q("uploadId") or "")
                return Reply(204)
            await self.store.delete(call.bucket, call.key)
            return Reply(204)
        raise MethodNotAllowed("The specified method is not allowed against this resource.")

    # -- buckets ---------------------------------------------------------------------------------

    def list_buckets(self, call: Call) -> Reply:
        root = _root("ListAllMyBucketsResult")
        owner = _el(root, "Owner")
        _el(owner, "ID", "lamina")
        _el(owner, "DisplayName", "lamina")
        listed = _el(root, "Buckets")
        for bucket in self.buckets.all():
            b = _el(listed, "Bucket")
            _el(b, "Name", bucket.name)
            _el(b, "CreationDate", bucket.created)
            _el(b, "BucketRegion", bucket.region)
        return _xml_reply(root)

    def get_location(self, call: Call) -> Reply:
        bucket = self.store.bucket(call.bucket)
        root = _root("LocationConstraint")
        if bucket.region != "us-east-1":
            root.text = bucket.region
        return _xml_reply(root)

    async def create_bucket(self, call: Call) -> Reply:
        region = call.region
        body = await call.body()
        if body.strip():
            config = _parse_xml(body)
            location = config.findtext("LocationConstraint")
            if location:
                region = location
        bucket = await self.store.create_bucket(call.bucket, region)
        return Reply(200, headers=[("location", "/" + bucket.name)])

    def get_notification(self, call: Call) -> Reply:
        bucket = self.store.bucket(call.bucket)
        return _xml_reply(notification_xml(bucket))

    async def put_notification(self, call: Call) -> Reply:
        self.store.bucket(call.bucket)
        body = notification_from_xml(_parse_xml(await call.body()))
        await self.buckets.put_notifications(call.bucket, body)
        return Reply(200)

    async def list_objects(self, call: Call) -> Reply:
        v2 = call.q("list-type") == "2"
        encoding = call.q("encoding-type")
        if encoding not in (None, "url"):
            raise InvalidArgument("Invalid Encoding Method specified in Request")
        enc: Callable[[str], str] = (lambda s: quote(s, safe="/")) if encoding else (lambda s: s)
        prefix = call.q("prefix") or ""
        delimiter = call.q("delimiter") or ""
        raw_max = call.q("max-keys")
        try:
            max_keys = 1000 if raw_max is None else int(raw_max)
        except ValueError:
            max_keys = -1
        if max_keys < 0:
            raise InvalidArgument("Provided max-keys not an integer or within integer range")
        max_keys = min(max_keys, 1000)
        token = call.q("continuation-token")
        after, after_prefix = "", False
        if v2:
            start_after = call.q("start-after") or ""
            if token is not None:
                after, after_prefix = _read_token(token)
            else:
                after = start_after
        else:
            after = call.q("marker") or ""
            after_prefix = bool(delimiter) and after.endswith(delimiter)
        listing = await self.store.list_objects(
            call.bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            after_prefix=after_prefix,
            max_keys=max_keys,
        )
        root = _root("ListBucketResult")
        _el(root, "Name", call.bucket)
        _el(root, "Prefix", enc(prefix))
        if v2:
            if token is not None:
                _el(root, "ContinuationToken", token)
            if call.q("start-after"):
                _el(root, "StartAfter", enc(call.q("start-after") or ""))
            _el(root, "KeyCount", len(listing.objects) + len(listing.prefixes))
        else:
            _el(root, "Marker", enc(after))
        _el(root, "MaxKeys", max_keys)
        if delimiter:
            _el(root, "Delimiter", enc(delimiter))
        if encoding:
            _el(root, "EncodingType", encoding)
        _el(root, "IsTruncated", "true" if listing.truncated else "false")
        if listing.truncated and listing.last is not None:
            if v2:
                _el(root, "NextContinuationToken", _make_token(listing.last, listing.prefixes))
            elif delimiter:
                _el(root, "NextMarker", enc(listing.last))
        owner = call.q("fetch-owner") == "true" or not v2
        for info in listing.objects:
            c = _el(root, "Contents")
            _el(c, "Key", enc(info.key))
            _el(c, "LastModified", _iso(info.last_modified))
            _el(c, "ETag", _etag(info))
            _el(c, "Size", info.size)
            if owner:
                o = _el(c, "Owner")
                _el(o, "ID", "lamina")
                _el(o, "DisplayName", "lamina")
            _el(c, "StorageClass", "STANDARD")
        for p in listing.prefixes:
            _el(_el(root, "CommonPrefixes"), "Prefix", enc(p))
        return _xml_reply(root)

    # -- objects ---------------------------------------------------------------------------------

    async def get_object(self, call: Call) -> Reply:
        info, path = await self.store.head(call.bucket, call.key)
        headers = object_headers(info)
        status = _preconditions(call, info)
        if status is not None:
            return Reply(status, headers=[("etag", _etag(info))])
        for param, header in (
            ("response-content-type", "content-type"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
            ("response-content-language", "content-language"),
            ("response-cache-control", "cache-control"),
            ("response-expires", "expires"),
        ):
            value = call.q(param)
            if value is not None:
                headers = [(k, v) for k, v in headers if k != header] + [(header, value)]
        span = _range(call.headers.get("range"), info.size)
        if span is None:
            return Reply(200, headers=headers, file=path, span=(0, info.size))
        start, length = span
        headers.append(("content-range", f"bytes {start}-{start + length - 1}/{info.size}"))
        return Reply(206, headers=headers, file=path, span=span)

    def _checksums(self, call: Call) -> dict[str, str]:
        return {
            k.removeprefix("x-amz-checksum-"): v
            for k, v in call.headers.items()
            if k.startswith("x-amz-checksum-") and k != "x-amz-checksum-type"
        }

    async def put_object(self, call: Call) -> Reply:
        trailers: dict[str, str] = {}
        checksums = self._checksums(call)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in call.stream(trailers):
                yield chunk
            checksums.update(
                {k.removeprefix("x-amz-checksum-"): v for k, v in trailers.items()
                 if k.startswith("x-amz-checksum-")}
            )  # fmt: skip

        info = await self.store.put(
            call.bucket,
            call.key,
            body(),
            content_md5=call.headers.get("content-md5"),
            checksums=checksums,
            trailing=tuple(
                t.strip().lower().removeprefix("x-amz-checksum-")
                for t in call.headers.get("x-amz-trailer", "").split(",")
                if t.strip()
            ),
            content_type=call.headers.get("content-type"),
            meta=call.meta(),
            headers=call.kept_headers(),
            if_none_match=call.headers.get("if-none-match") == "*",
        )
        return Reply(200, headers=[("etag", _etag(info))])

    async def copy_object(self, call: Call) -> Reply:
        source = unquote(call.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        source_bucket, _, source_key = source.partition("/")
        if not source_bucket or not source_key:
            raise InvalidArgument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
            )
        directive = call.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument("Unknown metadata directive.")
        info = await self.store.copy(
            source_bucket,
            source_key,
            call.bucket,
            call.key,
            replace_meta=directive == "REPLACE",
            content_type=call.headers.get("content-type"),
            meta=call.meta(),
            headers=call.kept_headers(),
        )
        root = _root("CopyObjectResult")
        _el(root, "LastModified", _iso(info.last_modified))
        _el(root, "ETag", _etag(info))
        return _xml_reply(root)

    async def delete_objects(self, call: Call) -> Reply:
        request = _parse_xml(await call.body())
        if request.tag != "Delete":
            raise MalformedXML("The XML you provided was not well-formed or did not validate.")
        quiet = (request.findtext("Quiet") or "").strip().lower() == "true"
        keys = [o.findtext("Key") for o in request.findall("Object")]
        if not keys or len(keys) > 1000 or any(k is None for k in keys):
            raise MalformedXML("The XML you provided was not well-formed or did not validate.")
        self.store.bucket(call.bucket)
        root = _root("DeleteResult")
        for key in keys:
            assert key is not None
            try:
                await self.store.delete(call.bucket, key)
            except S3Error as error:
                e = _el(root, "Error")
                _el(e, "Key", key)
                _el(e, "Code", error.code)
                _el(e, "Message", error.message)
                continue
            if not quiet:
                _el(_el(root, "Deleted"), "Key", key)
        return _xml_reply(root)

    # -- multipart uploads -----------------------------------------------------------------------

    async def create_upload(self, call: Call) -> Reply:
        upload_id = await self.store.create_upload(
            call.bucket,
            call.key,
            content_type=call.headers.get("content-type"),
            meta=call.meta(),
            headers=call.kept_headers(),
        )
        root = _root("InitiateMultipartUploadResult")
        _el(root, "Bucket", call.bucket)
        _el(root, "Key", call.key)
        _el(root, "UploadId", upload_id)
        return _xml_reply(root)

    async def upload_part(self, call: Call) -> Reply:
        if "x-amz-copy-source" in call.headers:
            raise NotImplementedError_("Lamina does not serve UploadPartCopy.")
        upload_id = call.q("uploadId")
        number = call.q("partNumber")
        if upload_id is None or number is None or not number.isdecimal():
            raise InvalidArgument("UploadPart needs uploadId and an integer partNumber.")
        etag = await self.store.upload_part(
            call.bucket,
            call.key,
            upload_id,
            int(number),
            call.stream({}),
            content_md5=call.headers.get("content-md5"),
        )
        return Reply(200, headers=[("etag", f'"{etag}"')])

    async def complete_upload(self, call: Call) -> Reply:
        request = _parse_xml(await call.body())
        parts: list[tuple[int, str]] = []
        for part in request.findall("Part"):
            number, etag = part.findtext("PartNumber"), part.findtext("ETag")
            if number is None or etag is None or not number.strip().isdecimal():
                raise MalformedXML("The XML you provided was not well-formed or did not validate.")
            parts.append((int(number), etag.strip()))
        info = await self.store.complete_upload(
            call.bucket, call.key, call.q("uploadId") or "", parts
        )
        root = _root("CompleteMultipartUploadResult")
        _el(root, "Location", f"http://{call.host}/{call.bucket}/{quote(call.key)}")
        _el(root, "Bucket", call.bucket)
        _el(root, "Key", call.key)
        _el(root, "ETag", _etag(info))
        return _xml_reply(root)


def _os_error(exc: OSError) -> S3Error:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDenied("Access Denied: the bucket's folder refused the operation.")
    if exc.errno == errno.ENAMETOOLONG:
        return KeyTooLongError("Your key is too long")
    if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return InvalidArgument("The key collides with a folder or file of the bucket's folder.")
    return S3Error("We encountered an internal error. Please try again.")


def object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    headers = [
        ("etag", _etag(info)),
        ("last-modified", _http_date(info.last_modified)),
        ("accept-ranges", "bytes"),
        ("content-type", info.content_type),
    ]
    headers.extend(info.headers.items())
    headers.extend((f"x-amz-meta-{k}", v) for k, v in info.meta.items())
    return headers


def _parse_http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _etag_matches(header: str, info: ObjectInfo) -> bool:
    wanted = {v.strip().strip('"') for v in header.split(",")}
    return "*" in wanted or info.etag in wanted


def _preconditions(call: Call, info: ObjectInfo) -> int | None:
    """S3's order: If-Match, then If-Unmodified-Since (unless If-Match held), If-None-Match,
    If-Modified-Since (unless If-None-Match was given)."""
    h = call.headers
    modified = info.last_modified
    if "if-match" in h:
        if not _etag_matches(h["if-match"], info):
            raise PreconditionFailed(
                "At least one of the pre-conditions you specified did not hold",
                resource=call.resource,
            )
    else:
        since = _parse_http_date(h.get("if-unmodified-since"))
        if since is not None and modified > since:
            raise PreconditionFailed(
                "At least one of the pre-conditions you specified did not hold",
                resource=call.resource,
            )
    if "if-none-match" in h:
        if _etag_matches(h["if-none-match"], info):
            return 304
    else:
        since = _parse_http_date(h.get("if-modified-since"))
        if since is not None and modified <= since:
            return 304
    return None


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single `bytes=` range; None for no range (or one S3 ignores)."""
    if not header:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # malformed or several ranges: S3 sends the whole object
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
        if start >= size:
            raise InvalidRange("The requested range is not satisfiable", resource=f"bytes */{size}")
        return start, end - start + 1
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise InvalidRange("The requested range is not satisfiable", resource=f"bytes */{size}")
    start = max(size - suffix, 0)
    return start, size - start


def _make_token(last: str, prefixes: list[str]) -> str:
    is_prefix = bool(prefixes) and prefixes[-1] == last
    raw = json.dumps([last, is_prefix]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_token(token: str) -> tuple[str, bool]:
    try:
        last, is_prefix = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(last, str) and isinstance(is_prefix, bool):
            return last, is_prefix
    except (ValueError, TypeError, RecursionError):  # binascii.Error is a ValueError
        pass
    raise InvalidArgument("The continuation token provided is incorrect")


# -- notification configuration -----------------------------------------------------------------


def notification_xml(bucket: Bucket) -> ET.Element:
    root = _root("NotificationConfiguration")
    for config in bucket.notifications:
        c = _el(root, "CloudFunctionConfiguration")
        _el(c, "Id", config.id)
        _el(c, "CloudFunction", config.function_arn)
        for event in config.events:
            _el(c, "Event", event)
        rules = [(n, v) for n, v in (("prefix", config.prefix), ("suffix", config.suffix)) if v]
        if rules:
            key = _el(_el(c, "Filter"), "S3Key")
            for name, value in rules:
                r = _el(key, "FilterRule")
                _el(r, "Name", name)
                _el(r, "Value", value)
    return root


def notification_from_xml(root: ET.Element) -> dict[str, Any]:
    """S3's NotificationConfiguration XML as the JSON shape Buckets.put_notifications takes."""
    if root.tag != "NotificationConfiguration":
        raise MalformedXML("The XML you provided was not well-formed or did not validate.")
    configs = []
    for c in root.findall("CloudFunctionConfiguration"):
        item: dict[str, Any] = {
            "LambdaFunctionArn": c.findtext("CloudFunction"),
            "Events": [e.text or "" for e in c.findall("Event")],
        }
        if c.findtext("Id"):
            item["Id"] = c.findtext("Id")
        rules = [
            {"Name": r.findtext("Name") or "", "Value": r.findtext("Value") or ""}
            for r in c.findall("Filter/S3Key/FilterRule")
        ]
        if rules:
            item["Filter"] = {"Key": {"FilterRules": rules}}
        configs.append(item)
    body: dict[str, Any] = {"LambdaFunctionConfigurations": configs}
    for tag, member in (
        ("QueueConfiguration", "QueueConfigurations"),
        ("TopicConfiguration", "TopicConfigurations"),
    ):
        if root.find(tag) is not None:
            body[member] = [{}]
    if root.find("EventBridgeConfiguration") is not None:
        raise InvalidArgument("Lamina sends object events to functions only (no EventBridge).")
    return body

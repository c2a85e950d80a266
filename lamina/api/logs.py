"""A read-only CloudWatch Logs API (JSON 1.1, X-Amz-Target `Logs_20140328.*`) over the log store,
so that `aws logs tail /aws/lambda/NAME --follow`, SAM and SDK code read function logs unchanged."""

from __future__ import annotations

import json
from typing import Any

from lamina.api.http import Request, Response, json_response
from lamina.observe.logs import LogStore

TARGET = "Logs_20140328"
JSON_11 = "application/x-amz-json-1.1"


def _error(code: str, message: str, status: int = 400) -> Response:
    return Response(status, json.dumps({"__type": code, "message": message}).encode(), [], JSON_11)


# The members Lamina reads and their JSON types (the model's): a wrong one is refused up front,
# as AWS's deserializer does, instead of failing inside a handler.
_STR, _INT, _BOOL, _LIST = (str,), (int,), (bool,), (list,)
_MEMBER_TYPES: dict[str, tuple[type, ...]] = {
    "logGroupName": _STR,
    "logGroupIdentifier": _STR,
    "logGroupNamePrefix": _STR,
    "logStreamName": _STR,
    "logStreamNamePrefix": _STR,
    "orderBy": _STR,
    "nextToken": _STR,
    "filterPattern": _STR,
    "descending": _BOOL,
    "startFromHead": _BOOL,
    "interleaved": _BOOL,
    "limit": _INT,
    "startTime": _INT,
    "endTime": _INT,
    "logStreamNames": _LIST,
}


def _wrong_type(body: dict[str, Any]) -> str | None:
    for member, types in _MEMBER_TYPES.items():
        value = body.get(member)
        if value is None:
            continue
        if not isinstance(value, types) or (types is _INT and isinstance(value, bool)):
            return member
        if (
            isinstance(value, int) and not -(2**63) <= value < 2**63
        ):  # a long (SQLite's integers too)
            return member
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            return member
    return None


# The model's length limits of the string members Lamina reads (a 70 kB prefix made SQLite's
# LIKE give up: "pattern too complex").
_MAX_LENGTHS = {
    "logGroupName": 512,
    "logGroupIdentifier": 2048,
    "logGroupNamePrefix": 512,
    "logStreamName": 512,
    "logStreamNamePrefix": 512,
    "filterPattern": 1024,
}


def _too_long(body: dict[str, Any]) -> str | None:
    for member, limit in _MAX_LENGTHS.items():
        value = body.get(member)
        if isinstance(value, str) and len(value) > limit:
            return (
                f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {limit}"
            )
    names = body.get("logStreamNames") or []  # a list of strings (_wrong_type)
    if len(names) > 100 or any(len(n) > 512 for n in names):
        return (
            "1 validation error detected: Value at 'logStreamNames' failed to satisfy "
            "constraint: Member must have length less than or equal to 100"
        )
    return None


def _ok(data: dict[str, Any]) -> Response:
    resp = json_response(data)
    resp.content_type = JSON_11
    return resp


class LogsAPI:
    def __init__(self, logs: LogStore, account_id: str) -> None:
        self.logs = logs
        self.account_id = account_id

    async def __call__(self, req: Request, operation: str) -> Response:
        try:
            body = json.loads(req.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return _error("SerializationException", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error("SerializationException", "The request body must be a JSON object.")
        wrong = _wrong_type(body)
        if wrong is not None:
            return _error("SerializationException", f"Member {wrong} has the wrong type.")
        too_long = _too_long(body)
        if too_long is not None:
            return _error("InvalidParameterException", too_long)
        handler = {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }.get(operation)
        if handler is None:
            return _error("UnknownOperationException", f"Lamina does not serve Logs.{operation}.")
        return await handler(req, body)

    def _group_arn(self, region: str, group: str) -> str:
        return f"arn:aws:logs:{region}:{self.account_id}:log-group:{group}"

    @staticmethod
    def _group_name(body: dict[str, Any]) -> str | None:
        name = body.get("logGroupName")
        ident = body.get("logGroupIdentifier")
        if name is None and isinstance(ident, str):
            name = ident.split(":log-group:", 1)[-1]
        return name if isinstance(name, str) else None

    async def describe_log_groups(self, req: Request, body: dict[str, Any]) -> Response:
        groups = await self.logs.groups(req.region, body.get("logGroupNamePrefix"))
        return _ok(
            {
                "logGroups": [
                    {
                        "logGroupName": g,
                        "creationTime": t,
                        "arn": self._group_arn(req.region, g) + ":*",
                        "storedBytes": 0,
                    }
                    for g, t in groups
                ]
            }
        )

    async def describe_log_streams(self, req: Request, body: dict[str, Any]) -> Response:
        group = self._group_name(body)
        if group is None:
            return _error("InvalidParameterException", "logGroupName is required.")
        streams = await self.logs.streams(req.region, group)
        if not streams and group not in {g for g, _ in await self.logs.groups(req.region, group)}:
            return _error("ResourceNotFoundException", "The specified log group does not exist.")
        prefix = body.get("logStreamNamePrefix")
        if prefix:
            streams = [s for s in streams if s.name.startswith(prefix)]
        if body.get("orderBy", "LogStreamName") == "LogStreamName":
            streams.sort(key=lambda s: s.name, reverse=bool(body.get("descending")))
        elif not body.get("descending"):
            streams.reverse()
        limit = int(body.get("limit") or 50)
        return _ok(
            {
                "logStreams": [
                    {
                        "logStreamName": s.name,
                        "creationTime": s.first_event,
                        "firstEventTimestamp": s.first_event,
                        "lastEventTimestamp": s.last_event,
                        "lastIngestionTime": s.last_ingestion,
                        "storedBytes": s.stored_bytes,
                        "arn": f"{self._group_arn(req.region, group)}:log-stream:{s.name}",
                    }
                    for s in streams[:limit]
                ]
            }
        )

    async def get_log_events(self, req: Request, body: dict[str, Any]) -> Response:
        group = self._group_name(body)
        stream = body.get("logStreamName")
        if group is None or not isinstance(stream, str):
            return _error(
                "InvalidParameterException", "logGroupName and logStreamName are required."
            )
        after = _token(body.get("nextToken"))
        if after is None:
            return _error(*_BAD_TOKEN)
        events = await self.logs.events(
            req.region,
            group,
            streams=[stream],
            start_ms=body.get("startTime"),
            end_ms=body.get("endTime"),
            after_id=after,
            limit=int(body.get("limit") or 10000),
        )
        last = events[-1].id if events else after
        return _ok(
            {
                "events": [
                    {
                        "timestamp": e.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion_time,
                    }
                    for e in events
                ],
                "nextForwardToken": f"f/{last}",
                "nextBackwardToken": f"b/{after}",
            }
        )

    async def filter_log_events(self, req: Request, body: dict[str, Any]) -> Response:
        group = self._group_name(body)
        if group is None:
            return _error("InvalidParameterException", "logGroupName is required.")
        streams = body.get("logStreamNames")
        pattern = (body.get("filterPattern") or "").strip().strip('"') or None
        limit = int(body.get("limit") or 10000)
        after = _token(body.get("nextToken"))
        if after is None:
            return _error(*_BAD_TOKEN)
        events = await self.logs.events(
            req.region,
            group,
            streams=streams,
            start_ms=body.get("startTime"),
            end_ms=body.get("endTime"),
            after_id=after,
            contains=pattern,
            limit=limit,
        )
        prefix = body.get("logStreamNamePrefix")
        if prefix:
            events = [e for e in events if e.log_stream.startswith(prefix)]
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.log_stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": str(e.id),
                }
                for e in events
            ],
            "searchedLogStreams": [],
        }
        if len(events) == limit:
            out["nextToken"] = f"f/{events[-1].id}"
        return _ok(out)


def _token(value: Any) -> int | None:
    """The event id a token this API handed out continues after (0: from the start); None for a
    token it never handed out, which CloudWatch Logs refuses rather than starting over."""
    if value is None:
        return 0
    if isinstance(value, str) and value[:2] in ("f/", "b/"):
        tail = value[2:]
        if tail.isdecimal() and len(tail) <= 18:  # an event id: within SQLite's integers
            return int(tail)
    return None


_BAD_TOKEN = ("InvalidParameterException", "The specified nextToken is invalid.")

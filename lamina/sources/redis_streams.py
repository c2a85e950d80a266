"""Redis Streams as an ordered stream source with Kinesis semantics.

Naming: EventSourceArn `arn:aws:redis:<region>:<account>:stream/<stream key>`; the server is
`SelfManagedEventSource.Endpoints.REDIS_URL` (one `redis://` or `rediss://` URL, default
redis://127.0.0.1:6379/0), with an optional BASIC_AUTH SourceAccessConfiguration for the user
name and password. A stream is one shard (`shardId-000000000000`).

Progress lives in Redis itself: the mapping reads through its own consumer group
(`lamina-<mapping UUID>`, consumer `lamina`), so an entry stays in the group's pending list from
XREADGROUP until the function is done with it and it is XACKed (the checkpoint). After a restart
of Lamina or of Redis the pending list is read again first, in order, then new entries: nothing
acknowledged is delivered again, nothing unacknowledged is lost (given Redis's own persistence).

The function receives Kinesis records (`eventSource` "aws:kinesis", so Kinesis handlers work
unchanged): `sequenceNumber` is the entry id, `data` is base64 of the entry's `data` field when
the entry has only `data` (and optionally `partitionKey`), else base64 of the JSON object of all
its fields; `partitionKey` is the entry's `partitionKey` field, else the stream key.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from lamina.errors import InvalidParameterValueException
from lamina.sources.base import (
    CreateRequest,
    MappingConfig,
    Record,
    Source,
    SourceContext,
    SourceKind,
    SourceUnavailable,
    arn_service,
    problem,
)
from lamina.sources.streams import (
    CONNECTION_PROBLEM,
    STREAM_MEMBERS,
    batch_info,
    check_stream_settings,
    record_size,
)

log = logging.getLogger(__name__)

SERVICE = "redis"
ENDPOINT_KEY = "REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"
SHARD_ID = "shardId-000000000000"
CONSUMER = "lamina"
POLL_BLOCK_MS = 1000  # one XREADGROUP waits this long for new entries
SOCKET_TIMEOUT_S = 15.0
MAX_ENTRY_ID = (2**64) - 1


def stream_key(arn: str) -> str | None:
    """The stream key an EventSourceArn names, or None when it is not a Redis stream ARN."""
    if arn_service(arn) != SERVICE:
        return None
    resource = arn.split(":", 5)[5]
    if not resource.startswith("stream/") or resource == "stream/":
        return None
    return resource.removeprefix("stream/")


def group_name(mapping: MappingConfig) -> str:
    return f"lamina-{mapping.uuid}"


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def start_id(mapping: MappingConfig) -> str:
    """The consumer group's first "last delivered id" for the mapping's StartingPosition."""
    if mapping.starting_position == "TRIM_HORIZON":
        return "0"
    if mapping.starting_position == "AT_TIMESTAMP" and mapping.starting_position_timestamp:
        ms = int(mapping.starting_position_timestamp * 1000)
        return f"{ms - 1}-{MAX_ENTRY_ID}" if ms > 0 else "0"
    return "$"


def server_url(mapping: MappingConfig) -> str:
    urls = (mapping.endpoints or {}).get(ENDPOINT_KEY) or ()
    return urls[0] if urls else DEFAULT_URL


def entry_record(
    mapping: MappingConfig, key: str, entry_id: str, fields: Mapping[bytes, bytes]
) -> Record:
    named = {k.decode("utf-8", "replace"): v for k, v in fields.items()}
    partition = named.get("partitionKey")
    if "data" in named and set(named) <= {"data", "partitionKey"}:
        data = named["data"]
    else:
        data = json.dumps(
            {k: v.decode("utf-8", "replace") for k, v in named.items()}, separators=(",", ":")
        ).encode()
    arrived_s = parse_id(entry_id)[0] / 1000
    payload: dict[str, Any] = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition.decode("utf-8", "replace") if partition else key,
            "sequenceNumber": entry_id,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrived_s,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD_ID}:{entry_id}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{mapping.account_id}:role/lamina",
        "awsRegion": mapping.region,
        "eventSourceARN": mapping.event_source_arn,
    }
    view = payload
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        view = {**payload, "data": json.loads(data)}
    return Record(
        id=entry_id,
        payload=payload,
        handle=entry_id,
        size=record_size(payload),
        arrived_s=arrived_s,
        filter_view=view,
    )


class RedisStream(Source):
    """One Redis stream read through the mapping's consumer group."""

    def __init__(self, mapping: MappingConfig, key: str, credentials: dict[str, str]) -> None:
        self.mapping = mapping
        self.key = key
        self.group = group_name(mapping)
        self.url = server_url(mapping)
        self.credentials = credentials
        self._client: aioredis.Redis | None = None
        self._cursor = "0"  # "0": read the pending list first; ">": new entries
        self._outstanding: dict[str, tuple[int, int]] = {}  # delivered, not acknowledged
        self._last_acked: str | None = None

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._client is not None:
            return
        client = aioredis.Redis.from_url(
            self.url,
            username=self.credentials.get("username"),
            password=self.credentials.get("password"),
            socket_connect_timeout=5.0,
            socket_timeout=SOCKET_TIMEOUT_S,
            decode_responses=False,
        )
        try:
            await client.ping()
            await self._ensure_group(client)
            await self._claim_orphans(client)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise self._unavailable(exc) from exc
        self._client = client
        self._cursor = "0"

    async def _ensure_group(self, client: aioredis.Redis) -> None:
        """Create the consumer group where it is missing: at the StartingPosition the first
        time, after the last acknowledged entry when the stream or group was deleted since."""
        first = self._last_acked or start_id(self.mapping)
        try:
            await client.xgroup_create(self.key, self.group, id=first, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim_orphans(self, client: aioredis.Redis) -> None:
        """Entries pending for another consumer of the group (a consumer name used before)
        become ours, so that the pending list read after connecting holds every one."""
        cursor: bytes | str = "0-0"
        while True:
            reply = await client.xautoclaim(self.key, self.group, CONSUMER, 0, cursor, count=1000)
            cursor = reply[0]
            if cursor in (b"0-0", "0-0"):
                return

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _unavailable(self, exc: Exception) -> SourceUnavailable:
        log.info("redis stream %s at %s: %s", self.key, self.url, exc)
        if isinstance(exc, AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return SourceUnavailable(problem("Authentication error. " + str(exc)), permanent=True)
        return SourceUnavailable(CONNECTION_PROBLEM)

    # -- reading -----------------------------------------------------------------------------

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        client = self._client
        if client is None:
            raise SourceUnavailable(CONNECTION_PROBLEM)
        try:
            if self._cursor != ">":
                pending = await self._read(client, self._cursor, max_records, None)
                if pending:
                    return pending
                self._cursor = ">"
            records = await self._read(client, ">", max_records, POLL_BLOCK_MS)
            if records and window_s > 0:
                deadline = time.monotonic() + window_s
                while len(records) < max_records and (left := deadline - time.monotonic()) > 0:
                    block = max(1, min(POLL_BLOCK_MS, int(left * 1000)))
                    records += await self._read(client, ">", max_records - len(records), block)
            return records
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream or the group was deleted: set up again
                await self.close()
                raise SourceUnavailable(problem("Stream or consumer group not found.")) from exc
            raise self._unavailable(exc) from exc
        except (RedisError, OSError) as exc:
            await self.close()
            raise self._unavailable(exc) from exc

    async def _read(
        self, client: aioredis.Redis, cursor: str, count: int, block_ms: int | None
    ) -> list[Record]:
        """One XREADGROUP; from the pending list (cursor an id) pages on until a page holds
        records or the list is done."""
        while True:
            reply: Any = await client.xreadgroup(
                self.group, CONSUMER, {self.key: cursor}, count=count, block=block_ms
            )
            entries: list[tuple[bytes, dict[bytes, bytes]]] = [
                entry for _key, got in reply or () for entry in got
            ]
            records: list[Record] = []
            gone: list[str] = []
            for raw_id, fields in entries:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                if cursor != ">":
                    cursor = self._cursor = entry_id  # the pending list is paged by id
                if not fields:  # deleted (XDEL, XTRIM) while pending: nothing to deliver
                    gone.append(entry_id)
                    continue
                self._outstanding[entry_id] = parse_id(entry_id)
                records.append(entry_record(self.mapping, self.key, entry_id, fields))
            if gone:
                await client.xack(self.key, self.group, *gone)
            if records or not entries or cursor == ">":
                return records

    # -- progress ----------------------------------------------------------------------------

    async def acknowledge(self, records: Sequence[Record]) -> None:
        """The checkpoint: every delivered entry up to the last of these is done."""
        if not records:
            return
        upto = parse_id(records[-1].id)
        done = [i for i, pos in self._outstanding.items() if pos <= upto]
        done += [r.id for r in records if r.id not in self._outstanding]
        client = self._client
        if client is None:
            raise SourceUnavailable(CONNECTION_PROBLEM)
        try:
            await client.xack(self.key, self.group, *done)
        except (RedisError, OSError) as exc:
            await self.close()
            raise self._unavailable(exc) from exc
        for entry_id in done:
            self._outstanding.pop(entry_id, None)
        self._last_acked = records[-1].id

    async def release(self, records: Sequence[Record]) -> None:
        """Rewind: the next fetch reads the pending list (everything unacknowledged) again."""
        self._cursor = "0"

    # -- shapes ------------------------------------------------------------------------------

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"Records": [r.payload for r in records]}

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        return {
            "KinesisBatchInfo": batch_info(SHARD_ID, records, self.mapping.event_source_arn or "")
        }


# -- the kind ----------------------------------------------------------------------------------


def _claims(request: CreateRequest) -> bool:
    return arn_service(request.event_source_arn) == SERVICE


async def _check(mapping: MappingConfig, ctx: SourceContext) -> MappingConfig:
    arn = mapping.event_source_arn or ""
    if stream_key(arn) is None:
        raise InvalidParameterValueException(
            f"Invalid Redis stream ARN: {arn}. Expected arn:aws:redis:<region>:<account>:stream/<key>."
        )
    url = server_url(mapping)
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise InvalidParameterValueException(
            f"Invalid {ENDPOINT_KEY} endpoint: {url}. Expected redis://host:port/db."
        )
    return check_stream_settings(mapping, allow_at_timestamp=True)


async def _open(mapping: MappingConfig, ctx: SourceContext) -> list[Source]:
    key = stream_key(mapping.event_source_arn or "")
    assert key is not None  # checked on create
    auth = mapping.access("BASIC_AUTH")
    credentials = ctx.secrets.read(auth) if auth else {}
    return [RedisStream(mapping, key, credentials)]


async def remove(mapping: MappingConfig, ctx: SourceContext) -> None:
    """A deleted mapping's consumer group goes with it (the stream itself stays)."""
    key = stream_key(mapping.event_source_arn or "")
    if key is None:
        return
    auth = mapping.access("BASIC_AUTH")
    credentials = ctx.secrets.read(auth) if auth else {}
    client = aioredis.Redis.from_url(
        server_url(mapping),
        username=credentials.get("username"),
        password=credentials.get("password"),
        socket_connect_timeout=5.0,
        socket_timeout=SOCKET_TIMEOUT_S,
    )
    try:
        await client.xgroup_destroy(key, group_name(mapping))
    except (RedisError, OSError) as exc:
        log.warning("consumer group %s of %s not removed: %s", group_name(mapping), key, exc)
    finally:
        await client.aclose()


REDIS_STREAMS = SourceKind(
    name="redis",
    event_source="aws:kinesis",
    ordered=True,
    default_batch_size=100,
    max_batch_size=10_000,
    claims=_claims,
    open=_open,
    check=_check,
    remove=remove,
    output_members=STREAM_MEMBERS | {"StartingPositionTimestamp"},
)

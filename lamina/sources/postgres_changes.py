"""PostgreSQL table changes as an ordered stream source with DynamoDB Streams semantics.

Naming: EventSourceArn `arn:aws:postgres:<region>:<account>:table/<schema>.<table>` (schema
`public` when left out), optionally followed by `/stream/<StreamViewType>` (NEW_AND_OLD_IMAGES
when left out), like a DynamoDB stream ARN; the database is
`SelfManagedEventSource.Endpoints.POSTGRES_URL` (one `postgresql://` URL), with an optional
BASIC_AUTH SourceAccessConfiguration for the user name and password.

Changes are captured by a trigger into a change log in the same database (postgres_capture.py
says exactly what is installed); the mapping's position is kept there too, so a restart of
Lamina, or a lost connection, resumes right after the last change processed. Records are
DynamoDB stream records; column values are typed as DynamoDB AttributeValues (numbers N,
text and dates S, booleans BOOL, bytea B, json objects M, json arrays and SQL arrays L, NULL).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.types.json import set_json_loads

from lamina.errors import InvalidParameterValueException
from lamina.sources import postgres_capture as capture
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

SERVICE = "postgres"
ENDPOINT_KEY = "POSTGRES_URL"
SHARD_ID = "shardId-00000000000000000000-00000000"
VIEW_TYPES = ("NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY")
WAIT_S = 2.0  # a fetch with nothing to read waits this long for a notification
PRUNE_EVERY_S = 60.0
EVENT_ID_SPACE = uuid.UUID("5b0c9c0e-7f4f-4c2a-9c39-6c6d63646300")


@dataclass(frozen=True, slots=True)
class TableStream:
    schema: str
    table: str
    view_type: str

    @property
    def source(self) -> str:
        return capture.source_name(self.schema, self.table)


def parse_arn(arn: str | None) -> TableStream | None:
    """The table and view type an EventSourceArn names, or None when it is not one of ours."""
    if arn_service(arn) != SERVICE or arn is None:
        return None
    resource = arn.split(":", 5)[5]
    if not resource.startswith("table/"):
        return None
    name, _, view = resource.removeprefix("table/").partition("/stream/")
    if "/" in name or not name:
        return None
    schema, dot, table = name.partition(".")
    if not dot:
        schema, table = "public", name
    view = view or "NEW_AND_OLD_IMAGES"
    if not schema or not table or view not in VIEW_TYPES:
        return None
    return TableStream(schema, table, view)


# -- DynamoDB typing ---------------------------------------------------------------------------


def attribute(value: Any, column_type: str | None = None) -> dict[str, Any]:
    """A JSON value of a row image (to_jsonb of the row) as a DynamoDB AttributeValue."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal | float):
        return {"N": str(value)}
    if isinstance(value, str):
        if column_type == "bytea" and value.startswith("\\x"):
            return {"B": base64.b64encode(bytes.fromhex(value[2:])).decode()}
        return {"S": value}
    if isinstance(value, list):
        element = column_type[1:] if column_type and column_type.startswith("_") else None
        return {"L": [attribute(item, element) for item in value]}
    if isinstance(value, dict):
        return {"M": {k: attribute(v) for k, v in value.items()}}
    return {"S": str(value)}


def image(row: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    return {name: attribute(value, types.get(name)) for name, value in row.items()}


# -- the source --------------------------------------------------------------------------------


class PostgresChanges(Source):
    """The change log of one table, read in sequence order from the mapping's position."""

    def __init__(self, mapping: MappingConfig, stream: TableStream, auth: dict[str, str]) -> None:
        self.mapping = mapping
        self.stream = stream
        self.auth = auth
        self.url = server_url(mapping) or ""
        self._conn: AsyncConnection[Any] | None = None
        self._position = 0  # durable: processed up to here
        self._read_upto = 0  # fetched up to here
        self._types: dict[str, str] = {}
        self._keys: list[str] = []
        self._pruned_at = 0.0

    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = await AsyncConnection.connect(
                make_conninfo(
                    self.url, application_name=f"lamina-{self.mapping.uuid}", **self.auth
                ),
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            set_json_loads(partial(json.loads, parse_float=Decimal), conn)
            self._position = await capture.install(
                conn,
                self.stream.schema,
                self.stream.table,
                self.mapping.uuid,
                self.mapping.starting_position or "LATEST",
            )
            await self._load_columns(conn)
            await conn.execute(f"LISTEN {capture.CHANNEL}")
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            raise self._unavailable(exc) from exc
        self._read_upto = self._position
        self._conn = conn

    async def _load_columns(self, conn: AsyncConnection[Any]) -> None:
        regclass = capture.source_regclass(self.stream.schema, self.stream.table)
        cur = await conn.execute(
            "SELECT a.attname, t.typname, coalesce(a.attnum = ANY(i.indkey), false) "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            [regclass],
        )
        rows = await cur.fetchall()
        self._types = {str(name): str(typ) for name, typ, _key in rows}
        self._keys = [str(name) for name, _typ, key in rows if key]

    def _unavailable(self, exc: Exception) -> SourceUnavailable:
        log.info("postgres changes of %s: %s", self.stream.source, exc)
        if isinstance(exc, psycopg.errors.UndefinedTable):
            return SourceUnavailable(
                problem(f"Table {self.stream.source} does not exist."), permanent=True
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.InvalidPassword):
            return SourceUnavailable(problem(f"Access denied: {exc}".strip()), permanent=True)
        return SourceUnavailable(CONNECTION_PROBLEM)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def _failed(self, exc: Exception) -> SourceUnavailable:
        await self.close()
        return self._unavailable(exc)

    # -- reading -----------------------------------------------------------------------------

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        conn = self._conn
        if conn is None:
            raise SourceUnavailable(CONNECTION_PROBLEM)
        try:
            records = await self._read(conn, max_records)
            if not records:
                await self._wait(conn, WAIT_S)
                records = await self._read(conn, max_records)
            if records and window_s > 0:
                deadline = time.monotonic() + window_s
                while len(records) < max_records and (left := deadline - time.monotonic()) > 0:
                    await self._wait(conn, left)
                    records += await self._read(conn, max_records - len(records))
            return records
        except psycopg.Error as exc:
            raise await self._failed(exc) from exc

    async def _wait(self, conn: AsyncConnection[Any], timeout_s: float) -> None:
        """Until a change of this table is notified, or the time is up. Notifications that came
        while a query ran wait in psycopg's backlog, so none slips between a read and a wait."""
        async for notify in conn.notifies(timeout=timeout_s):
            if notify.payload == self.stream.source:
                return

    async def _read(self, conn: AsyncConnection[Any], limit: int) -> list[Record]:
        cur = await conn.execute(
            "SELECT seq, op, new_image, old_image, extract(epoch FROM created_at)::float8 "
            f"FROM {capture.SCHEMA}.changes WHERE source = %s AND seq > %s ORDER BY seq LIMIT %s",
            [self.stream.source, self._read_upto, limit],
        )
        records = [self._record(*row) for row in await cur.fetchall()]
        if records:
            self._read_upto = int(records[-1].handle)
        return records

    def _record(
        self,
        seq: int,
        op: str,
        new_row: dict[str, Any] | None,
        old_row: dict[str, Any] | None,
        created_s: float,
    ) -> Record:
        view = self.stream.view_type
        row = new_row if new_row is not None else (old_row or {})
        unknown = any(name not in self._types for name in row)
        if unknown:  # a column added since connecting: typed by its JSON value alone
            log.debug("unknown column in a change of %s", self.stream.source)
        keys = {k: row.get(k) for k in self._keys} if self._keys else row
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": int(created_s),
            "Keys": image(keys, self._types),
        }
        if new_row is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["NewImage"] = image(new_row, self._types)
        if old_row is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["OldImage"] = image(old_row, self._types)
        sequence = f"{seq:021d}"
        body["SequenceNumber"] = sequence
        body["SizeBytes"] = record_size(body) - 1
        body["StreamViewType"] = view
        payload: dict[str, Any] = {
            "eventID": uuid.uuid5(EVENT_ID_SPACE, f"{self.stream.source}:{seq}").hex,
            "eventName": op,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.mapping.region,
            "dynamodb": body,
            "eventSourceARN": self.mapping.event_source_arn,
        }
        return Record(
            id=sequence,
            payload=payload,
            handle=seq,
            size=record_size(payload),
            arrived_s=created_s,
        )

    # -- progress ----------------------------------------------------------------------------

    async def acknowledge(self, records: Sequence[Record]) -> None:
        """The checkpoint, in the same database as the log: done up to the last of these."""
        if not records:
            return
        upto = max(int(r.handle) for r in records)
        conn = self._conn
        if conn is None:
            raise SourceUnavailable(CONNECTION_PROBLEM)
        try:
            await conn.execute(
                f"UPDATE {capture.SCHEMA}.consumers SET position = %s "
                "WHERE mapping_uuid = %s AND position < %s",
                [upto, self.mapping.uuid, upto],
            )
            self._position = max(self._position, upto)
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                await capture.prune(conn, self.stream.schema, self.stream.table)
        except psycopg.Error as exc:
            raise await self._failed(exc) from exc

    async def release(self, records: Sequence[Record]) -> None:
        """Rewind: the next fetch starts again right after the checkpoint."""
        self._read_upto = self._position

    # -- shapes ------------------------------------------------------------------------------

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"Records": [r.payload for r in records]}

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        return {
            "DDBStreamBatchInfo": batch_info(SHARD_ID, records, self.mapping.event_source_arn or "")
        }


# -- the kind ----------------------------------------------------------------------------------


def server_url(mapping: MappingConfig) -> str | None:
    urls = (mapping.endpoints or {}).get(ENDPOINT_KEY) or ()
    return urls[0] if urls else None


def credentials(mapping: MappingConfig, ctx: SourceContext) -> dict[str, str]:
    uri = mapping.access("BASIC_AUTH")
    if not uri:
        return {}
    secret = ctx.secrets.read(uri)
    found = {"user": secret.get("username", ""), "password": secret.get("password", "")}
    return {k: v for k, v in found.items() if v}


def _claims(request: CreateRequest) -> bool:
    return arn_service(request.event_source_arn) == SERVICE


async def _check(mapping: MappingConfig, ctx: SourceContext) -> MappingConfig:
    if parse_arn(mapping.event_source_arn) is None:
        raise InvalidParameterValueException(
            f"Invalid PostgreSQL table ARN: {mapping.event_source_arn}. Expected "
            "arn:aws:postgres:<region>:<account>:table/<schema>.<table>[/stream/<StreamViewType>]."
        )
    url = server_url(mapping)
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise InvalidParameterValueException(
            f"SelfManagedEventSource.Endpoints.{ENDPOINT_KEY} must name the database, "
            "as postgresql://user@host:port/dbname."
        )
    return check_stream_settings(mapping, allow_at_timestamp=False)


async def _open(mapping: MappingConfig, ctx: SourceContext) -> list[Source]:
    stream = parse_arn(mapping.event_source_arn)
    assert stream is not None  # checked on create
    return [PostgresChanges(mapping, stream, credentials(mapping, ctx))]


async def remove(mapping: MappingConfig, ctx: SourceContext) -> None:
    """A deleted mapping's consumer row goes; with the table's last mapping, its trigger too."""
    stream = parse_arn(mapping.event_source_arn)
    url = server_url(mapping)
    if stream is None or url is None:
        return
    try:
        auth = credentials(mapping, ctx)
        async with await AsyncConnection.connect(
            make_conninfo(url, **auth), autocommit=True, connect_timeout=5
        ) as conn:
            await capture.uninstall(conn, stream.schema, stream.table, mapping.uuid)
    except (psycopg.Error, SourceUnavailable) as exc:
        log.warning("change capture of %s not removed: %s", stream.source, exc)


POSTGRES_CHANGES = SourceKind(
    name="postgres",
    event_source="aws:dynamodb",
    ordered=True,
    default_batch_size=100,
    max_batch_size=10_000,
    claims=_claims,
    open=_open,
    check=_check,
    remove=remove,
    output_members=STREAM_MEMBERS,
)

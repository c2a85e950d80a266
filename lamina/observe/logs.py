"""Function logs as data: log groups and streams like CloudWatch Logs, kept in the database.

Events are buffered in memory and written in batches (every 100 ms) on the database thread, so
the invoke path never waits for a log write; reads flush first so callers see their own logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from lamina.db import Database

log = logging.getLogger(__name__)

metadata = sa.MetaData()

log_events = sa.Table(
    "log_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("log_group", sa.String(512), nullable=False),
    sa.Column("log_stream", sa.String(512), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("ingestion_time", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_log_events_group_time", "region", "log_group", "timestamp"),
    sa.Index("ix_log_events_stream", "region", "log_group", "log_stream", "id"),
)


@dataclass(frozen=True, slots=True)
class LogEvent:
    id: int
    log_stream: str
    timestamp: int
    ingestion_time: int
    message: str


@dataclass(frozen=True, slots=True)
class LogStreamInfo:
    name: str
    first_event: int
    last_event: int
    last_ingestion: int
    stored_bytes: int


class LogStore:
    def __init__(self, db: Database, flush_interval_s: float = 0.1) -> None:
        self.db = db
        db.create(metadata)
        self.flush_interval_s = flush_interval_s
        self._buffer: list[tuple[object, ...]] = []
        mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = (
            "INSERT INTO log_events (region, log_group, log_stream, timestamp, ingestion_time,"
            f" message) VALUES ({', '.join([mark] * 6)})"
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def append(
        self, region: str, group: str, stream: str, events: Sequence[tuple[int, str]]
    ) -> None:
        now = int(time.time() * 1000)
        self._buffer.extend((region, group, stream, ts, now, msg) for ts, msg in events)

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self.db.run(self._insert, batch)

    def _insert(self, batch: list[tuple[object, ...]]) -> None:
        # One driver-level executemany: SQLAlchemy's per-row parameter processing cost as much
        # as the invocation it logged (profiled), and this thread competes for the GIL.
        with self.db.engine.begin() as conn:
            conn.exec_driver_sql(self._insert_sql, batch)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("writing logs failed")

    # -- reads -----------------------------------------------------------------------------------

    async def groups(self, region: str, prefix: str | None) -> list[tuple[str, int]]:
        await self.flush()
        return await self.db.run(self._groups, region, prefix)

    def _groups(self, region: str, prefix: str | None) -> list[tuple[str, int]]:
        q = (
            sa.select(log_events.c.log_group, sa.func.min(log_events.c.ingestion_time))
            .where(log_events.c.region == region)
            .group_by(log_events.c.log_group)
            .order_by(log_events.c.log_group)
        )
        if prefix:
            q = q.where(log_events.c.log_group.startswith(prefix, autoescape=True))
        with self.db.engine.connect() as conn:
            return [(g, int(t)) for g, t in conn.execute(q)]

    async def streams(self, region: str, group: str) -> list[LogStreamInfo]:
        await self.flush()
        return await self.db.run(self._streams, region, group)

    def _streams(self, region: str, group: str) -> list[LogStreamInfo]:
        c = log_events.c
        q = (
            sa.select(
                c.log_stream,
                sa.func.min(c.timestamp),
                sa.func.max(c.timestamp),
                sa.func.max(c.ingestion_time),
                sa.func.sum(sa.func.length(c.message)),
            )
            .where(c.region == region, c.log_group == group)
            .group_by(c.log_stream)
            .order_by(sa.func.max(c.timestamp).desc())
        )
        with self.db.engine.connect() as conn:
            return [
                LogStreamInfo(
                    name=s,
                    first_event=int(a),
                    last_event=int(b),
                    last_ingestion=int(i),
                    stored_bytes=int(n or 0),
                )
                for s, a, b, i, n in conn.execute(q)
            ]

    async def events(
        self,
        region: str,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        contains: str | None = None,
        limit: int = 10000,
    ) -> list[LogEvent]:
        await self.flush()
        return await self.db.run(
            self._events, region, group, streams, start_ms, end_ms, after_id, contains, limit
        )

    def _events(
        self,
        region: str,
        group: str,
        streams: Sequence[str] | None,
        start_ms: int | None,
        end_ms: int | None,
        after_id: int,
        contains: str | None,
        limit: int,
    ) -> list[LogEvent]:
        c = log_events.c
        q = sa.select(c.id, c.log_stream, c.timestamp, c.ingestion_time, c.message).where(
            c.region == region, c.log_group == group, c.id > after_id
        )
        if streams:
            q = q.where(c.log_stream.in_(list(streams)))
        if start_ms is not None:
            q = q.where(c.timestamp >= start_ms)
        if end_ms is not None:
            q = q.where(c.timestamp <= end_ms)
        if contains:
            q = q.where(c.message.contains(contains, autoescape=True))
        q = q.order_by(c.id).limit(limit)
        with self.db.engine.connect() as conn:
            return [LogEvent(*row) for row in conn.execute(q)]

    async def delete_group(self, region: str, group: str) -> None:
        await self.flush()
        await self.db.run(self._delete_group, region, group)

    def _delete_group(self, region: str, group: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                log_events.delete().where(
                    log_events.c.region == region, log_events.c.log_group == group
                )
            )

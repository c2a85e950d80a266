"""The durable queue of asynchronous invocations.

Every accepted Event invocation is a row committed before the 202 goes out. A row is eligible
when `not_before_ms` has passed: a pending event that is due, or a leased one whose lease ran
out (its holder died or hung). Leasing sets `not_before_ms` to the lease's expiry and bumps
`lease_token`, a fencing token: a completion or a retry commits only if the token is still the
one it leased with, so an event re-leased elsewhere is never finished twice by a stale holder.
Completion deletes the row and writes its destination records (queue messages, or new events
for destination functions) in the same transaction. Delivery is at least once.

Writes from concurrent callers are group-committed: while one transaction runs on the database
thread, the next ones gather and go in together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lamina.db import Database
from lamina.queues import NewMessage
from lamina.queues.errors import QueueError
from lamina.queues.store import lookup_arn_in, send_in

log = logging.getLogger(__name__)

T = TypeVar("T")

metadata = sa.MetaData()

async_events = sa.Table(
    "async_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("function_name", sa.String(64), nullable=False),
    sa.Column("qualifier", sa.String(128), nullable=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("enqueued_ms", sa.BigInteger, nullable=False),
    sa.Column("not_before_ms", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),  # pending | leased
    sa.Column("lease_token", sa.Integer, nullable=False, default=0),
    sa.Column("lease_ms", sa.Integer, nullable=False),
    sa.Column("function_errors", sa.Integer, nullable=False, default=0),
    sa.Column("invoke_count", sa.Integer, nullable=False, default=0),
    sa.Column("throttles", sa.Integer, nullable=False, default=0),
    sa.Column("last_failure", sa.Text, nullable=True),  # JSON: the last function error's response
    sa.Index("ix_async_events_due", "not_before_ms", "id"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class NewEvent:
    request_id: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    lease_s: float  # how long an attempt may hold the event: the function's timeout and a margin
    enqueued_ms: int = field(default_factory=now_ms)


@dataclass(frozen=True, slots=True)
class AsyncEvent:
    id: int
    request_id: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    enqueued_ms: int
    lease_token: int
    function_errors: int
    invoke_count: int
    throttles: int
    last_failure: str | None


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A destination record or dead-letter message for one of Lamina's queues."""

    queue_arn: str
    body: str
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)


Delivery = QueueMessage | NewEvent


class AsyncQueue(Protocol):
    on_enqueue: Callable[[], None] | None  # called when events were added (wakes the worker)

    async def recover(self, *, every_lease: bool) -> int:
        """Make leased events eligible again: expired leases, or all (a single node restarting)."""
        ...

    async def enqueue(self, event: NewEvent) -> None:
        """Return once the event is durable."""
        ...

    async def enqueue_with(
        self, record: Callable[[Connection], Sequence[NewEvent] | None]
    ) -> list[NewEvent] | None:
        """Run `record` and insert the events it returns in one transaction (a trigger records
        that it fired together with what it enqueued); None from `record` writes nothing more."""
        ...

    async def lease(self, limit: int) -> tuple[list[AsyncEvent], int | None]:
        """Lease up to `limit` due events; also when (epoch ms) the next one falls due."""
        ...

    async def reschedule(
        self,
        event: AsyncEvent,
        *,
        delay_s: float,
        function_errors: int,
        invoke_count: int,
        throttles: int,
        last_failure: str | None,
    ) -> bool:
        """Give the event back, due after `delay_s`; False if the lease was lost."""
        ...

    async def complete(self, event: AsyncEvent, deliveries: Sequence[Delivery]) -> bool:
        """Remove the event and write its deliveries atomically; False if the lease was lost."""
        ...

    async def release(self, events: Sequence[AsyncEvent]) -> None:
        """Give leased events back at once (shutdown)."""
        ...

    def depth(self) -> int: ...


class _GroupCommit:
    """Run operations many per transaction on the database thread, in submission order.

    The two most frequent ones are merged into single statements: new events (one multi-row
    INSERT) and completions without deliveries (one DELETE ... RETURNING over the fenced ids).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._deletes: list[tuple[tuple[int, int], asyncio.Future[Any]]] = []
        self._ops: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    def _future(self) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return loop.create_future()

    async def insert(self, values: dict[str, Any]) -> None:
        fut = self._future()
        self._rows.append((values, fut))
        await fut

    async def delete(self, event_id: int, token: int) -> bool:
        fut = self._future()
        self._deletes.append(((event_id, token), fut))
        return bool(await fut)

    async def run(self, op: Callable[[Connection], T]) -> T:
        fut = self._future()
        self._ops.append((op, fut))
        return cast(T, await fut)

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the callers of this loop turn join the first batch
            while self._rows or self._deletes or self._ops:
                rows, self._rows = self._rows, []
                deletes, self._deletes = self._deletes, []
                ops, self._ops = self._ops, []
                futures = [f for _, f in rows] + [f for _, f in deletes] + [f for _, f in ops]
                try:
                    gone, results = await self.db.run(
                        self._apply,
                        [v for v, _ in rows],
                        [k for k, _ in deletes],
                        [o for o, _ in ops],
                    )
                except Exception as exc:
                    log.warning(
                        "group commit of %d failed (%s); retrying singly", len(futures), exc
                    )
                    await self._singly(rows, deletes, ops)
                    continue
                for _, fut in rows:
                    _resolve(fut, None)
                for key, fut in deletes:
                    _resolve(fut, key[0] in gone)
                for (_, fut), result in zip(ops, results, strict=True):
                    _resolve(fut, result)
        finally:
            self._task = None

    async def _singly(
        self,
        rows: list[tuple[dict[str, Any], asyncio.Future[Any]]],
        deletes: list[tuple[tuple[int, int], asyncio.Future[Any]]],
        ops: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]],
    ) -> None:
        """After a failed batch: one transaction per item, so one bad item fails alone."""
        items: list[tuple[str, Any, asyncio.Future[Any]]] = [
            *(("row", v, f) for v, f in rows),
            *(("delete", k, f) for k, f in deletes),
            *(("op", o, f) for o, f in ops),
        ]
        for kind, item, fut in items:
            try:
                gone, results = await self.db.run(
                    self._apply,
                    [item] if kind == "row" else [],
                    [item] if kind == "delete" else [],
                    [item] if kind == "op" else [],
                )
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
                continue
            if kind == "row":
                _resolve(fut, None)
            elif kind == "delete":
                _resolve(fut, item[0] in gone)
            else:
                _resolve(fut, results[0])

    def _apply(
        self,
        rows: list[dict[str, Any]],
        deletes: list[tuple[int, int]],
        ops: list[Callable[[Connection], Any]],
    ) -> tuple[set[int], list[Any]]:
        gone: set[int] = set()
        with self.db.engine.begin() as conn:
            if rows:
                conn.execute(async_events.insert(), rows)
            if deletes:
                # Fenced by token, by primary key only (a row-value IN list would scan the table).
                t = async_events.c
                tokens = dict(deletes)
                for i in range(0, len(deletes), 500):  # stay under SQLite's parameter limit
                    chunk = [k for k, _ in deletes[i : i + 500]]
                    found = conn.execute(sa.select(t.id, t.lease_token).where(t.id.in_(chunk)))
                    mine = [r.id for r in found if tokens[r.id] == r.lease_token]
                    if mine:
                        conn.execute(async_events.delete().where(t.id.in_(mine)))
                        gone.update(mine)
            return gone, [op(conn) for op in ops]


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _row_event(row: Any) -> AsyncEvent:
    return AsyncEvent(
        id=row.id,
        request_id=row.request_id,
        region=row.region,
        function_name=row.function_name,
        qualifier=row.qualifier,
        payload=row.payload,
        enqueued_ms=row.enqueued_ms,
        lease_token=row.lease_token,
        function_errors=row.function_errors,
        invoke_count=row.invoke_count,
        throttles=row.throttles,
        last_failure=row.last_failure,
    )


def _insert_values(event: NewEvent) -> dict[str, Any]:
    return {
        "request_id": event.request_id,
        "region": event.region,
        "function_name": event.function_name,
        "qualifier": event.qualifier,
        "payload": event.payload,
        "enqueued_ms": event.enqueued_ms,
        "not_before_ms": event.enqueued_ms,
        "state": "pending",
        "lease_token": 0,
        "lease_ms": int(event.lease_s * 1000),
        "function_errors": 0,
        "invoke_count": 0,
        "throttles": 0,
    }


class SqlAsyncQueue:
    """AsyncQueue on the shared database (SQLite by default; the SQL is portable)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)
        self._commit = _GroupCommit(db)
        self._depth = 0
        self.on_enqueue: Callable[[], None] | None = None  # wakes the worker

    async def recover(self, *, every_lease: bool) -> int:
        def op(conn: Connection) -> int:
            t = async_events.c
            cond = t.state == "leased"
            if not every_lease:
                cond = sa.and_(cond, t.not_before_ms <= now_ms())
            n = conn.execute(
                async_events.update().where(cond).values(state="pending", not_before_ms=now_ms())
            ).rowcount
            self._depth = int(
                conn.execute(sa.select(sa.func.count()).select_from(async_events)).scalar_one()
            )
            return int(n)

        return await self._commit.run(op)

    def depth(self) -> int:
        """Events held (pending or leased), as of the last count plus changes since."""
        return self._depth

    async def enqueue(self, event: NewEvent) -> None:
        await self._commit.insert(_insert_values(event))
        self._depth += 1
        if self.on_enqueue is not None:
            self.on_enqueue()

    async def enqueue_with(
        self, record: Callable[[Connection], Sequence[NewEvent] | None]
    ) -> list[NewEvent] | None:
        def op(conn: Connection) -> list[NewEvent] | None:
            events = record(conn)
            if events is None:
                return None
            if events:
                conn.execute(async_events.insert(), [_insert_values(e) for e in events])
            return list(events)

        added = await self._commit.run(op)
        if added:
            self._depth += len(added)
            if self.on_enqueue is not None:
                self.on_enqueue()
        return added

    async def lease(self, limit: int) -> tuple[list[AsyncEvent], int | None]:
        def op(conn: Connection) -> tuple[list[AsyncEvent], int | None]:
            now = now_ms()
            t = async_events.c
            due = (
                sa.select(t.id)
                .where(t.not_before_ms <= now)
                .order_by(t.not_before_ms, t.id)
                .limit(limit)
                .scalar_subquery()
            )
            rows = conn.execute(
                async_events.update()
                .where(t.id.in_(due))
                .values(
                    state="leased",
                    lease_token=t.lease_token + 1,
                    not_before_ms=now + t.lease_ms,
                )
                .returning(*async_events.c)
            ).all()
            if not rows:
                nxt = conn.execute(sa.select(sa.func.min(t.not_before_ms))).scalar_one_or_none()
                return [], (int(nxt) if nxt is not None else None)
            return sorted((_row_event(r) for r in rows), key=lambda e: e.id), None

        return await self._commit.run(op)

    async def reschedule(
        self,
        event: AsyncEvent,
        *,
        delay_s: float,
        function_errors: int,
        invoke_count: int,
        throttles: int,
        last_failure: str | None,
    ) -> bool:
        def op(conn: Connection) -> bool:
            t = async_events.c
            return bool(
                conn.execute(
                    async_events.update()
                    .where(t.id == event.id, t.lease_token == event.lease_token)
                    .values(
                        state="pending",
                        not_before_ms=now_ms() + int(delay_s * 1000),
                        function_errors=function_errors,
                        invoke_count=invoke_count,
                        throttles=throttles,
                        last_failure=last_failure,
                    )
                ).rowcount
            )

        return await self._commit.run(op)

    async def complete(self, event: AsyncEvent, deliveries: Sequence[Delivery]) -> bool:
        if not deliveries:
            done = await self._commit.delete(event.id, event.lease_token)
            if done:
                self._depth -= 1
            return done

        def op(conn: Connection) -> bool:
            t = async_events.c
            gone = conn.execute(
                async_events.delete().where(t.id == event.id, t.lease_token == event.lease_token)
            ).rowcount
            if not gone:
                return False
            for item in deliveries:
                if isinstance(item, NewEvent):
                    conn.execute(async_events.insert(), _insert_values(item))
                    continue
                queue = lookup_arn_in(conn, item.queue_arn)
                if queue is None:
                    log.warning(
                        "dropping the record of %s: queue %s does not exist",
                        event.request_id,
                        item.queue_arn,
                    )
                    continue
                try:  # send_in validates before it writes, so a refusal leaves nothing behind
                    send_in(conn, queue, [NewMessage(item.body, item.attributes, None)])
                except QueueError as exc:
                    log.warning(
                        "dropping the record of %s for %s: %s",
                        event.request_id,
                        item.queue_arn,
                        exc.message,
                    )
            return True

        done = await self._commit.run(op)
        if done:
            self._depth -= 1
            added = sum(1 for d in deliveries if isinstance(d, NewEvent))
            if added:
                self._depth += added
                if self.on_enqueue is not None:
                    self.on_enqueue()
        return done

    async def release(self, events: Sequence[AsyncEvent]) -> None:
        if not events:
            return

        def op(conn: Connection) -> None:
            t = async_events.c
            for event in events:
                conn.execute(
                    async_events.update()
                    .where(t.id == event.id, t.lease_token == event.lease_token)
                    .values(state="pending", not_before_ms=now_ms())
                )

        await self._commit.run(op)

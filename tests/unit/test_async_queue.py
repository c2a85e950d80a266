"""The SQL async queue on a real SQLite database: durability, leases and fencing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from lamina.db import Database, sqlite_url
from lamina.invoke.async_queue import NewEvent, SqlAsyncQueue, async_events


def event(n: int, lease_s: float = 60.0) -> NewEvent:
    return NewEvent(
        request_id=f"req-{n}",
        region="us-east-1",
        function_name="f",
        qualifier=None,
        payload=b"{}",
        lease_s=lease_s,
    )


def test_enqueue_lease_complete(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queue = SqlAsyncQueue(db)
        await asyncio.gather(*(queue.enqueue(event(i)) for i in range(50)))
        leased, _ = await queue.lease(100)
        assert sorted(e.request_id for e in leased) == sorted(f"req-{i}" for i in range(50))
        assert all(e.lease_token == 1 for e in leased)
        # Leased events are not handed out again while their lease runs.
        again, next_due = await queue.lease(100)
        assert again == [] and next_due is not None
        done = await asyncio.gather(*(queue.complete(e, []) for e in leased))
        assert all(done)
        assert (await queue.lease(100))[0] == []
        db.close()

    asyncio.run(scenario())


def test_an_expired_lease_is_fenced(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queue = SqlAsyncQueue(db)
        await queue.enqueue(event(1, lease_s=0.0))  # a lease that lapses at once
        (first,), _ = await queue.lease(10)
        (second,), _ = await queue.lease(10)  # re-leased: the first holder is presumed dead
        assert second.lease_token == first.lease_token + 1
        assert not await queue.complete(first, [])  # the stale holder cannot finish it
        assert not await queue.reschedule(
            first, delay_s=0, function_errors=1, invoke_count=1, throttles=0, last_failure=None
        )
        assert await queue.complete(second, [])
        db.close()

    asyncio.run(scenario())


def test_leases_survive_a_restart_and_are_recovered(tmp_path: Path) -> None:
    async def before() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queue = SqlAsyncQueue(db)
        await queue.enqueue(event(1))
        await queue.enqueue(event(2))
        leased, _ = await queue.lease(1)
        assert len(leased) == 1
        db.close()  # as if the process died holding the lease

    async def after() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queue = SqlAsyncQueue(db)
        assert await queue.recover(every_lease=True) == 1
        leased, _ = await queue.lease(10)
        assert sorted(e.request_id for e in leased) == ["req-1", "req-2"]
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(async_events)).scalar() == 2
        db.close()

    asyncio.run(before())
    asyncio.run(after())

"""The SQS source on Lamina's real queues (SQLite): a batch is settled with one delete
transaction, as Lambda settles a batch with one DeleteMessageBatch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lamina.db import Database, sqlite_url
from lamina.queues import NewMessage, Queues
from lamina.queues.errors import ReceiptHandleIsInvalid
from lamina.sources.base import MappingConfig
from lamina.sources.sqs import SqsSource


def test_a_batch_is_deleted_in_one_transaction(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queues = Queues(db)
        queue = await queues.create("us-east-1", "000000000000", "work", {})
        await queues.send(queue, [NewMessage(f"m{i}", {}) for i in range(10)])
        mapping = MappingConfig(
            uuid="m",
            region="us-east-1",
            account_id="000000000000",
            kind="sqs",
            function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
            event_source_arn=queue.arn,
            batch_size=10,
        )
        source = SqsSource(mapping, queues, 3)
        records = await source.fetch(10, 0)
        assert len(records) == 10

        commits: list[int] = []

        def on_commit(_conn: Any) -> None:
            commits.append(1)

        sa.event.listen(db.engine, "commit", on_commit)
        await source.acknowledge(records)
        sa.event.remove(db.engine, "commit", on_commit)
        assert len(commits) == 1, f"{len(commits)} transactions for one batch"
        counts = await db.run(queues.store.counts, queue)
        assert counts["ApproximateNumberOfMessages"] == 0
        assert counts["ApproximateNumberOfMessagesNotVisible"] == 0
        db.close()

    asyncio.run(scenario())


def test_delete_messages_answers_per_handle(tmp_path: Path) -> None:
    """A stale handle deletes nothing and is no error (as DeleteMessage); an invalid one is
    refused on its own without stopping the others."""

    async def scenario() -> None:
        db = Database(sqlite_url(tmp_path / "q.db"))
        queues = Queues(db)
        queue = await queues.create("us-east-1", "000000000000", "work", {})
        await queues.send(queue, [NewMessage(f"m{i}", {}) for i in range(3)])
        first = await queues.receive(queue, 3, 0, 0)  # visible again at once
        second = await queues.receive(queue, 3, 0, 30)  # new handles; the first ones are stale
        assert len(first) == len(second) == 3
        stale = first[0].receipt_handle
        handles = [stale, "not-a-handle", second[1].receipt_handle, second[2].receipt_handle]
        outcome = await queues.delete_messages(queue, handles)
        assert outcome[0] is None
        assert isinstance(outcome[1], ReceiptHandleIsInvalid)
        assert outcome[2:] == [None, None]
        counts = await db.run(queues.store.counts, queue)
        assert counts["ApproximateNumberOfMessagesNotVisible"] == 1  # second[0] is still there
        db.close()

    asyncio.run(scenario())

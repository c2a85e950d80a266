"""The queues as the rest of Lamina sees them: a name cache, and long polling that waits on the
event loop (woken by sends) while every read and write runs on the database thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lamina.db import Database
from lamina.queues.errors import QueueDoesNotExist, QueueError
from lamina.queues.model import Queue, parse_queue_arn
from lamina.queues.store import NewMessage, QueueStore, ReceivedMessage, SentMessage

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0


class Queues:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = QueueStore(db)
        self._by_name: dict[tuple[str, str], Queue] = {}
        self._signals: dict[int, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for queue in await self.db.run(self.store.load_all):
            self._by_name[(queue.region, queue.name)] = queue
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for signal in self._signals.values():
            signal.set()

    # -- queues ----------------------------------------------------------------------------------

    def get(self, region: str, name: str) -> Queue:
        queue = self._by_name.get((region, name))
        if queue is None:
            raise QueueDoesNotExist("The specified queue does not exist.")
        return queue

    def by_arn(self, arn: str) -> Queue | None:
        parsed = parse_queue_arn(arn)
        if parsed is None:
            return None
        queue = self._by_name.get((parsed[0], parsed[2]))
        return queue if queue is not None and queue.account_id == parsed[1] else None

    def names(self, region: str) -> list[str]:
        return sorted(name for (r, name) in self._by_name if r == region)

    async def create(
        self, region: str, account_id: str, name: str, attributes: dict[str, str]
    ) -> Queue:
        queue = await self.db.run(self.store.create, region, account_id, name, attributes)
        self._by_name[(region, name)] = queue
        return queue

    async def set_attributes(self, queue: Queue, attributes: dict[str, str]) -> Queue:
        updated = await self.db.run(self.store.set_attributes, queue, attributes)
        self._by_name[(queue.region, queue.name)] = updated
        return updated

    async def delete(self, queue: Queue) -> None:
        await self.db.run(self.store.delete, queue)
        self._by_name.pop((queue.region, queue.name), None)
        self.notify(queue.id)

    async def purge(self, queue: Queue) -> None:
        await self.db.run(self.store.purge, queue)

    async def counts(self, queue: Queue) -> dict[str, int]:
        return await self.db.run(self.store.counts, queue)

    # -- messages --------------------------------------------------------------------------------

    async def send(self, queue: Queue, batch: list[NewMessage]) -> list[SentMessage]:
        sent = await self.db.run(self.store.send, queue, batch)
        self.notify(queue.id)
        return sent

    async def receive(
        self, queue: Queue, max_messages: int, wait_s: float, visibility_s: int | None
    ) -> list[ReceivedMessage]:
        """Receive up to `max_messages`; with `wait_s` > 0 wait until one arrives or time is up."""
        deadline = time.monotonic() + wait_s
        while True:
            signal = self._signals.setdefault(queue.id, asyncio.Event())
            got = await self.db.run(self.store.receive, queue, max_messages, visibility_s)
            for moved in got.moved_to:
                self.notify(moved)
            left = deadline - time.monotonic()
            if got.messages or left <= 0 or (queue.region, queue.name) not in self._by_name:
                return got.messages
            if got.next_visible_ms is not None:
                left = min(left, max(0.0, got.next_visible_ms / 1000 - time.time()) + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), left)

    async def delete_message(self, queue: Queue, handle: str) -> None:
        await self.db.run(self.store.delete_message, queue, handle)

    async def delete_messages(self, queue: Queue, handles: list[str]) -> list[QueueError | None]:
        """Delete several messages in one database transaction; per handle None or its error."""
        return await self.db.run(self.store.delete_messages, queue, handles)

    async def change_visibility(self, queue: Queue, handle: str, timeout_s: int) -> None:
        await self.db.run(self.store.change_visibility, queue, handle, timeout_s)
        if timeout_s == 0:
            self.notify(queue.id)

    def notify(self, queue_id: int) -> None:
        """Wake the long polls of a queue (messages were added to it by anyone)."""
        signal = self._signals.pop(queue_id, None)
        if signal is not None:
            signal.set()

    def notify_arn(self, arn: str) -> None:
        queue = self.by_arn(arn)
        if queue is not None:
            self.notify(queue.id)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.db.run(self.store.sweep_expired)
            except Exception:
                log.exception("sweeping expired queue messages failed")

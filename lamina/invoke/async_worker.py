"""The asynchronous invocation worker: leases events from the durable queue and runs them through
the same Dispatcher.invoke as synchronous calls (same environments, same concurrency rules).

Outcomes, as on Lambda:
- success: the event is done; an OnSuccess destination gets a `Success` record;
- function error or timeout: retried MaximumRetryAttempts times (default 2), after
  `retry_base_s` x attempt (Lambda: about 1 minute, then 2); then `RetriesExhausted`;
- throttled (429) or the function not Active: the event waits for capacity a moment, then goes
  back to the queue with exponential backoff from 1 s to 5 min. This does not count as a retry;
- older than MaximumEventAgeInSeconds, or a retry that would land past that age:
  `EventAgeExceeded`.
Failures go to the OnFailure destination and to the function's dead-letter queue. Every attempt
carries the event's request id. The worker holds each event under a lease; if Lamina dies, the
lease lapses (or is recovered at start) and the event runs again: at least once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
from typing import Any

from lamina.control.model import LATEST, FunctionConfig
from lamina.control.names import FunctionRef
from lamina.errors import (
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.invoke.async_queue import (
    AsyncEvent,
    AsyncQueue,
    Delivery,
    NewEvent,
    QueueMessage,
    now_ms,
)
from lamina.invoke.destinations import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    Destinations,
    error_message,
    invocation_record,
    lease_for,
)
from lamina.invoke.dispatcher import Dispatcher, InvokeResult
from lamina.invoke.event_config import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_RETRIES,
    EventInvokeConfig,
    EventInvokeConfigs,
)
from lamina.queues import Queues

log = logging.getLogger(__name__)

THROTTLE_BASE_S = 1.0
THROTTLE_MAX_S = 300.0
THROTTLE_WAIT_S = 1.0  # how long a throttled event waits in memory for capacity before backing off
IDLE_POLL_S = 1.0


def retry_delay_s(base_s: float, function_errors: int) -> float:
    """The wait before the next attempt after the n-th function error (Lambda: 60 s, 120 s)."""
    return base_s * function_errors


def throttle_delay_s(throttles: int, jitter: float = 1.0) -> float:
    """The wait after the n-th throttle: 1 s doubling up to 5 min, times a jitter near 1."""
    return float(min(THROTTLE_BASE_S * 2.0 ** (throttles - 1), THROTTLE_MAX_S) * jitter)


def new_event(
    cfg: FunctionConfig, qualifier: str | None, payload: bytes, *, request_id: str
) -> NewEvent:
    """The queue row of an Event invocation of `cfg` (as submitted, or by a trigger)."""
    return NewEvent(
        request_id=request_id,
        region=cfg.region,
        function_name=cfg.name,
        qualifier=qualifier,
        payload=payload,
        lease_s=lease_for(cfg.timeout_s),
    )


class AsyncWorker:
    def __init__(
        self,
        *,
        queue: AsyncQueue,
        dispatcher: Dispatcher,
        configs: EventInvokeConfigs,
        destinations: Destinations,
        queues: Queues,
        concurrency: int = 32,
        retry_base_s: float = 60.0,
    ) -> None:
        self.queue = queue
        self.dispatcher = dispatcher
        self.configs = configs
        self.destinations = destinations
        self.queues = queues
        self.concurrency = max(1, concurrency)
        self.retry_base_s = retry_base_s
        self._lease_min = max(1, self.concurrency // 4)
        # Events leased ahead (up to `concurrency` of them) so that a freed slot starts the next
        # one without a database round trip; tasks of events being handled; and the tasks that
        # hold a slot (an event holds one while the function runs, not while its outcome commits).
        self._ready: collections.deque[AsyncEvent] = collections.deque()
        self._inflight: dict[asyncio.Task[None], AsyncEvent] = {}
        self._holding: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._maybe_due = True  # events may be due: lease before waiting
        self._next_poll = 0.0  # monotonic time of the next lease when nothing signals arrivals
        self._released = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    # -- accepting -------------------------------------------------------------------------------

    async def submit(
        self, cfg: FunctionConfig, qualifier: str | None, payload: bytes, *, request_id: str
    ) -> None:
        """Accept an Event invocation: returns once it is durable (then the caller sends 202)."""
        await self.queue.enqueue(new_event(cfg, qualifier, payload, request_id=request_id))

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        recovered = await self.queue.recover(every_lease=True)
        if recovered:
            log.info("recovered %d asynchronous events leased before a restart", recovered)
        self.queue.on_enqueue = self._arrived
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop leasing, stop what runs and give its events back (they run after a restart)."""
        self._stopping = True
        self.wake()
        if self._loop is not None:
            await self._loop
        tasks = list(self._inflight)
        events = [*self._inflight.values(), *self._ready]
        self._ready.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.queue.release(events)

    def wake(self) -> None:
        self._wake.set()

    def _due_in(self, delay_s: float) -> None:
        """An event given back is due after `delay_s`: poll no later than that."""
        self._next_poll = min(self._next_poll, time.monotonic() + delay_s)

    def _arrived(self) -> None:
        self._maybe_due = True
        self._wake.set()

    def in_flight(self) -> int:
        return len(self._inflight)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            while self._ready and len(self._holding) < self.concurrency:
                self._start(self._ready.popleft())
            want = self.concurrency - len(self._ready)
            now = time.monotonic()
            if want >= self._lease_min and (self._maybe_due or now >= self._next_poll):
                self._maybe_due = False
                try:
                    events, next_due = await self.queue.lease(want)
                except Exception:
                    log.exception("leasing asynchronous events failed")
                    self._next_poll = now + IDLE_POLL_S
                    continue
                self._ready.extend(events)
                if len(events) == want:
                    self._maybe_due = True  # there may be more
                else:
                    wait_s = IDLE_POLL_S
                    if next_due is not None:
                        wait_s = min(wait_s, max(0.001, next_due / 1000 - time.time()))
                    self._next_poll = now + wait_s
                continue
            if want < self._lease_min:
                await self._wake.wait()  # the buffer is full: wait for a slot to free
            else:
                await self._sleep(max(0.001, self._next_poll - now))

    def _start(self, event: AsyncEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(event))
        self._inflight[task] = event
        self._holding.add(task)
        task.add_done_callback(self._done)

    def _free_slot(self) -> None:
        task = asyncio.current_task()
        if task in self._holding:
            self._holding.discard(task)
            self.wake()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._holding.discard(task)
        self.wake()

    # -- one event -------------------------------------------------------------------------------

    async def _handle(self, event: AsyncEvent) -> None:
        try:
            await self._attempt(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "asynchronous event %s failed in Lamina; it will be retried", event.request_id
            )
            with contextlib.suppress(Exception):
                await self._back_off(event, None)

    async def _attempt(self, event: AsyncEvent) -> None:
        ref = FunctionRef(event.function_name, None, None, None)
        try:
            cfg = self.dispatcher.resolve(event.region, ref, event.qualifier)
        except ResourceNotFoundException:
            log.warning(
                "dropping asynchronous event %s: function %s:%s no longer exists",
                event.request_id,
                event.function_name,
                event.qualifier or LATEST,
            )
            await self.queue.complete(event, [])
            return
        except ResourceConflictException:
            await self._back_off(event, None)
            return
        settings = self.configs.effective(event.region, cfg.name, event.qualifier)
        retries = settings.retries if settings else DEFAULT_RETRIES
        age_limit_s = settings.age_limit_s if settings else DEFAULT_MAX_AGE_S
        deadline_ms = event.enqueued_ms + 1000 * age_limit_s
        last = json.loads(event.last_failure) if event.last_failure else None
        if now_ms() >= deadline_ms:
            await self._fail(event, cfg, settings, EVENT_AGE_EXCEEDED, event.invoke_count, last)
            return
        invoked_arn = cfg.arn if event.qualifier is None else f"{cfg.arn}:{event.qualifier}"
        result = await self._invoke(cfg, event, invoked_arn)
        self._free_slot()
        if result is None:
            await self._back_off(event, deadline_ms)
            return
        count = event.invoke_count + 1
        if result.function_error is None:
            deliveries: list[Delivery] = []
            if settings is not None and settings.on_success:
                record = invocation_record(
                    request_id=event.request_id,
                    function_arn=self._qualified(cfg, event),
                    condition=SUCCESS,
                    invoke_count=count,
                    request_payload=event.payload,
                    executed_version=result.executed_version,
                    function_error=None,
                    response_payload=result.payload,
                )
                found = self.destinations.record_to(settings.on_success, cfg.region, record)
                if found is not None:
                    deliveries.append(found)
            await self._complete(event, deliveries)
            return
        failure = {
            "version": result.executed_version,
            "function_error": result.function_error,
            "payload": result.payload.decode("utf-8", "replace"),
        }
        errors = event.function_errors + 1
        if errors > retries:
            await self._fail(event, cfg, settings, RETRIES_EXHAUSTED, count, failure)
            return
        delay_s = retry_delay_s(self.retry_base_s, errors)
        if now_ms() + 1000 * delay_s >= deadline_ms:
            await self._fail(event, cfg, settings, EVENT_AGE_EXCEEDED, count, failure)
            return
        self._due_in(delay_s)
        await self.queue.reschedule(
            event,
            delay_s=delay_s,
            function_errors=errors,
            invoke_count=count,
            throttles=event.throttles,
            last_failure=json.dumps(failure),
        )

    async def _invoke(
        self, cfg: FunctionConfig, event: AsyncEvent, invoked_arn: str
    ) -> InvokeResult | None:
        """Run one attempt; on a throttle wait a moment for capacity. None: still throttled."""
        give_up = time.monotonic() + THROTTLE_WAIT_S
        while True:
            released = self._released
            try:
                result = await self.dispatcher.invoke(
                    cfg, event.payload, invoked_arn=invoked_arn, request_id=event.request_id
                )
            except TooManyRequestsException:
                left = give_up - time.monotonic()
                if left <= 0 or self._stopping:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), left)
                continue
            self._released = asyncio.Event()
            released.set()
            return result

    async def _back_off(self, event: AsyncEvent, deadline_ms: int | None) -> None:
        throttles = event.throttles + 1
        delay_s = throttle_delay_s(throttles, random.uniform(0.75, 1.25))
        if deadline_ms is not None:
            delay_s = max(0.0, min(delay_s, (deadline_ms - now_ms()) / 1000))
        self._due_in(delay_s)
        await self.queue.reschedule(
            event,
            delay_s=delay_s,
            function_errors=event.function_errors,
            invoke_count=event.invoke_count,
            throttles=throttles,
            last_failure=event.last_failure,
        )

    async def _fail(
        self,
        event: AsyncEvent,
        cfg: FunctionConfig,
        settings: EventInvokeConfig | None,
        condition: str,
        count: int,
        failure: dict[str, Any] | None,
    ) -> None:
        response = failure["payload"].encode() if failure else None
        deliveries: list[Delivery] = []
        if settings is not None and settings.on_failure:
            record = invocation_record(
                request_id=event.request_id,
                function_arn=self._qualified(cfg, event),
                condition=condition,
                invoke_count=count,
                request_payload=event.payload,
                executed_version=failure["version"] if failure else None,
                function_error=failure["function_error"] if failure else None,
                response_payload=response,
            )
            found = self.destinations.record_to(settings.on_failure, cfg.region, record)
            if found is not None:
                deliveries.append(found)
        if cfg.dead_letter_target:
            letter = self.destinations.dead_letter(
                cfg.dead_letter_target,
                event.request_id,
                event.payload,
                error_message(response, condition),
            )
            if letter is not None:
                deliveries.append(letter)
        if not deliveries:
            log.info(
                "asynchronous event %s of %s dropped: %s", event.request_id, cfg.arn, condition
            )
        await self._complete(event, deliveries)

    async def _complete(self, event: AsyncEvent, deliveries: list[Delivery]) -> None:
        if not await self.queue.complete(event, deliveries):
            log.info(
                "event %s was leased again elsewhere; this attempt's outcome is dropped",
                event.request_id,
            )
            return
        for item in deliveries:
            if isinstance(item, QueueMessage):
                self.queues.notify_arn(item.queue_arn)

    @staticmethod
    def _qualified(cfg: FunctionConfig, event: AsyncEvent) -> str:
        return f"{cfg.arn}:{event.qualifier or LATEST}"

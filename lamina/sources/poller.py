"""The poller of one enabled mapping: opens its sources, runs its batch workers, invokes the
function with each batch, settles the records, and reports how it went (LastProcessingResult).

See base.py for the two ways a source is driven (queues, ordered streams). Here:
- nothing is fetched while the function cannot be invoked (missing, not Active);
- a queue mapping of a kind that `scales` (SQS) starts with DEFAULT_QUEUE_WORKERS batches in
  flight (fewer when its ceiling is lower) and, while the source has a backlog, adds SCALE_STEP
  every SCALE_INTERVAL_S up to its ceiling: ScalingConfig.MaximumConcurrency, else the function's
  concurrency (reserved, or the unreserved pool). It does not grow while invocations are
  throttled or fail. A worker whose long poll comes back empty, or whose batch was throttled or
  failed, ends while there are more than the starting number (scale down: +5 a second up, one
  worker less per such batch down). Other queue kinds (RabbitMQ, whose prefetch window is sized
  for it) keep MaximumConcurrency or 5 workers;
- a throttle (429) is retried with backoff, without counting as a failure; queue batches give
  up after THROTTLE_GIVE_UP_S (their records come back by the source's rules), ordered batches
  never do (the partition waits, as Lambda's does);
- a function error makes that worker wait ERROR_BASE_S doubling to ERROR_MAX_S before its next
  fetch (Lambda scales a failing mapping down); a success resets it;
- a source failure (SourceUnavailable, or any exception of a source) closes every source of the
  mapping and opens them again after SOURCE_BASE_S doubling to SOURCE_MAX_S;
- an ordered batch given up is checkpointed only after its OnFailure record was delivered; until
  then the send is retried every DESTINATION_BASE_S doubling to DESTINATION_MAX_S and the shard
  waits (records are never skipped because the destination is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from lamina.errors import (
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from lamina.invoke.dispatcher import InvokeResult
from lamina.sources.base import (
    MAX_PAYLOAD_BYTES,
    NO_RECORDS,
    PROCESSING_OK,
    DestinationUnavailable,
    MappingConfig,
    Record,
    Source,
    SourceContext,
    SourceKind,
    SourceUnavailable,
    failed_items,
    problem,
)
from lamina.sources.filters import Filters, compile_filters

log = logging.getLogger(__name__)

DEFAULT_QUEUE_WORKERS = 5  # Lambda starts an SQS mapping with five concurrent batches
SCALE_INTERVAL_S = 1.0  # queue mappings: how often the number of batches in flight may grow
SCALE_STEP = 5  # ... and by how many: 300 a minute, Lambda's rate of scaling up
IDLE_FETCH_S = 0.5  # a worker waiting this long for records means there is no backlog
THROTTLE_BASE_S = 0.1
THROTTLE_MAX_S = 5.0
THROTTLE_GIVE_UP_S = 30.0
ERROR_BASE_S = 0.5
ERROR_MAX_S = 10.0
SOURCE_BASE_S = 1.0
SOURCE_MAX_S = 60.0
RETRY_BASE_S = 0.5  # ordered batches: the wait before a retry, doubling
RETRY_MAX_S = 30.0
DESTINATION_BASE_S = 1.0  # ordered batches given up: the wait before sending the record again
DESTINATION_MAX_S = 30.0
NOT_READY_S = 1.0

# (mapping, payload) -> the function's result; raises the dispatcher's errors.
InvokeFn = Callable[[MappingConfig, bytes], Awaitable[InvokeResult]]
# (destination ARN, record) -> delivered; for OnFailure records of ordered sources.
SendFailureFn = Callable[[MappingConfig, str, dict[str, Any]], Awaitable[None]]
# mapping -> None when the function can be invoked, else the problem to report.
ReadyFn = Callable[[MappingConfig], str | None]


@dataclass(slots=True)
class MappingStatus:
    """What a running mapping reports through the API."""

    last_result: str = NO_RECORDS


def backoff_s(base: float, cap: float, n: int) -> float:
    """The n-th wait (n >= 1): base doubling up to cap, with a jitter of +-20 %."""
    return float(min(cap, base * 2.0 ** max(0, n - 1)) * random.uniform(0.8, 1.2))


def split_by_size(records: Sequence[Record], limit: int = MAX_PAYLOAD_BYTES) -> list[list[Record]]:
    """Batches whose records add up to at most `limit` bytes (a record over it goes alone)."""
    out: list[list[Record]] = []
    size = 0
    for record in records:
        if not out or size + record.size > limit:
            out.append([])
            size = 0
        out[-1].append(record)
        size += record.size
    return out


def _first_unavailable(group: BaseExceptionGroup[BaseException]) -> SourceUnavailable | None:
    for exc in group.exceptions:
        if isinstance(exc, SourceUnavailable):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_unavailable(exc)
            if found is not None:
                return found
    return None


@dataclass(slots=True, eq=False)
class _Lane:
    """The workers of one queue source: how many there are, their bounds, and what the scaler
    looks at (records fetched since its last look, workers waiting in a fetch since when)."""

    source: Source
    width: int
    floor: int
    ceiling: int
    fed: bool = False
    fetching: dict[asyncio.Task[Any] | None, float] = field(default_factory=dict)


def _reported(config: MappingConfig, batch: list[Record], result: InvokeResult | None) -> bool:
    """Whether the function answered the batch with a valid batchItemFailures list."""
    if result is None or result.function_error is not None or not config.reports_item_failures:
        return False
    return failed_items(result.payload, [r.id for r in batch]) is not None


class _NotReady(Exception):
    """The function cannot be invoked now; the batch is given back."""


class _Stopping(Exception):
    """The poller is stopping while a batch waits; the batch is given back unsettled."""


class Poller:
    def __init__(
        self,
        config: MappingConfig,
        kind: SourceKind,
        ctx: SourceContext,
        *,
        invoke: InvokeFn,
        ready: ReadyFn,
        send_failure: SendFailureFn,
        status: MappingStatus,
    ) -> None:
        self.config = config
        self.kind = kind
        self.ctx = ctx
        self.invoke = invoke
        self.ready = ready
        self.send_failure = send_failure
        self.status = status
        self.filters: Filters = compile_filters(config.filters)
        self._task: asyncio.Task[None] | None = None
        self._sources: list[Source] = []
        self._source_failures = 0
        self._draining = False
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None] | None] = set()  # workers in the middle of a batch
        self._group: asyncio.TaskGroup | None = None
        self._lanes: list[_Lane] = []
        self._throttles = 0  # invocations throttled so far (the scaler holds while they grow)
        self._failures = 0  # queue batches failed so far (likewise)
        self.peak_width = 0  # the most queue batches that were allowed in flight at once

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"mapping-{self.config.uuid}"
        )

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop fetching and invoking. With `grace_s`, batches being processed may finish first
        (idle workers stop at once); what is still running after it is cancelled. Records not
        settled come back by the source's rules."""
        self._stopping.set()
        if self._task is not None and grace_s > 0:
            self._draining = True
            for worker in self._workers:
                if worker not in self._busy:
                    worker.cancel()
            running = [w for w in self._workers if not w.done()]
            if running:
                await asyncio.wait(running, timeout=grace_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_sources()

    def report(self, result: str) -> None:
        if result != self.status.last_result:
            if result.startswith("PROBLEM"):
                log.warning("event source mapping %s: %s", self.config.uuid, result)
            self.status.last_result = result

    async def _close_sources(self) -> None:
        sources, self._sources = self._sources, []
        for source in sources:
            try:
                await source.close()
            except Exception:
                log.debug("closing a source of mapping %s failed", self.config.uuid, exc_info=True)

    async def _run(self) -> None:
        while not self._draining:
            try:
                await self._open_and_work()
            except asyncio.CancelledError:
                raise
            except SourceUnavailable as exc:
                self.report(exc.reason if exc.reason.startswith("PROBLEM") else problem(exc.reason))
                self._source_failures = 99 if exc.permanent else self._source_failures + 1
            except Exception as exc:
                log.exception("event source mapping %s failed", self.config.uuid)
                self.report(problem(f"Internal error: {type(exc).__name__}"))
                self._source_failures += 1
            else:
                return  # the workers ended: the poller is draining
            await self._close_sources()
            await asyncio.sleep(backoff_s(SOURCE_BASE_S, SOURCE_MAX_S, self._source_failures))

    async def _open_and_work(self) -> None:
        self._sources = list(await self.kind.open(self.config, self.ctx))
        for source in self._sources:
            await source.connect()
        if self.status.last_result.startswith("PROBLEM"):
            self.status.last_result = NO_RECORDS
        workers: list[Coroutine[Any, Any, None]] = []
        if self.kind.ordered:
            workers = [self._ordered_worker(s) for s in self._sources]
        else:
            if self.kind.scales:
                ceiling = self._queue_ceiling()
                floor = min(DEFAULT_QUEUE_WORKERS, ceiling)
            else:
                floor = ceiling = self.config.max_concurrency or DEFAULT_QUEUE_WORKERS
            self._lanes = [_Lane(s, floor, floor, ceiling) for s in self._sources]
            self.peak_width = max(self.peak_width, self.queue_width())
            workers = [self._queue_worker(lane) for lane in self._lanes for _ in range(floor)]
            if self.kind.scales:
                workers.append(self._scale_queues())
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._workers = [group.create_task(w) for w in workers]
        except BaseExceptionGroup as failed:
            # One worker's trouble ended them all; report the source's trouble if that was it.
            found = _first_unavailable(failed)
            if found is not None:
                raise found from None
            raise

    # -- common steps ----------------------------------------------------------------------------

    async def _wait_until_ready(self) -> None:
        while True:
            trouble = self.ready(self.config)
            if trouble is None:
                return
            self.report(problem(trouble))
            await asyncio.sleep(NOT_READY_S)

    async def _fetch(self, source: Source) -> list[Record]:
        records = await source.fetch(
            self.config.batch_size, float(self.config.max_batching_window_s)
        )
        self._source_failures = 0
        return records

    def _split_filtered(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        if not self.filters.patterns:
            return records, []
        kept: list[Record] = []
        dropped: list[Record] = []
        for record in records:
            view = record.filter_view if record.filter_view is not None else record.payload
            (kept if self.filters.matches(view) else dropped).append(record)
        return kept, dropped

    async def _invoke_batch(
        self, source: Source, records: list[Record], *, give_up_s: float | None
    ) -> tuple[list[Record], InvokeResult | None]:
        """Invoke once with these records (retrying throttles). The failed records, and the
        result (None when throttled until `give_up_s` ran out)."""
        payload = json.dumps(source.event(records), separators=(",", ":")).encode()
        started = time.monotonic()
        throttles = 0
        while True:
            try:
                result = await self.invoke(self.config, payload)
                break
            except TooManyRequestsException:
                throttles += 1
                self._throttles += 1
                self.report(problem("Function call throttled."))
                if give_up_s is not None and time.monotonic() - started >= give_up_s:
                    return list(records), None
                await asyncio.sleep(backoff_s(THROTTLE_BASE_S, THROTTLE_MAX_S, throttles))
            except (ResourceNotFoundException, ResourceConflictException) as exc:
                self.report(problem(f"Function cannot be invoked: {exc.message}"))
                raise _NotReady from exc
        if result.function_error is not None:
            self.report(problem("Function call failed"))
            return list(records), result
        if self.config.reports_item_failures:
            named = failed_items(result.payload, [r.id for r in records])
            if named is None:
                self.report(problem("Function call failed: invalid batchItemFailures response"))
                return list(records), result
            failed_ids = set(named)
            self.report(PROCESSING_OK)
            return [r for r in records if r.id in failed_ids], result
        self.report(PROCESSING_OK)
        return [], result

    # -- queues ----------------------------------------------------------------------------------

    def queue_width(self) -> int:
        """Queue batches allowed in flight now (the workers of every queue source)."""
        return sum(lane.width for lane in self._lanes)

    def _queue_ceiling(self) -> int:
        """ScalingConfig.MaximumConcurrency, else what the function may run at once."""
        if self.config.max_concurrency:
            return self.config.max_concurrency
        return max(1, self.ctx.function_concurrency(self.config))

    async def _scale_queues(self) -> None:
        """Scale up: every SCALE_INTERVAL_S, a lane whose workers found records and none of
        which waits for any gets SCALE_STEP more, up to its ceiling, unless invocations were
        throttled or failed meanwhile (more batches would only be throttled or fail too)."""
        throttles, failures = self._throttles, self._failures
        while not self._draining:
            await asyncio.sleep(SCALE_INTERVAL_S)
            ceiling = self._queue_ceiling()
            troubled = self._throttles != throttles or self._failures != failures
            throttles, failures = self._throttles, self._failures
            now = time.monotonic()
            for lane in self._lanes:
                lane.ceiling = ceiling
                lane.floor = min(DEFAULT_QUEUE_WORKERS, ceiling)
                waiting = any(now - t >= IDLE_FETCH_S for t in lane.fetching.values())
                if lane.fed and not troubled and not waiting and lane.width < ceiling:
                    more = min(SCALE_STEP, ceiling - lane.width)
                    lane.width += more
                    assert self._group is not None
                    for _ in range(more):
                        self._workers.append(self._group.create_task(self._queue_worker(lane)))
                lane.fed = False
            self.peak_width = max(self.peak_width, self.queue_width())

    async def _queue_worker(self, lane: _Lane) -> None:
        source = lane.source
        errors = 0
        me = asyncio.current_task()
        while not self._draining:
            if lane.width > lane.ceiling:
                lane.width -= 1  # the ceiling was lowered (reserved concurrency)
                return
            await self._wait_until_ready()
            lane.fetching[me] = time.monotonic()
            try:
                records = await self._fetch(source)
            finally:
                lane.fetching.pop(me, None)
            if not records:
                if lane.width > lane.floor:
                    lane.width -= 1  # the source ran dry: scale down to the starting width
                    return
                continue
            lane.fed = True
            throttles = self._throttles
            self._busy.add(me)
            try:
                failed_any = await self._queue_batch(source, records)
            finally:
                self._busy.discard(me)
            if failed_any:
                self._failures += 1
            troubled = failed_any or self._throttles != throttles
            if troubled and lane.width > lane.floor and self.kind.scales:
                lane.width -= 1  # saturated or failing: fewer batches in flight (as Lambda)
                return
            if failed_any:
                errors += 1
                await asyncio.sleep(backoff_s(ERROR_BASE_S, ERROR_MAX_S, errors))
            else:
                errors = 0

    async def _queue_batch(self, source: Source, records: list[Record]) -> bool:
        """Filter, invoke, settle one fetched batch; True when an invocation failed (an error, a
        throttle that lasted, an invalid batchItemFailures answer). Items a function reports
        failed come back too, but do not count: with ReportBatchItemFailures Lambda does not
        slow a mapping down for them."""
        kept, dropped = self._split_filtered(records)
        if dropped:
            await source.acknowledge(dropped)
        failed_any = False
        for number, chunk in enumerate(split_by_size(kept)):
            try:
                failed, result = await self._invoke_batch(
                    source, chunk, give_up_s=THROTTLE_GIVE_UP_S
                )
            except _NotReady:
                await source.release([r for c in split_by_size(kept)[number:] for r in c])
                failed_any = True
                break
            failed_refs = {id(r) for r in failed}
            done = [r for r in chunk if id(r) not in failed_refs]
            if done:
                await source.acknowledge(done)
            if failed:
                await source.release(failed)
                failed_any = failed_any or not _reported(self.config, chunk, result)
        return failed_any

    # -- ordered streams -------------------------------------------------------------------------

    async def _ordered_worker(self, source: Source) -> None:
        while not self._draining:
            await self._wait_until_ready()
            records = await self._fetch(source)
            if not records:
                continue
            me = asyncio.current_task()
            self._busy.add(me)
            try:
                kept, _dropped = self._split_filtered(records)
                try:
                    for chunk in split_by_size(kept):
                        await self._settle_ordered(source, records, chunk)
                except _NotReady:
                    await source.release(records)
                    await asyncio.sleep(NOT_READY_S)
                    continue
                except _Stopping:
                    await source.release(records)
                    return
                await source.acknowledge(records)
            finally:
                self._busy.discard(me)

    async def _settle_ordered(
        self, source: Source, fetched: list[Record], batch: list[Record], depth: int = 0
    ) -> None:
        """Invoke until this batch succeeds or is given up (then sent to OnFailure)."""
        attempts = 0
        pending = batch
        while pending:
            if self._too_old(pending):
                await self._give_up(source, pending, "RecordAgeExceeded", attempts, None)
                return
            failed, result = await self._invoke_batch(source, pending, give_up_s=None)
            attempts += 1
            if not failed:
                return
            if self.config.reports_item_failures and len(failed) < len(pending):
                first = pending.index(failed[0])
                if first > 0:
                    await source.acknowledge(fetched[: fetched.index(pending[first - 1]) + 1])
                pending = pending[first:]
            if self.config.bisect_on_error and len(pending) > 1:
                half = len(pending) // 2
                await self._settle_ordered(source, fetched, pending[:half], depth + 1)
                await self._settle_ordered(source, fetched, pending[half:], depth + 1)
                return
            limit = self.config.max_retry_attempts
            if limit >= 0 and attempts > limit:
                await self._give_up(source, pending, "RetryAttemptsExhausted", attempts, result)
                return
            await asyncio.sleep(backoff_s(RETRY_BASE_S, RETRY_MAX_S, attempts))

    def _too_old(self, records: list[Record]) -> bool:
        limit = self.config.max_record_age_s
        if limit < 0:
            return False
        oldest = min((r.arrived_s for r in records if r.arrived_s), default=None)
        return oldest is not None and time.time() - oldest > limit

    async def _give_up(
        self,
        source: Source,
        records: list[Record],
        condition: str,
        attempts: int,
        result: InvokeResult | None,
    ) -> None:
        log.info(
            "event source mapping %s gives up %d records: %s",
            self.config.uuid,
            len(records),
            condition,
        )
        destination = self.config.on_failure
        if not destination:
            return
        response: dict[str, Any] = {"statusCode": 200}
        if result is not None:
            response["executedVersion"] = result.executed_version
            if result.function_error:
                response["functionError"] = result.function_error
        now = _dt.datetime.now(_dt.UTC)
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.config.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            **source.failure_info(records),
        }
        await self._deliver(destination, record)

    async def _deliver(self, destination: str, record: dict[str, Any]) -> None:
        """Send an on-failure record, as often as it takes: the batch is checkpointed only after
        it arrived, so a missing destination holds the shard rather than losing the records."""
        before = self.status.last_result
        tries = 0
        while True:
            try:
                await self.send_failure(self.config, destination, record)
            except asyncio.CancelledError:
                raise
            except DestinationUnavailable as exc:
                reason = exc.reason
            except Exception as exc:
                log.exception(
                    "event source mapping %s could not send to %s", self.config.uuid, destination
                )
                reason = f"Internal error: {type(exc).__name__}"
            else:
                if tries:
                    log.info(
                        "event source mapping %s: on-failure record delivered to %s after %d "
                        "failed tries",
                        self.config.uuid,
                        destination,
                        tries,
                    )
                    self.report(before)
                return
            tries += 1
            self.report(
                problem(
                    f"The on-failure record could not be sent to {destination}: {reason}. "
                    "The batch is kept and the send retried."
                )
            )
            await self._pause(backoff_s(DESTINATION_BASE_S, DESTINATION_MAX_S, tries))

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless the poller is stopping (then raise _Stopping at once)."""
        if self._stopping.is_set():
            raise _Stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        if self._stopping.is_set():
            raise _Stopping

"""The poller's rules, driven with in-memory sources and a scripted function: ordered retries,
bisection, partial checkpoints, record age, OnFailure records; queue acks, releases, throttles."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

from lamina.errors import TooManyRequestsException
from lamina.invoke.dispatcher import InvokeResult
from lamina.runtime.spec import Outcome
from lamina.sources import poller as poller_module
from lamina.sources.base import (
    DestinationUnavailable,
    MappingConfig,
    Record,
    Source,
    SourceContext,
    SourceKind,
    SourceUnavailable,
)
from lamina.sources.poller import InvokeFn, MappingStatus, Poller, SendFailureFn, split_by_size


def sync(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test in its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())

    return wrapper


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "THROTTLE_BASE_S",
        "ERROR_BASE_S",
        "SOURCE_BASE_S",
        "RETRY_BASE_S",
        "NOT_READY_S",
        "DESTINATION_BASE_S",
    ):
        monkeypatch.setattr(poller_module, name, 0.001)
    monkeypatch.setattr(poller_module, "SCALE_INTERVAL_S", 0.02)


class MemorySource:
    """An ordered or queue-like source over a fixed list of records."""

    def __init__(self, count: int, *, arrived_s: float | None = None) -> None:
        now = time.time() if arrived_s is None else arrived_s
        self.records = [
            Record(id=str(i), payload={"n": i}, size=10, arrived_s=now) for i in range(count)
        ]
        self.cursor = 0  # next to read
        self.checkpoint = -1  # last acknowledged (ordered)
        self.acked: list[str] = []
        self.released: list[str] = []

    async def connect(self) -> None:
        pass

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        batch = self.records[self.cursor : self.cursor + max_records]
        self.cursor += len(batch)
        if not batch:
            await asyncio.sleep(0.01)
        return batch

    async def acknowledge(self, records: Sequence[Record]) -> None:
        self.acked.extend(r.id for r in records)
        self.checkpoint = max(self.checkpoint, *(int(r.id) for r in records))

    async def release(self, records: Sequence[Record]) -> None:
        self.released.extend(r.id for r in records)

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"Records": [r.payload for r in records]}

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"BatchInfo": {"first": records[0].id, "last": records[-1].id}}

    async def close(self) -> None:
        pass


def result(payload: Any = None, error: str | None = None) -> InvokeResult:
    body = b"" if payload is None else json.dumps(payload).encode()
    outcome = Outcome(status="error" if error else "success", payload=body, function_error=error)
    return InvokeResult(body, "application/json", "$LATEST", error, None, outcome)


class Function:
    """Records every batch; `answer(ns)` decides the result of each call."""

    def __init__(self, answer: Callable[[list[int]], InvokeResult]) -> None:
        self.calls: list[list[int]] = []
        self.answer = answer

    async def __call__(self, _mapping: MappingConfig, payload: bytes) -> InvokeResult:
        ns = [r["n"] for r in json.loads(payload)["Records"]]
        self.calls.append(ns)
        return self.answer(ns)


def mapping(**changes: Any) -> MappingConfig:
    base = MappingConfig(
        uuid="m",
        region="us-east-1",
        account_id="000000000000",
        kind="memory",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        batch_size=4,
        max_concurrency=2,
    )
    return dataclasses.replace(base, **changes)


async def ignore_failure(_m: MappingConfig, _arn: str, _record: dict[str, Any]) -> None:
    pass


def make_poller(
    source: MemorySource,
    invoke: InvokeFn,
    *,
    ordered: bool = False,
    scales: bool = False,
    send_failure: SendFailureFn = ignore_failure,
    status: MappingStatus | None = None,
    function_concurrency: int = 1000,
    **changes: Any,
) -> Poller:
    """A poller (not started) over `source` alone, of a "memory" kind, for mapping(**changes)."""

    async def open_sources(_m: MappingConfig, _c: SourceContext) -> list[Source]:
        return [source]

    kind = SourceKind(
        name="memory",
        event_source="memory",
        ordered=ordered,
        default_batch_size=4,
        max_batch_size=100,
        claims=lambda _r: True,
        open=open_sources,
        scales=scales,
    )
    ctx = SourceContext(
        account_id="0",
        data_dir=Path("/nonexistent"),
        checkpoints=None,  # type: ignore[arg-type]
        secrets=None,  # type: ignore[arg-type]
        function_concurrency=lambda _m: function_concurrency,
    )
    return Poller(
        mapping(**changes),
        kind,
        ctx,
        invoke=invoke,
        ready=lambda _m: None,
        send_failure=send_failure,
        status=status if status is not None else MappingStatus(),
    )


async def run(
    source: MemorySource,
    function: Function,
    *,
    ordered: bool,
    until: Callable[[], bool],
    sent: list[dict[str, Any]] | None = None,
    destination_ok: Callable[[], bool] = lambda: True,
    status: MappingStatus | None = None,
    **changes: Any,
) -> MappingStatus:
    async def send_failure(_m: MappingConfig, _arn: str, record: dict[str, Any]) -> None:
        if not destination_ok():
            raise DestinationUnavailable("The specified queue does not exist.")
        if sent is not None:
            sent.append(record)

    status = status if status is not None else MappingStatus()
    poller = make_poller(
        source, function, ordered=ordered, send_failure=send_failure, status=status, **changes
    )
    poller.start()
    deadline = time.monotonic() + 10
    while not until():
        assert time.monotonic() < deadline, "the poller did not get there"
        await asyncio.sleep(0.005)
    await poller.stop()
    return status


# -- ordered -----------------------------------------------------------------------------------


@sync
async def test_ordered_success_checkpoints_each_batch_in_order() -> None:
    source = MemorySource(10)
    fn = Function(lambda ns: result())
    status = await run(source, fn, ordered=True, until=lambda: source.checkpoint == 9)
    assert fn.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert status.last_result == "OK"


@sync
async def test_ordered_retries_then_gives_up_to_on_failure() -> None:
    source = MemorySource(2)
    fn = Function(lambda ns: result({"errorMessage": "x"}, "Unhandled"))
    sent: list[dict[str, Any]] = []
    await run(
        source,
        fn,
        ordered=True,
        until=lambda: source.checkpoint == 1,
        sent=sent,
        max_retry_attempts=2,
        on_failure="arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert fn.calls == [[0, 1]] * 3
    (record,) = sent
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["BatchInfo"] == {"first": "0", "last": "1"}


@sync
async def test_a_batch_given_up_is_not_checkpointed_until_its_record_is_delivered() -> None:
    """The destination is missing: the shard waits (no checkpoint, nothing after the batch is
    invoked) and the mapping says why; once the destination exists the record arrives and the
    stream moves on."""
    source = MemorySource(6)
    fn = Function(lambda ns: result(None, "Unhandled") if 0 in ns else result())
    sent: list[dict[str, Any]] = []
    status = MappingStatus()
    exists = [False]
    refused = [0]

    def destination_ok() -> bool:
        if not exists[0]:
            refused[0] += 1
            if refused[0] >= 3:  # a few refusals observed; the queue is created
                assert source.checkpoint == -1, "checkpointed a batch whose record was not sent"
                assert fn.calls == [[0, 1, 2, 3]], "records after the batch were processed"
                assert "could not be sent" in status.last_result
                exists[0] = True
        return exists[0]

    await run(
        source,
        fn,
        ordered=True,
        until=lambda: source.checkpoint == 5,
        sent=sent,
        destination_ok=destination_ok,
        status=status,
        max_retry_attempts=0,
        on_failure="arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert refused[0] == 3
    assert [r["BatchInfo"] for r in sent] == [{"first": "0", "last": "3"}]
    assert fn.calls == [[0, 1, 2, 3], [4, 5]]
    assert status.last_result == "OK"


@sync
async def test_stopping_while_the_destination_is_missing_checkpoints_nothing() -> None:
    source = MemorySource(2)
    fn = Function(lambda ns: result(None, "Unhandled"))
    status = MappingStatus()
    await run(
        source,
        fn,
        ordered=True,
        until=lambda: "could not be sent" in status.last_result,
        destination_ok=lambda: False,
        status=status,
        max_retry_attempts=0,
        on_failure="arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert source.acked == []


@sync
async def test_bisect_isolates_the_poison_record() -> None:
    source = MemorySource(4)
    fn = Function(lambda ns: result(None, "Unhandled") if 2 in ns else result())
    sent: list[dict[str, Any]] = []
    await run(
        source,
        fn,
        ordered=True,
        until=lambda: source.checkpoint == 3,
        sent=sent,
        max_retry_attempts=0,
        bisect_on_error=True,
        on_failure="arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert fn.calls == [[0, 1, 2, 3], [0, 1], [2, 3], [2], [3]]
    assert [r["BatchInfo"] for r in sent] == [{"first": "2", "last": "2"}]


@sync
async def test_item_failures_checkpoint_before_the_first_failed_and_retry_from_it() -> None:
    source = MemorySource(4)
    failures = {2: 1}  # record 2 fails once

    def answer(ns: list[int]) -> InvokeResult:
        failed = [n for n in ns if failures.get(n, 0) > 0]
        for n in failed:
            failures[n] -= 1
        return result({"batchItemFailures": [{"itemIdentifier": str(n)} for n in failed]})

    fn = Function(answer)
    await run(
        source,
        fn,
        ordered=True,
        until=lambda: source.checkpoint == 3,
        function_response_types=("ReportBatchItemFailures",),
    )
    assert fn.calls == [[0, 1, 2, 3], [2, 3]]
    assert source.acked[:2] == ["0", "1"]


@sync
async def test_records_past_their_age_are_given_up_without_an_invocation() -> None:
    source = MemorySource(2, arrived_s=time.time() - 3600)
    fn = Function(lambda ns: result())
    sent: list[dict[str, Any]] = []
    await run(
        source,
        fn,
        ordered=True,
        until=lambda: source.checkpoint == 1,
        sent=sent,
        max_record_age_s=60,
        on_failure="arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert fn.calls == []
    assert sent[0]["requestContext"]["condition"] == "RecordAgeExceeded"


# -- queues ------------------------------------------------------------------------------------


@sync
async def test_queue_acks_successes_and_releases_reported_failures() -> None:
    source = MemorySource(4)
    fn = Function(
        lambda ns: result({"batchItemFailures": [{"itemIdentifier": "1"}]} if 1 in ns else None)
    )
    await run(
        source,
        fn,
        ordered=False,
        until=lambda: len(source.acked) + len(source.released) == 4,
        function_response_types=("ReportBatchItemFailures",),
    )
    assert sorted(source.acked) == ["0", "2", "3"]
    assert source.released == ["1"]


@sync
async def test_queue_function_error_releases_the_whole_batch() -> None:
    source = MemorySource(3)
    fn = Function(lambda ns: result(None, "Unhandled"))
    status = await run(source, fn, ordered=False, until=lambda: len(source.released) == 3)
    assert source.acked == []
    assert status.last_result == "PROBLEM: Function call failed"


@sync
async def test_throttles_are_retried_not_failed() -> None:
    source = MemorySource(2)
    throttles = [3]

    def answer(ns: list[int]) -> InvokeResult:
        if throttles[0]:
            throttles[0] -= 1
            raise TooManyRequestsException("ReservedFunctionConcurrentInvocationLimitExceeded")
        return result()

    fn = Function(answer)
    status = await run(source, fn, ordered=False, until=lambda: len(source.acked) == 2)
    assert source.released == []
    assert len(fn.calls) == 4
    assert status.last_result == "OK"


@sync
async def test_a_failing_source_is_reported_and_reopened() -> None:
    class Flaky(MemorySource):
        opens = 0

        async def connect(self) -> None:
            Flaky.opens += 1
            if Flaky.opens < 3:
                raise SourceUnavailable("Connection error. Broker away")

    source = Flaky(1)
    fn = Function(lambda ns: result())
    await run(source, fn, ordered=False, until=lambda: source.acked == ["0"])
    assert Flaky.opens == 3


def test_split_by_size_keeps_batches_under_the_payload_limit() -> None:
    records = [Record(id=str(i), payload={}, size=4) for i in range(5)]
    assert [len(b) for b in split_by_size(records, limit=8)] == [2, 2, 1]
    assert [len(b) for b in split_by_size([Record(id="x", payload={}, size=20)], limit=8)] == [1]


@sync
async def test_a_graceful_stop_lets_the_batch_in_flight_finish() -> None:
    source = MemorySource(3)
    called = asyncio.Event()

    async def slow(_m: MappingConfig, payload: bytes) -> InvokeResult:
        called.set()
        await asyncio.sleep(0.3)
        return result()

    poller = make_poller(source, slow)
    poller.start()
    await asyncio.wait_for(called.wait(), 10)
    await poller.stop(grace_s=5)
    assert sorted(source.acked) == ["0", "1", "2"]
    assert source.released == []


async def _scaling_run(
    source: MemorySource, ceiling: int | None, *, function_concurrency: int = 1000
) -> tuple[list[int], Poller]:
    """Drain `source` with a function that takes 20 ms; the number of invocations in flight each
    time one starts, and the poller (still running: the caller stops it). Every start also checks
    that the invocations in flight never exceed the width the poller allows at that moment."""
    in_flight = [0]
    starts: list[int] = []
    widths: list[int] = []
    growing: list[int] = []

    async def slow(_m: MappingConfig, payload: bytes) -> InvokeResult:
        in_flight[0] += 1
        starts.append(in_flight[0])
        widths.append(poller.queue_width())
        assert in_flight[0] <= widths[-1], "more batches in flight than the poller allows"
        if source.cursor < len(source.records):  # no fetch has come back empty yet
            growing.append(widths[-1])
        try:
            await asyncio.sleep(0.02)
        finally:
            in_flight[0] -= 1
        return result()

    poller = make_poller(
        source,
        slow,
        scales=True,
        function_concurrency=function_concurrency,
        max_concurrency=ceiling,
        batch_size=2,
    )
    poller.start()
    deadline = time.monotonic() + 20
    while len(source.acked) < len(source.records):
        assert time.monotonic() < deadline, "the backlog was not drained"
        await asyncio.sleep(0.005)
    assert widths[0] == min(5, ceiling or function_concurrency), "did not start at five"
    assert growing == sorted(growing), "the width shrank while the backlog lasted"
    return starts, poller


@sync
async def test_queue_concurrency_grows_under_a_backlog_up_to_maximum_concurrency() -> None:
    source = MemorySource(600)
    starts, poller = await _scaling_run(source, 12)
    try:
        assert max(starts) == 12, f"did not scale up to MaximumConcurrency: {max(starts)}"
        assert poller.peak_width == 12
        # the source is dry: workers whose polls come back empty end, down to the first five
        deadline = time.monotonic() + 10
        while poller.queue_width() > 5:
            assert time.monotonic() < deadline, f"did not scale down: {poller.queue_width()}"
            await asyncio.sleep(0.01)
        assert poller.queue_width() == 5
    finally:
        await poller.stop()
    assert sorted(source.acked, key=int) == [str(i) for i in range(600)]
    assert max(starts) <= 12


@sync
async def test_without_maximum_concurrency_the_function_concurrency_is_the_ceiling() -> None:
    source = MemorySource(600)
    starts, poller = await _scaling_run(source, None, function_concurrency=8)
    await poller.stop()
    assert max(starts) == 8
    assert poller.peak_width == 8


@sync
async def test_a_maximum_concurrency_below_five_is_the_width_from_the_start() -> None:
    source = MemorySource(100)
    starts, poller = await _scaling_run(source, 2)
    await poller.stop()
    assert max(starts) == 2
    assert poller.peak_width == 2


@sync
async def test_throttles_stop_the_growth_and_shed_workers() -> None:
    """The function may run 6 at once (more are throttled): the mapping may grow past that, but
    sheds a worker per throttled batch instead of climbing to its ceiling of 30."""
    source = MemorySource(800)
    in_flight = [0]
    most = [0]

    async def limited(_m: MappingConfig, payload: bytes) -> InvokeResult:
        if in_flight[0] >= 6:
            raise TooManyRequestsException("Rate Exceeded.")
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await asyncio.sleep(0.01)
        finally:
            in_flight[0] -= 1
        return result()

    poller = make_poller(source, limited, scales=True, max_concurrency=30, batch_size=2)
    poller.start()
    widths: list[int] = []
    deadline = time.monotonic() + 30
    try:
        while len(source.acked) < len(source.records):
            assert time.monotonic() < deadline, "the backlog was not drained"
            if source.cursor < len(source.records):  # the backlog lasts: no poll came back empty
                widths.append(poller.queue_width())
            await asyncio.sleep(0.005)
    finally:
        await poller.stop()
    assert sorted(source.acked, key=int) == [str(i) for i in range(800)]
    assert most[0] == 6
    assert poller.peak_width < 30, "climbed to the ceiling although the function was saturated"
    assert any(b < a for a, b in itertools.pairwise(widths)), "never shed a worker"


@sync
async def test_a_failing_function_is_not_scaled_up() -> None:
    """Lambda scales a failing mapping down, not up: every batch fails, the width stays at 5."""
    source = MemorySource(400)
    fn = Function(lambda ns: result(None, "Unhandled"))

    poller = make_poller(source, fn, scales=True, max_concurrency=20, batch_size=2)
    cap, poller_module.ERROR_MAX_S = poller_module.ERROR_MAX_S, 0.01  # quick pauses after errors
    poller.start()
    deadline = time.monotonic() + 20
    try:
        while len(source.released) < len(source.records):
            assert time.monotonic() < deadline, "the batches were not all tried"
            await asyncio.sleep(0.005)
    finally:
        await poller.stop()
        poller_module.ERROR_MAX_S = cap
    assert poller.peak_width == 5


@sync
async def test_reported_item_failures_neither_slow_nor_shrink_the_mapping() -> None:
    """With ReportBatchItemFailures a batch with some failed items is no failed invocation: the
    mapping still scales up (Lambda does not scale down for them)."""
    source = MemorySource(600)

    async def partly(_m: MappingConfig, payload: bytes) -> InvokeResult:
        first = json.loads(payload)["Records"][0]["n"]
        await asyncio.sleep(0.02)
        return result({"batchItemFailures": [{"itemIdentifier": str(first)}]})

    poller = make_poller(
        source,
        partly,
        scales=True,
        max_concurrency=12,
        batch_size=2,
        function_response_types=("ReportBatchItemFailures",),
    )
    poller.start()
    deadline = time.monotonic() + 20
    try:
        while len(source.acked) + len(source.released) < len(source.records):
            assert time.monotonic() < deadline, "the backlog was not drained"
            await asyncio.sleep(0.005)
    finally:
        await poller.stop()
    assert len(source.released) == 300
    assert poller.peak_width == 12

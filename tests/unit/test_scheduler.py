"""The scheduler on a real SQLite database and async queue, with a clock the test moves."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lamina.control.model import CodeRef, FunctionConfig
from lamina.control.names import FunctionRef
from lamina.db import Database, sqlite_url
from lamina.errors import ResourceNotFoundException
from lamina.invoke.async_queue import SqlAsyncQueue
from lamina.triggers.errors import ValidationException
from lamina.triggers.rules import Rules
from lamina.triggers.scheduler import Scheduler, select_path

REGION = "us-east-1"
ACCOUNT = "000000000000"
T0 = int(dt.datetime(2026, 3, 2, 12, 0, 0, tzinfo=dt.UTC).timestamp() * 1000)
MINUTE = 60_000
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tick"
CODE = CodeRef(sha256_b64="", sha256_hex="", size=0, unzipped_size=0)


def resolve(region: str, ref: FunctionRef, qualifier: str | None) -> FunctionConfig:
    if ref.name != "tick":
        raise ResourceNotFoundException(f"Function not found: {ref.name}")
    return FunctionConfig(
        name=ref.name,
        region=region,
        account_id=ACCOUNT,
        runtime="python3.11",
        handler="f.handler",
        role="arn:aws:iam::000000000000:role/r",
        code=CODE,
        state="Active",
    )


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Node:
    """One Lamina's worth of schedule state on a data dir (a 'process' the test can restart)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.db = Database(sqlite_url(path))
        self.queue = SqlAsyncQueue(self.db)
        self.rules = Rules(self.db, account_id=ACCOUNT, clock_ms=clock)
        self.scheduler = Scheduler(
            self.rules, self.queue, resolve, account_id=ACCOUNT, clock_ms=clock
        )

    async def drain(self) -> list[dict[str, Any]]:
        """Take every queued event (as the worker would) and return the payloads."""
        events, _ = await self.queue.lease(1000)
        for e in events:
            await self.queue.complete(e, [])
        return [json.loads(e.payload) for e in sorted(events, key=lambda e: e.id)]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_rate_rule_fires_once_per_period_and_not_twice(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        node = Node(tmp_path / "db", clock)
        await node.rules.put_rule(REGION, {"Name": "r", "ScheduleExpression": "rate(1 minute)"})
        assert await node.rules.put_targets(REGION, "r", [{"Id": "t", "Arn": FN_ARN}]) == []
        assert await node.scheduler.fire_due() == 0  # not due yet
        clock.ms = T0 + MINUTE
        assert await node.scheduler.fire_due() == 1
        assert await node.scheduler.fire_due() == 0  # the same run never twice
        (event,) = await node.drain()
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["time"] == "2026-03-02T12:01:00Z"
        assert event["resources"] == [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/r"]
        assert event["account"] == ACCOUNT and event["region"] == REGION
        assert event["detail"] == {} and event["version"] == "0"
        clock.ms = T0 + 2 * MINUTE + 500
        assert await node.scheduler.fire_due() == 1
        (event,) = await node.drain()
        assert event["time"] == "2026-03-02T12:02:00Z"
        node.db.close()

    run(scenario)


def test_a_restart_fires_a_missed_run_once_then_keeps_the_grid(tmp_path: Path) -> None:
    async def before() -> None:
        node = Node(tmp_path / "db", Clock(T0))
        await node.rules.put_rule(REGION, {"Name": "r", "ScheduleExpression": "rate(1 minute)"})
        await node.rules.put_targets(REGION, "r", [{"Id": "t", "Arn": FN_ARN}])
        node.scheduler.clock_ms = Clock(T0 + MINUTE)
        assert await node.scheduler.fire_due() == 1
        node.db.close()  # down from 12:01 to 12:10:05

    async def after() -> None:
        clock = Clock(T0 + 10 * MINUTE + 5_000)
        node = Node(tmp_path / "db", clock)
        await node.rules.load()
        events = await node.drain()
        assert [e["time"] for e in events] == ["2026-03-02T12:01:00Z"]  # queued before: kept
        assert await node.scheduler.fire_due() == 1  # eight missed runs: one
        assert await node.scheduler.fire_due() == 0
        (missed,) = await node.drain()
        assert missed["time"] == "2026-03-02T12:02:00Z"  # the first missed run's time
        rule = node.rules.get(REGION, "r")
        assert rule.next_fire_ms == T0 + 11 * MINUTE  # back on the rule's own grid
        clock.ms = T0 + 11 * MINUTE
        assert await node.scheduler.fire_due() == 1
        node.db.close()

    run(before)
    run(after)


def test_a_restart_before_a_run_is_due_does_not_fire_it_early(tmp_path: Path) -> None:
    async def before() -> None:
        node = Node(tmp_path / "db", Clock(T0))
        await node.rules.put_rule(REGION, {"Name": "r", "ScheduleExpression": "rate(5 minutes)"})
        await node.rules.put_targets(REGION, "r", [{"Id": "t", "Arn": FN_ARN}])
        node.db.close()

    async def after() -> None:
        clock = Clock(T0 + 2 * MINUTE)
        node = Node(tmp_path / "db", clock)
        await node.rules.load()
        assert await node.scheduler.fire_due() == 0
        clock.ms = T0 + 5 * MINUTE
        assert await node.scheduler.fire_due() == 1
        node.db.close()

    run(before)
    run(after)


def test_cron_rule_in_utc(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(T0)  # Monday 2 March 2026, 12:00
        node = Node(tmp_path / "db", clock)
        await node.rules.put_rule(
            REGION, {"Name": "c", "ScheduleExpression": "cron(30 12 ? * MON-FRI *)"}
        )
        await node.rules.put_targets(REGION, "c", [{"Id": "t", "Arn": FN_ARN}])
        assert node.rules.get(REGION, "c").next_fire_ms == T0 + 30 * MINUTE
        clock.ms = T0 + 30 * MINUTE
        assert await node.scheduler.fire_due() == 1
        assert node.rules.get(REGION, "c").next_fire_ms == T0 + 30 * MINUTE + 86_400_000
        (event,) = await node.drain()
        assert event["time"] == "2026-03-02T12:30:00Z"
        node.db.close()

    run(scenario)


def test_disabled_rules_do_not_fire_and_enabling_restarts_the_rate(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        node = Node(tmp_path / "db", clock)
        await node.rules.put_rule(
            REGION,
            {"Name": "r", "ScheduleExpression": "rate(1 minute)", "State": "DISABLED"},
        )
        await node.rules.put_targets(REGION, "r", [{"Id": "t", "Arn": FN_ARN}])
        clock.ms = T0 + 5 * MINUTE
        assert await node.scheduler.fire_due() == 0
        await node.rules.set_state(REGION, "r", "ENABLED")
        assert node.rules.get(REGION, "r").next_fire_ms == T0 + 6 * MINUTE
        await node.rules.set_state(REGION, "r", "DISABLED")
        clock.ms = T0 + 7 * MINUTE
        assert await node.scheduler.fire_due() == 0
        assert await node.drain() == []
        node.db.close()

    run(scenario)


def test_a_pattern_only_rule_is_never_scheduled(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = Node(tmp_path / "db", Clock(T0))
        rule = await node.rules.put_rule(
            REGION, {"Name": "p", "EventPattern": json.dumps({"source": ["my.app"]})}
        )
        assert rule.next_fire_ms is None
        node.db.close()

    run(scenario)


def test_inputs_and_missing_functions(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        node = Node(tmp_path / "db", clock)
        await node.rules.put_rule(REGION, {"Name": "r", "ScheduleExpression": "rate(1 minute)"})
        failed = await node.rules.put_targets(
            REGION,
            "r",
            [
                {"Id": "input", "Arn": FN_ARN, "Input": '{"job": "nightly"}'},
                {"Id": "path", "Arn": FN_ARN + ":$LATEST", "InputPath": "$.resources[0]"},
                {"Id": "gone", "Arn": FN_ARN.replace("tick", "gone")},
                {"Id": "queue", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"},
                {"Id": "bad", "Arn": FN_ARN, "Input": "{not json"},
            ],
        )
        assert [f["TargetId"] for f in failed] == ["queue", "bad"]
        clock.ms = T0 + MINUTE
        assert await node.scheduler.fire_due() == 1
        payloads = await node.drain()  # the missing function is skipped, not fatal
        assert payloads == [{"job": "nightly"}, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/r"]
        node.db.close()

    run(scenario)


def test_rule_rules(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = Node(tmp_path / "db", Clock(T0))
        for body, message in [
            ({"Name": "x"}, "Parameter(s) EventPattern or ScheduleExpression must be specified."),
            ({"Name": "x", "ScheduleExpression": "rate(1 minutes)"}, "not valid"),
            ({"Name": "bad name", "ScheduleExpression": "rate(1 minute)"}, "regular expression"),
            ({"Name": "x", "ScheduleExpression": "rate(1 minute)", "State": "ON"}, "enum"),
        ]:
            with pytest.raises(ValidationException, match=re.escape(message)):
                await node.rules.put_rule(REGION, body)
        await node.rules.put_rule(REGION, {"Name": "x", "ScheduleExpression": "rate(1 minute)"})
        await node.rules.put_targets(
            REGION, "x", [{"Id": f"t{i}", "Arn": FN_ARN} for i in range(5)]
        )
        with pytest.raises(Exception, match="maximum"):
            await node.rules.put_targets(REGION, "x", [{"Id": "t5", "Arn": FN_ARN}])
        with pytest.raises(ValidationException, match="has targets"):
            await node.rules.delete_rule(REGION, "x")
        await node.rules.remove_targets(REGION, "x", [f"t{i}" for i in range(5)])
        await node.rules.delete_rule(REGION, "x")
        await node.rules.delete_rule(REGION, "x")  # again: nothing to delete is fine
        node.db.close()

    run(scenario)


def test_select_path() -> None:
    event = {"detail": {"a": [1, {"b": 2}]}, "resources": ["arn"]}
    assert select_path(event, "$") == event
    assert select_path(event, "$.detail.a[1].b") == 2
    assert select_path(event, "$.resources[0]") == "arn"
    assert select_path(event, "$.nothing.here") is None

"""Runs scheduled rules: when a rule falls due, its targets are invoked asynchronously.

Firing is one transaction: the rule's `next_fire_ms` moves on (fenced on the value the scheduler
saw) and one event per target goes into the durable async queue. A crash before the commit
leaves the rule due (it fires after the restart); a crash after it leaves the events queued (the
worker runs them). So each run is enqueued exactly once. Runs that fell due while Lamina was down
are coalesced: the rule fires once at start, with the time of the first missed run, and then
keeps to its schedule from the present.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from lamina.control.model import FunctionConfig
from lamina.control.names import FunctionRef, parse_function_ref
from lamina.errors import LambdaError
from lamina.invoke.async_queue import AsyncQueue, NewEvent
from lamina.invoke.async_worker import new_event
from lamina.triggers.rules import Rule, Rules, fence_fire

log = logging.getLogger(__name__)

MAX_SLEEP_S = 30.0  # re-check at least this often (a safety net; changes wake the loop)
ERROR_PAUSE_S = 1.0
Resolve = Callable[[str, FunctionRef, str | None], FunctionConfig]  # Registry.resolve
_PATH_STEP_RE = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")


def iso_seconds(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(*, rule_arn: str, account_id: str, region: str, time_ms: int) -> dict[str, Any]:
    """EventBridge's Scheduled Event, as a function on AWS receives it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": iso_seconds(time_ms),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def select_path(event: Any, path: str) -> Any:
    """A simple JSONPath (`$`, `$.a.b`, `$.list[0]`); a step that does not exist gives null."""
    value = event
    for name, index in _PATH_STEP_RE.findall(path[1:]):
        if name and isinstance(value, dict):
            value = value.get(name)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


def target_payload(target: dict[str, Any], event: dict[str, Any]) -> bytes:
    if target.get("Input") is not None:
        return str(target["Input"]).encode()
    if target.get("InputPath") is not None:
        return json.dumps(select_path(event, target["InputPath"])).encode()
    return json.dumps(event).encode()


class Scheduler:
    def __init__(
        self,
        rules: Rules,
        queue: AsyncQueue,
        resolve: Resolve,
        *,
        account_id: str,
        clock_ms: Callable[[], int],
    ) -> None:
        self.rules = rules
        self.queue = queue
        self.resolve = resolve
        self.account_id = account_id
        self.clock_ms = clock_ms
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        rules.on_change = self.wake

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        if self._task is not None:
            await self._task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            pause = MAX_SLEEP_S
            try:
                await self.fire_due()
                upcoming = [r.next_fire_ms for r in self.rules.scheduled() if r.next_fire_ms]
                if upcoming:
                    pause = min(pause, max(0.0, (min(upcoming) - self.clock_ms()) / 1000))
            except Exception:
                log.exception("firing scheduled rules failed; trying again shortly")
                pause = ERROR_PAUSE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def fire_due(self) -> int:
        """Fire every rule that is due now; returns how many fired."""
        now = self.clock_ms()
        fired = 0
        for rule in self.rules.scheduled():
            if rule.next_fire_ms is not None and rule.next_fire_ms <= now:
                fired += await self.fire(rule, now)
        return fired

    async def fire(self, seen: Rule, now_ms: int) -> int:
        async with self.rules.lock:
            rule = self.rules.current(seen.key)
            if rule is None or rule.next_fire_ms is None or rule.next_fire_ms > now_ms:
                return 0  # changed or deleted since it was seen
            due_ms = rule.next_fire_ms
            following = self.rules.plan(rule, max(now_ms, due_ms))
            event = scheduled_event(
                rule_arn=self.rules.arn(rule.region, rule.name),
                account_id=self.account_id,
                region=rule.region,
                time_ms=due_ms,
            )
            events = [
                e
                for t in self.rules.targets(rule)
                if (e := self._event(rule, t, event)) is not None
            ]

            def record(conn: Connection) -> list[NewEvent] | None:
                return events if fence_fire(conn, rule, following) else None

            done = await self.queue.enqueue_with(record)
            if done is None:
                log.warning("rule %s moved on elsewhere; this run is skipped", rule.name)
                return 0
            self.rules.fired(rule, following)
        log.info(
            "rule %s fired for %s: %d target(s) invoked",
            rule.name,
            iso_seconds(due_ms),
            len(events),
        )
        return 1

    def _event(self, rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> NewEvent | None:
        arn = target["Arn"]
        try:
            ref = parse_function_ref(arn)
            if (ref.region or rule.region) != rule.region:
                raise LambdaError(f"{arn} is in another region")
            cfg = self.resolve(rule.region, ref, None)
        except LambdaError as exc:
            log.warning("rule %s: target %s not invoked: %s", rule.name, target["Id"], exc)
            return None
        payload = target_payload(target, event)
        return new_event(cfg, ref.qualifier, payload, request_id=str(uuid.uuid4()))

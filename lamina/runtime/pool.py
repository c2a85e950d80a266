"""Pools of execution environments, one per EnvironmentSpec key: warm reuse, scale-out, expiry.

The most recently used idle environment is taken first (its /tmp and globals are warmest); with
none idle a new one is cold-started, so concurrency equals the number of busy environments.
Admission (how many may run) is decided above, in invoke/; the pool never refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from lamina.runtime.environment import Environment
from lamina.runtime.spec import EnvironmentSpec, Invocation, Outcome
from lamina.sandbox import Sandbox

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PoolStats:
    environments: int = 0
    busy: int = 0
    idle: int = 0
    cold_starts: int = 0
    warm_starts: int = 0


class Pool:
    def __init__(
        self,
        sandbox: Sandbox,
        *,
        idle_timeout_s: float,
        init_timeout_s: float,
        freeze_delay_s: float = 0.0,
    ) -> None:
        self.freeze_delay_s = freeze_delay_s
        self.sandbox = sandbox
        self.idle_timeout_s = idle_timeout_s
        self.init_timeout_s = init_timeout_s
        self._idle: dict[tuple[object, ...], list[Environment]] = defaultdict(list)
        self._all: set[Environment] = set()
        self.cold_starts = 0
        self.warm_starts = 0
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def invoke(self, spec: EnvironmentSpec, invocation: Invocation) -> Outcome:
        env = self._take(spec.key)
        if env is None:
            env = Environment(
                spec,
                self.sandbox,
                init_timeout_s=self.init_timeout_s,
                freeze_delay_s=self.freeze_delay_s,
            )
            env.on_dead = self._forget
            self._all.add(env)
            self.cold_starts += 1
            try:
                await env.start()
            except BaseException:
                self._drop(env)
                raise
        else:
            self.warm_starts += 1
        try:
            return await env.invoke(invocation)
        finally:
            self._release(env)

    def retire(self, region: str, name: str, version: str) -> None:
        """Environments of this function version stop: idle ones now, busy ones when done."""
        group = (region, name, version)
        for env in list(self._all):
            if env.spec.group == group:
                env.retired = True
                if env.state != "busy":
                    self._drop(env)

    def stats(self, group: tuple[str, str, str] | None = None) -> PoolStats:
        envs = [e for e in self._all if group is None or e.spec.group == group]
        busy = sum(1 for e in envs if e.state == "busy")
        return PoolStats(
            environments=len(envs),
            busy=busy,
            idle=len(envs) - busy,
            cold_starts=self.cold_starts,
            warm_starts=self.warm_starts,
        )

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        envs = list(self._all)
        for env in envs:
            self._drop(env)
        # Reap them (SIGKILL was sent to every group; this only waits for the kernel).
        waits = [asyncio.ensure_future(env.wait_exited()) for env in envs]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=5.0)
            for task in pending:
                task.cancel()

    def _take(self, key: tuple[object, ...]) -> Environment | None:
        idle = self._idle.get(key)
        while idle:
            env = idle.pop()
            if env.alive and not env.retired:
                return env
            self._drop(env)
        return None

    def _release(self, env: Environment) -> None:
        if env.alive and not env.retired:
            self._idle[env.spec.key].append(env)
        else:
            self._drop(env)

    def _drop(self, env: Environment) -> None:
        env.stop()
        self._forget(env)

    def _forget(self, env: Environment) -> None:
        """The environment is dead (stopped, or its runtime exited): it leaves the pool."""
        self._all.discard(env)
        idle = self._idle.get(env.spec.key)
        if idle is not None:
            with contextlib.suppress(ValueError):
                idle.remove(env)
            if not idle:
                del self._idle[env.spec.key]

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.idle_timeout_s / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            deadline = time.monotonic() - self.idle_timeout_s
            for envs in list(self._idle.values()):
                for env in list(envs):
                    if env.last_used < deadline or not env.alive:
                        self._drop(env)

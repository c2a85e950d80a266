"""Pools of execution environments, one per EnvironmentSpec key: warm reuse, scale-out, expiry.

The most recently used idle environment is taken first (its /tmp and globals are warmest); with
none idle a new one is cold-started, so concurrency equals the number of busy environments.
Admission (how many may run) is decided above, in invoke/; the pool refuses only when the host
is short of memory after evicting idle environments (HostMemoryLow).

A cold start is a snapshot start where it can be (runtime/template.py): a fork of the function
version's template, which did Init once. Provisioned environments are started ahead of traffic,
ready before they are counted, and never expire while their configuration stands.

Spares: once a version has scaled out from its template, the pool keeps `spare_environments`
of its environments forked and initialised ahead of need (Lambda's proactive initialisation),
so the next scale-out takes one at once instead of waiting for a fork, its cgroup moves and its
runtime's connection; another is forked behind it. A spare is not counted among `environments`
(it is shown as `spares`), expires like an idle environment, goes first under memory pressure,
and reports its Init Duration on its first invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from lamina.runtime.environment import Environment, EnvironmentLost
from lamina.runtime.spec import EnvironmentSpec, Invocation, Outcome
from lamina.runtime.template import Template, TemplateUnavailable
from lamina.sandbox import Sandbox

log = logging.getLogger(__name__)

Group = tuple[str, str, str]  # (region, function name, version)

# Environments one invocation may be handed to when each dies before taking its event.
MAX_ATTEMPTS = 3


class HostMemoryLow(Exception):
    """No new environment: the host's available memory is below the floor even after evicting
    every idle environment."""

    def __init__(self, available_mb: int, floor_mb: int) -> None:
        super().__init__(
            f"the host has {available_mb} MB of memory available, below Lamina's floor of "
            f"{floor_mb} MB: no new execution environment can start"
        )
        self.available_mb = available_mb
        self.floor_mb = floor_mb


@dataclass(slots=True)
class Counters:
    """Per function version, since the server started."""

    invocations: int = 0
    cold_starts: int = 0
    snapshot_starts: int = 0  # cold starts that were forks of the version's template
    warm_starts: int = 0
    throttles: int = 0  # counted by the dispatcher (admission) and here (memory)
    evictions: int = 0  # idle environments stopped because the host was short of memory
    init_ms_total: float = 0.0


@dataclass(slots=True)
class PoolStats:
    environments: int = 0
    busy: int = 0
    idle: int = 0
    provisioned: int = 0
    cold_starts: int = 0
    warm_starts: int = 0
    snapshot_starts: int = 0
    invocations: int = 0
    throttles: int = 0
    evictions: int = 0
    templates: int = 0
    spares: int = 0  # initialised ahead of need, not yet used (not counted in environments)
    template_refusals: dict[str, str] = field(default_factory=dict)


def available_memory_mb() -> int:
    """MemAvailable from /proc/meminfo (what the kernel could give without swapping)."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 1 << 30


class Pool:
    def __init__(
        self,
        sandbox: Sandbox,
        *,
        idle_timeout_s: float,
        init_timeout_s: float,
        freeze_delay_s: float = 0.0,
        snapshot_starts: bool = True,
        template_idle_timeout_s: float | None = None,
        min_available_mb: int = 0,
        spare_environments: int = 0,
    ) -> None:
        self.freeze_delay_s = freeze_delay_s
        self.sandbox = sandbox
        self.idle_timeout_s = idle_timeout_s
        self.init_timeout_s = init_timeout_s
        self.snapshot_starts = snapshot_starts
        self.template_idle_timeout_s = (
            template_idle_timeout_s
            if template_idle_timeout_s is not None
            else max(idle_timeout_s, 600.0)
        )
        self.min_available_mb = min_available_mb
        self.spare_environments = spare_environments
        self._spares: dict[tuple[object, ...], list[Environment]] = defaultdict(list)
        self._sparing: dict[tuple[object, ...], asyncio.Task[None]] = {}  # spares being forked
        self._idle: dict[tuple[object, ...], list[Environment]] = defaultdict(list)
        self._all: set[Environment] = set()
        self._templates: dict[tuple[object, ...], asyncio.Future[Template | None]] = {}
        # keys that start plainly: their version, and why
        self._retiring: list[Template] = []  # closed once their last environment is gone
        self._refused: dict[tuple[object, ...], tuple[Group, str]] = {}
        self.counters: dict[Group, Counters] = defaultdict(Counters)
        self.cold_starts = 0
        self.warm_starts = 0
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def invoke(self, spec: EnvironmentSpec, invocation: Invocation) -> Outcome:
        counters = self.counters[spec.group]
        counters.invocations += 1
        attempts = 0
        while True:
            env = self._take(spec.key)
            if env is None:
                self.cold_starts += 1
                counters.cold_starts += 1
                env = self._take_spare(spec.key) or await self._new_environment(spec)
                if env.template is not None:
                    counters.snapshot_starts += 1
                    self._spare_soon(spec, env.template)
            else:
                self.warm_starts += 1
                counters.warm_starts += 1
            attempts += 1
            try:
                # An environment that dies before its runtime fetched the event (for example a
                # runtime exiting while idle, its exit not yet noticed when this call took it)
                # hands the invocation back; it runs in another one. Bounded, in case every new
                # environment dies that way.
                outcome = await env.invoke(invocation, may_lose=attempts < MAX_ATTEMPTS)
            except EnvironmentLost:
                log.info(
                    "environment %s of %s died before its runtime took %s: running it elsewhere",
                    env.id,
                    spec.group,
                    invocation.request_id,
                )
                continue
            finally:
                self._release(env)
            break
        if outcome.init_duration_ms is not None:
            counters.init_ms_total += outcome.init_duration_ms
        return outcome

    async def provision(self, spec: EnvironmentSpec, count: int) -> int:
        """Start `count` more environments of this spec, initialised and idle, that do not
        expire; returns how many became ready (an Init failure stops it short)."""
        started = [
            await self._new_environment(spec, init_type="provisioned-concurrency")
            for _ in range(count)
        ]
        ready = 0
        for env in started:
            try:
                await env.wait_ready(self.init_timeout_s)
            except Exception:
                self._drop(env)
                continue
            env.provisioned = True
            ready += 1
            self._release(env)
        return ready

    def deprovision(self, group: Group, count: int | None = None) -> None:
        """Provisioned environments of this version become ordinary ones (they expire when idle);
        all of them, or `count` of them."""
        for env in list(self._all):
            if env.spec.group == group and env.provisioned and (count is None or count > 0):
                env.provisioned = False
                env.last_used = time.monotonic() - self.idle_timeout_s  # idle ones go at once
                if count is not None:
                    count -= 1

    def provisioned(self, group: Group) -> int:
        return sum(1 for e in self._all if e.spec.group == group and e.provisioned and e.alive)

    def drain(self, region: str, name: str) -> int:
        """Stop the function's idle environments (not provisioned ones), keep its templates: the
        next call is a cold start from the template (what a scale-out from zero costs)."""
        stopped = 0
        for envs in list(self._idle.values()):
            for env in list(envs):
                if env.spec.group[:2] == (region, name) and not env.provisioned:
                    self._drop(env)
                    stopped += 1
        return stopped

    def retire(self, region: str, name: str, version: str) -> None:
        """Environments of this function version stop: idle ones now, busy ones when done."""
        group = (region, name, version)
        for env in list(self._all):
            if env.spec.group == group:
                env.retired = True
                if env.state != "busy":
                    self._drop(env)
        for key, fut in list(self._templates.items()):
            tpl = fut.result() if fut.done() and not fut.exception() else None
            if tpl is not None and tpl.spec.group == group:
                del self._templates[key]
                self._close_template(tpl)
        for key in [k for k, (g, _) in self._refused.items() if g == group]:
            del self._refused[key]

    def stats(self, group: Group | None = None) -> PoolStats:
        everything = [e for e in self._all if group is None or e.spec.group == group]
        envs = [e for e in everything if not (e.proactive and e.invocations == 0)]  # no spares
        busy = sum(1 for e in envs if e.state == "busy")
        templates = [t for t in self._live_templates() if group is None or t.spec.group == group]
        if group is None:
            counters = Counters(cold_starts=self.cold_starts, warm_starts=self.warm_starts)
            for c in self.counters.values():
                counters.invocations += c.invocations
                counters.snapshot_starts += c.snapshot_starts
                counters.throttles += c.throttles
                counters.evictions += c.evictions
        else:
            counters = self.counters.get(group) or Counters()
        return PoolStats(
            environments=len(envs),
            busy=busy,
            idle=len(envs) - busy,
            provisioned=sum(1 for e in envs if e.provisioned),
            cold_starts=counters.cold_starts,
            warm_starts=counters.warm_starts,
            snapshot_starts=counters.snapshot_starts,
            invocations=counters.invocations,
            throttles=counters.throttles,
            evictions=counters.evictions,
            templates=len(templates),
            spares=len(everything) - len(envs),
            template_refusals={
                ":".join(g[1:]): why
                for g, why in self._refused.values()
                if group is None or g == group
            },
        )

    def groups(self) -> list[Group]:
        """Every function version with environments, templates or counters."""
        seen: set[Group] = set(self.counters)
        seen.update(e.spec.group for e in self._all)
        seen.update(t.spec.group for t in self._live_templates())
        return sorted(seen)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for task in list(self._sparing.values()):
            task.cancel()
        envs = list(self._all)
        for env in envs:
            self._drop(env)
        for tpl in [*self._live_templates(), *self._retiring]:
            tpl.close()
        for fut in self._templates.values():
            fut.cancel()
        self._templates.clear()
        # Reap them (SIGKILL was sent to every group; this only waits for the kernel).
        waits = [asyncio.ensure_future(env.wait_exited()) for env in envs]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=5.0)
            for task in pending:
                task.cancel()

    # -- starting environments -------------------------------------------------------------------

    async def _new_environment(
        self, spec: EnvironmentSpec, init_type: str = "on-demand"
    ) -> Environment:
        asked = time.perf_counter()
        self._make_room(spec)
        template = await self._template(spec)
        env = self._environment(spec, template, init_type)
        env.start_clock = asked
        try:
            await env.start()
        except TemplateUnavailable as exc:
            self._forget(env)
            if exc.permanent:
                self._refuse(spec, str(exc))
            else:
                log.warning("plain start for %s: %s", spec.group, exc)
            env = self._environment(spec, None, init_type)
            env.start_clock = asked
            await self._start_plain(env)
        except BaseException:
            self._drop(env)
            raise
        return env

    def _environment(
        self, spec: EnvironmentSpec, template: Template | None, init_type: str
    ) -> Environment:
        env = Environment(
            spec,
            self.sandbox,
            init_timeout_s=self.init_timeout_s,
            freeze_delay_s=self.freeze_delay_s,
            template=template,
            init_type=init_type,
        )
        env.on_dead = self._forget
        self._all.add(env)
        return env

    async def _start_plain(self, env: Environment) -> None:
        try:
            await env.start()
        except BaseException:
            self._drop(env)
            raise

    def _forkable(self, spec: EnvironmentSpec) -> str | None:
        """Why this spec starts plainly (None: it may fork from a template)."""
        if not self.snapshot_starts:
            return "snapshot starts are off (lamina server --snapshot-starts off)"
        if not spec.runtime.startswith("python"):
            return "only Lamina's Python runtime forks (custom runtimes start their own process)"
        if spec.variables.get("LAMINA_SNAPSHOT_START", "").lower() in ("off", "false", "0"):
            return "the function opted out (LAMINA_SNAPSHOT_START=off)"
        if spec.variables.get("LAMINA_NETWORK", spec.network) == "isolated":
            return "isolated network: each environment needs its own relay"
        refused = self._refused.get(spec.key)
        return refused[1] if refused is not None else None

    async def _template(self, spec: EnvironmentSpec) -> Template | None:
        if self._forkable(spec) is not None:
            return None
        fut = self._templates.get(spec.key)
        if fut is not None and fut.done():
            tpl = fut.result()
            if tpl is not None and tpl.alive:
                return tpl
            self._templates.pop(spec.key, None)
            fut = None
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._templates[spec.key] = fut
            tpl = Template(spec, self.sandbox, init_timeout_s=self.init_timeout_s)
            try:
                await tpl.start()
            except TemplateUnavailable as exc:
                if exc.permanent:
                    self._refuse(spec, str(exc))
                fut.set_result(None)
                self._templates.pop(spec.key, None)
                return None
            except BaseException:
                tpl.close()
                fut.set_result(None)
                self._templates.pop(spec.key, None)
                raise
            fut.set_result(tpl)
            return tpl
        return await asyncio.shield(fut)

    def _refuse(self, spec: EnvironmentSpec, why: str) -> None:
        log.info("snapshot starts off for %s: %s", spec.group, why)
        self._refused[spec.key] = (spec.group, why)
        fut = self._templates.pop(spec.key, None)
        if fut is not None and fut.done() and (tpl := fut.result()) is not None:
            self._close_template(tpl)

    def _close_template(self, tpl: Template) -> None:
        """No more forks from it; it stops once no environment forked from it is alive (its
        forks live inside its PID namespace, which ends with it)."""
        tpl.retiring = True
        if not any(e.template is tpl for e in self._all):
            tpl.close()
            with contextlib.suppress(ValueError):
                self._retiring.remove(tpl)
        elif tpl not in self._retiring:
            self._retiring.append(tpl)

    def _live_templates(self) -> list[Template]:
        out = []
        for fut in self._templates.values():
            if fut.done() and (tpl := fut.result()) is not None and not tpl.closed:
                out.append(tpl)
        return out

    # -- memory pressure -------------------------------------------------------------------------

    def _make_room(self, spec: EnvironmentSpec) -> None:
        """Before a new environment: if the host is short of memory, stop idle environments
        (least recently used first, provisioned ones last) and idle templates; refuse if that
        is not enough, rather than let the host swap or the OOM killer choose."""
        if self.min_available_mb <= 0:
            return
        available = available_memory_mb()
        if available >= self.min_available_mb:
            return
        spares = [e for envs in self._spares.values() for e in envs]
        idle = spares + sorted(
            (e for envs in self._idle.values() for e in envs if e.alive),
            key=lambda e: (e.provisioned, e.last_used),
        )
        for env in idle:
            if not (env.proactive and env.invocations == 0):  # spares are not counted
                self.counters[env.spec.group].evictions += 1
            self._drop(env)
            available = available_memory_mb()
            if available >= self.min_available_mb:
                return
        busy_keys = {e.spec.key for e in self._all}
        for key, fut in list(self._templates.items()):
            if key != spec.key and key not in busy_keys and fut.done():
                if (tpl := fut.result()) is not None:
                    self._close_template(tpl)
                del self._templates[key]
        available = available_memory_mb()
        if available < self.min_available_mb:
            self.counters[spec.group].throttles += 1
            raise HostMemoryLow(available, self.min_available_mb)

    # -- bookkeeping -----------------------------------------------------------------------------

    def _take(self, key: tuple[object, ...]) -> Environment | None:
        idle = self._idle.get(key)
        while idle:
            env = idle.pop()
            if env.alive and not env.retired:
                return env
            self._drop(env)
        return None

    def _take_spare(self, key: tuple[object, ...]) -> Environment | None:
        """A spare of this key (forked ahead of need), if one is alive: a scale-out without the
        fork's wait. Its first invocation reports its Init Duration."""
        spares = self._spares.get(key)
        while spares:
            env = spares.pop()
            if not spares:
                del self._spares[key]
            if env.alive and not env.retired:  # one that died unheard hands the call back
                env.last_used = time.monotonic()
                return env
            self._drop(env)
        return None

    def _spare_soon(self, spec: EnvironmentSpec, template: Template) -> None:
        """After a scale-out from a template: fork the next environment ahead of need."""
        if (
            self.spare_environments <= 0
            or spec.key in self._sparing
            or len(self._spares.get(spec.key, ())) >= self.spare_environments
            or template.retiring
        ):
            return
        task = asyncio.get_running_loop().create_task(self._make_spare(spec, template))
        self._sparing[spec.key] = task
        task.add_done_callback(lambda _t: self._sparing.pop(spec.key, None))

    async def _make_spare(self, spec: EnvironmentSpec, template: Template) -> None:
        """Fork spares until there are `spare_environments` of this key (one at a time)."""
        while len(self._spares.get(spec.key, ())) < self.spare_environments:
            if not await self._make_one_spare(spec, template):
                return

    async def _make_one_spare(self, spec: EnvironmentSpec, template: Template) -> bool:
        # Never at the cost of another environment: no spare when memory is short.
        if self.min_available_mb > 0 and available_memory_mb() < 2 * self.min_available_mb:
            return False
        if template.retiring or template.closed:
            return False
        env = self._environment(spec, template, "on-demand")
        env.proactive = True
        try:
            await env.start()
            await env.wait_ready(self.init_timeout_s)
        except Exception as exc:
            log.info("no spare environment for %s: %s", spec.group, exc)
            self._drop(env)
            return False
        except BaseException:
            self._drop(env)
            raise
        if not env.alive or env.retired or template.retiring:
            self._drop(env)
            return False
        self._spares[spec.key].append(env)
        return True

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
        if env.template is not None and env.template.retiring:
            self._close_template(env.template)
        for where in (self._idle, self._spares):
            envs = where.get(env.spec.key)
            if envs is not None:
                with contextlib.suppress(ValueError):
                    envs.remove(env)
                if not envs:
                    del where[env.spec.key]

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.idle_timeout_s / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            deadline = now - self.idle_timeout_s
            for envs in [*self._idle.values(), *self._spares.values()]:
                for env in list(envs):
                    if not env.alive or (env.last_used < deadline and not env.provisioned):
                        self._drop(env)
            in_use = {e.spec.key for e in self._all}
            for key, fut in list(self._templates.items()):
                if not fut.done() or key in in_use:
                    continue
                tpl = fut.result()
                if (
                    tpl is None
                    or not tpl.alive
                    or (tpl.last_used < now - self.template_idle_timeout_s)
                ):
                    if tpl is not None:
                        self._close_template(tpl)
                    del self._templates[key]

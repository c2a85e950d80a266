"""Provisioned concurrency: environments initialised ahead of traffic for a version or an alias.

A configuration names a published version or an alias (never $LATEST) and a count. Lamina keeps
that many environments of the version it resolves to initialised and idle (the pool never
expires them), so invocations within the count never cold-start. Status is IN_PROGRESS until
they are all ready, then READY; FAILED (with a StatusReason) if Init fails or the host is short
of memory. The environments of an alias follow it when it is pointed elsewhere; a lost one (its
runtime crashed) is replaced. Configurations are kept in their own table and survive restarts.

Limits, as Lambda's: the count may not exceed the function's reserved concurrency, nor take the
account's unreserved concurrency below its floor; a version may be provisioned through one
qualifier only (the version itself or one alias that points at it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import sqlalchemy as sa

from lamina.control import validation
from lamina.control.model import LATEST, FunctionConfig
from lamina.control.names import FunctionRef
from lamina.control.registry import Registry
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    LambdaError,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
)
from lamina.runtime.pool import HostMemoryLow, Pool
from lamina.runtime.spec import EnvironmentSpec

log = logging.getLogger(__name__)

LIST_PAGE_MAX = 50
CHECK_INTERVAL_S = 1.0

metadata = sa.MetaData()

provisioned_configs = sa.Table(
    "provisioned_concurrency_configs",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionedConfig:
    region: str
    function_name: str
    qualifier: str
    function_arn: str  # qualified
    requested: int
    last_modified: str
    status: str = "IN_PROGRESS"
    status_reason: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.region, self.function_name, self.qualifier)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class ProvisionedConcurrency:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        pool: Pool,
        spec_for: Callable[[FunctionConfig], EnvironmentSpec],
    ) -> None:
        self.db = db
        self.registry = registry
        self.pool = pool
        self.spec_for = spec_for
        db.create(metadata)
        self._configs: dict[tuple[str, str, str], ProvisionedConfig] = {}
        self._versions: dict[tuple[str, str, str], str] = {}  # config -> version provisioned
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        rows = await self.db.run(self._load_rows)
        for text in rows:
            cfg = ProvisionedConfig(**json.loads(text))
            cfg = replace(cfg, status="IN_PROGRESS", status_reason=None)
            self._configs[cfg.key] = cfg
        self._watch = asyncio.get_running_loop().create_task(self._watch_forever())

    async def close(self) -> None:
        tasks = [t for t in (self._watch, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _load_rows(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(sa.select(provisioned_configs.c.config)).scalars())

    # -- reads -----------------------------------------------------------------------------------

    def available(self, cfg: ProvisionedConfig) -> int:
        version = self._versions.get(cfg.key)
        if version is None:
            return 0
        return min(cfg.requested, self.pool.provisioned((cfg.region, cfg.function_name, version)))

    def get(self, region: str, ref: FunctionRef, qualifier: str | None) -> ProvisionedConfig:
        target = self._target(region, ref, qualifier)
        found = self._configs.get((region, target.name, self._qualifier(ref, qualifier) or LATEST))
        if found is None:
            raise ProvisionedConcurrencyConfigNotFoundException(
                "No Provisioned Concurrency Config found for this function"
            )
        return found

    def list_page(
        self, region: str, ref: FunctionRef, marker: str | None, max_items: int | None
    ) -> tuple[list[ProvisionedConfig], str | None]:
        name = self.registry.record(region, ref).latest.name
        found = sorted(
            (c for (r, n, _), c in self._configs.items() if r == region and n == name),
            key=lambda c: c.qualifier,
        )
        if marker:
            found = [c for c in found if c.qualifier > marker]
        limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
        page = found[:limit]
        return page, (page[-1].qualifier if len(found) > limit else None)

    def total(self, region: str, *, function: str | None = None, skip: object = None) -> int:
        return sum(
            c.requested
            for k, c in self._configs.items()
            if k[0] == region and (function is None or k[1] == function) and k != skip
        )

    # -- writes ----------------------------------------------------------------------------------

    async def put(
        self, region: str, ref: FunctionRef, qualifier: str | None, body: dict[str, object]
    ) -> ProvisionedConfig:
        q = self._qualifier(ref, qualifier)
        if q is None or q == LATEST:
            raise InvalidParameterValueException(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            )
        target = self._target(region, ref, q)
        if "ProvisionedConcurrentExecutions" not in body:
            raise validation.constraint_error(
                None, "provisionedConcurrentExecutions", "Member must not be null"
            )
        requested = validation.int_in_range(
            body["ProvisionedConcurrentExecutions"],
            "provisionedConcurrentExecutions",
            1,
            1_000_000,
        )
        key = (region, target.name, q)
        for other in self._configs.values():
            if (
                other.key != key
                and other.region == region
                and other.function_name == target.name
                and self._version_of(other) == target.version
            ):
                raise ResourceConflictException(
                    f"Provisioned Concurrency Config already exists on {other.function_arn}, "
                    f"which is function version {target.version}."
                )
        record = self.registry.record(region, ref)
        if record.reserved_concurrency is not None:
            if self.total(region, function=target.name, skip=key) + requested > (
                record.reserved_concurrency
            ):
                raise InvalidParameterValueException(
                    "Requested Provisioned Concurrency should not be greater than the "
                    "reservedConcurrentExecution for function"
                )
        else:
            reserved_functions = {
                r.latest.name for r in self.registry.functions(region) if r.reserved_concurrency
            }
            unreserved_provisioned = sum(
                c.requested
                for k, c in self._configs.items()
                if k[0] == region and k != key and k[1] not in reserved_functions
            )
            pool = self.registry.unreserved_concurrency(region)
            if pool - unreserved_provisioned - requested < self.registry.unreserved_floor:
                raise InvalidParameterValueException(
                    "Specified ConcurrentExecutions for function decreases account's "
                    "UnreservedConcurrentExecution below its minimum value of "
                    f"[{self.registry.unreserved_floor}]."
                )
        cfg = ProvisionedConfig(
            region=region,
            function_name=target.name,
            qualifier=q,
            function_arn=f"{target.arn}:{q}" if not target.arn.endswith(f":{q}") else target.arn,
            requested=requested,
            last_modified=_now(),
        )
        await self.db.run(self._write, cfg)
        self._configs[key] = cfg
        self._reconcile(cfg)
        return cfg

    async def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        q = self._qualifier(ref, qualifier)
        if q is None or q == LATEST:
            raise InvalidParameterValueException(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            )
        target = self._target(region, ref, q)
        key = (region, target.name, q)
        found = self._configs.pop(key, None)
        if found is None:
            raise ProvisionedConcurrencyConfigNotFoundException(
                "No Provisioned Concurrency Config found for this function"
            )
        await self.db.run(self._remove, *key)
        self._release(key)

    def forget_deleted(self, region: str, name: str, _version: str) -> None:
        """Registry listener: a deleted function takes its configurations with it."""
        if self.registry.find(region, name) is not None:
            return
        for key in [k for k in self._configs if k[0] == region and k[1] == name]:
            del self._configs[key]
            self._release(key)
            self.db.submit(self._remove, *key)

    # -- keeping the environments ----------------------------------------------------------------

    def _release(self, key: tuple[str, str, str]) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        version = self._versions.pop(key, None)
        if version is not None:
            self.pool.deprovision((key[0], key[1], version))

    def _reconcile(self, cfg: ProvisionedConfig) -> None:
        """Start (or restart) bringing this configuration's environments to its count."""
        running = self._tasks.get(cfg.key)
        if running is not None and not running.done():
            running.cancel()
        self._tasks[cfg.key] = asyncio.get_running_loop().create_task(self._provision(cfg.key))

    async def _provision(self, key: tuple[str, str, str]) -> None:
        cfg = self._configs.get(key)
        if cfg is None:
            return
        try:
            version_cfg = self.registry.resolve(
                cfg.region, FunctionRef(cfg.function_name, None, None, None), cfg.qualifier
            )
        except LambdaError as exc:
            self._set(key, "FAILED", str(exc))
            return
        old = self._versions.get(key)
        if old is not None and old != version_cfg.version:  # an alias moved: follow it
            self.pool.deprovision((cfg.region, cfg.function_name, old))
        self._versions[key] = version_cfg.version
        group = (cfg.region, cfg.function_name, version_cfg.version)
        have = self.pool.provisioned(group)
        if have > cfg.requested:
            self.pool.deprovision(group, have - cfg.requested)
        elif have < cfg.requested:
            spec = self.spec_for(version_cfg)
            try:
                await self.pool.provision(spec, cfg.requested - have)
            except HostMemoryLow as exc:
                self._set(key, "FAILED", str(exc))
                return
            except Exception as exc:
                log.exception("provisioning %s failed", key)
                self._set(key, "FAILED", f"Provisioning failed: {exc}")
                return
        if self.pool.provisioned(group) >= cfg.requested:
            self._set(key, "READY", None)
        else:
            self._set(
                key,
                "FAILED",
                "FUNCTION_ERROR_INIT_FAILURE: the function's Init failed while provisioning "
                "(see its log group)",
            )

    def _set(self, key: tuple[str, str, str], status: str, reason: str | None) -> None:
        cfg = self._configs.get(key)
        if cfg is not None and (cfg.status, cfg.status_reason) != (status, reason):
            self._configs[key] = replace(cfg, status=status, status_reason=reason)

    async def _watch_forever(self) -> None:
        """Start what was configured before a restart; replace lost environments; follow aliases."""
        for cfg in list(self._configs.values()):
            self._reconcile(cfg)
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            for cfg in list(self._configs.values()):
                task = self._tasks.get(cfg.key)
                if task is not None and not task.done():
                    continue
                if cfg.status == "FAILED":
                    continue
                try:
                    current = self.registry.resolve(
                        cfg.region, FunctionRef(cfg.function_name, None, None, None), cfg.qualifier
                    ).version
                except LambdaError:
                    continue
                if current != self._versions.get(cfg.key) or self.available(cfg) < cfg.requested:
                    self._reconcile(cfg)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _qualifier(ref: FunctionRef, qualifier: str | None) -> str | None:
        return qualifier or ref.qualifier

    def _target(self, region: str, ref: FunctionRef, qualifier: str | None) -> FunctionConfig:
        return self.registry.resolve(region, ref, qualifier)

    def _version_of(self, cfg: ProvisionedConfig) -> str | None:
        try:
            return self.registry.resolve(
                cfg.region, FunctionRef(cfg.function_name, None, None, None), cfg.qualifier
            ).version
        except LambdaError:
            return None

    def _write(self, cfg: ProvisionedConfig) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                provisioned_configs.delete().where(
                    (provisioned_configs.c.region == cfg.region)
                    & (provisioned_configs.c.function_name == cfg.function_name)
                    & (provisioned_configs.c.qualifier == cfg.qualifier)
                )
            )
            conn.execute(
                provisioned_configs.insert().values(
                    region=cfg.region,
                    function_name=cfg.function_name,
                    qualifier=cfg.qualifier,
                    config=json.dumps(asdict(cfg)),
                )
            )

    def _remove(self, region: str, name: str, qualifier: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                provisioned_configs.delete().where(
                    (provisioned_configs.c.region == region)
                    & (provisioned_configs.c.function_name == name)
                    & (provisioned_configs.c.qualifier == qualifier)
                )
            )

"""Event source mappings: their rules, their states, and the pollers of the enabled ones.

Held in memory, written through to the database before an answer is given. States follow
Lambda: a create answers `Creating`, an update `Updating` (or `Enabling` / `Disabling` when it
turns the mapping on or off), a delete `Deleting`; the mapping settles (Enabled, Disabled, gone)
on the next loop turn, once its poller was started or stopped. A restart completes a transition a
crash cut short and starts the poller of every enabled mapping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, replace
from typing import Any

from lamina.control.names import FunctionRef, check_scope, parse_function_ref
from lamina.control.registry import Registry
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.invoke.async_worker import AsyncWorker
from lamina.invoke.dispatcher import Dispatcher, InvokeResult
from lamina.queues import NewMessage, Queues
from lamina.queues.errors import QueueError
from lamina.sources.base import (
    CREATING,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    UPDATING,
    USER_INITIATED,
    CreateRequest,
    DestinationUnavailable,
    MappingConfig,
    SourceContext,
    SourceKind,
    SourceKinds,
)
from lamina.sources.poller import MappingStatus, Poller
from lamina.sources.request import parse_changes
from lamina.sources.store import MappingStore

log = logging.getLogger(__name__)

LIST_PAGE_MAX = 100
SETTLED = (ENABLED, DISABLED)


@dataclass(slots=True)
class MappingEntry:
    """A mapping as the API shows it: its settings, state, and its poller's report."""

    config: MappingConfig
    state: str
    state_reason: str
    status: MappingStatus
    poller: Poller | None = None


class Mappings:
    def __init__(
        self,
        *,
        db: Database,
        kinds: SourceKinds,
        ctx: SourceContext,
        registry: Registry,
        dispatcher: Dispatcher,
        queues: Queues | None,
        async_worker: AsyncWorker | None = None,  # for OnFailure destinations that are functions
    ) -> None:
        self.db = db
        self.store = MappingStore(db)
        self.kinds = kinds
        self.ctx = dataclasses.replace(
            ctx,
            function_timeout_s=self._function_timeout_s,
            function_concurrency=self._function_concurrency,
        )
        self.registry = registry
        self.dispatcher = dispatcher
        self.queues = queues
        self.async_worker = async_worker
        self._entries: dict[str, MappingEntry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        for stored in await self.db.run(self.store.load_all):
            config = stored.config
            if config.kind not in self.kinds.names():
                log.warning(
                    "event source mapping %s needs source kind %r, which this server lacks",
                    config.uuid,
                    config.kind,
                )
            if stored.state == DELETING:
                await self.db.run(self.store.remove, config.uuid)
                continue
            state = ENABLED if config.enabled else DISABLED
            entry = MappingEntry(config, state, stored.state_reason, MappingStatus())
            self._entries[config.uuid] = entry
            if state != stored.state:
                await self.db.run(self.store.put, config, state, stored.state_reason)
            if config.enabled:
                self._start_poller(entry)
        log.debug("loaded %d event source mappings", len(self._entries))

    async def close(self) -> None:
        self._closing = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await asyncio.gather(
            *(self._stop_poller(e, graceful=False) for e in self._entries.values()),
            return_exceptions=True,
        )

    # -- reads -----------------------------------------------------------------------------------

    def get(self, region: str, uuid: str) -> MappingEntry:
        entry = self._entries.get(uuid)
        if entry is None or entry.config.region != region:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return entry

    def list_page(
        self,
        region: str,
        *,
        event_source_arn: str | None,
        function_name: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> tuple[list[MappingEntry], str | None]:
        found = [e for e in self._entries.values() if e.config.region == region]
        if event_source_arn is not None:
            found = [e for e in found if e.config.event_source_arn == event_source_arn]
        if function_name is not None:
            ref = parse_function_ref(function_name)
            check_scope(ref, region, self.registry.account_id)
            found = [e for e in found if _names_function(e.config, ref)]
        found.sort(key=lambda e: e.config.uuid)
        if marker:
            found = [e for e in found if e.config.uuid > marker]
        limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
        page = found[:limit]
        return page, (page[-1].config.uuid if len(found) > limit else None)

    def kind_of(self, entry: MappingEntry) -> SourceKind | None:
        try:
            return self.kinds.get(entry.config.kind)
        except KeyError:
            return None

    # -- writes ----------------------------------------------------------------------------------

    async def create(self, region: str, body: dict[str, Any]) -> MappingEntry:
        if "FunctionName" not in body or body["FunctionName"] is None:
            raise InvalidParameterValueException(
                "1 validation error detected: Value null at 'functionName' failed to satisfy "
                "constraint: Member must not be null"
            )
        changes = parse_changes(body, creating=True)
        endpoints = changes.get("endpoints")
        kind = self.kinds.claim(CreateRequest(changes.get("event_source_arn"), endpoints))
        _check_members(kind, body)
        function_arn = self._function_arn(region, changes.pop("function_name"))
        config = MappingConfig(
            uuid=str(uuidlib.uuid4()),
            region=region,
            account_id=self.registry.account_id,
            kind=kind.name,
            function_arn=function_arn,
            batch_size=kind.default_batch_size,
            max_batching_window_s=kind.default_window_s,
            last_modified=time.time(),
        )
        config = replace(config, **changes)
        config = await self._checked(kind, config)
        self._check_unique(kind, config)
        entry = MappingEntry(config, CREATING, USER_INITIATED, MappingStatus())
        await self.db.run(self.store.put, config, CREATING, USER_INITIATED)
        self._entries[config.uuid] = entry
        self._later(entry)
        return _snapshot(entry)

    async def update(self, region: str, uuid: str, body: dict[str, Any]) -> MappingEntry:
        entry = self.get(region, uuid)
        if entry.state == DELETING:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        kind = self.kinds.get(entry.config.kind)
        changes = parse_changes(body, creating=False)
        _check_members(kind, body)
        if "function_name" in changes:
            changes["function_arn"] = self._function_arn(region, changes.pop("function_name"))
        config = replace(entry.config, **changes, last_modified=time.time())
        config = await self._checked(kind, config)
        self._check_unique(kind, config)
        was = entry.config.enabled
        state = UPDATING
        if config.enabled != was:
            state = ENABLING if config.enabled else DISABLING
        await self.db.run(self.store.put, config, state, USER_INITIATED)
        entry.config, entry.state, entry.state_reason = config, state, USER_INITIATED
        self._later(entry)
        return _snapshot(entry)

    async def delete(self, region: str, uuid: str) -> MappingEntry:
        entry = self.get(region, uuid)
        if entry.state == DELETING:
            return _snapshot(entry)
        await self.db.run(self.store.put, entry.config, DELETING, USER_INITIATED)
        entry.state, entry.state_reason = DELETING, USER_INITIATED
        shown = _snapshot(entry)
        self._later(entry)
        return shown

    def _check_unique(self, kind: SourceKind, config: MappingConfig) -> None:
        """One mapping per source and function (a 409 naming the one there is)."""
        for other in self._entries.values():
            if other.config.uuid != config.uuid and _same_target(other.config, config):
                raise ResourceConflictException(
                    f"An event source mapping with {kind.describe(config)} and function "
                    f'(" {_function_name(config.function_arn)} ") already exists. Please update '
                    f"or delete the existing mapping with UUID {other.config.uuid}"
                )

    # -- transitions -----------------------------------------------------------------------------

    def _later(self, entry: MappingEntry) -> None:
        """Settle a transition after the response: start or stop the poller, then record it."""

        async def settle() -> None:
            await self._stop_poller(entry)
            if entry.state == DELETING:
                await self.db.run(self.store.remove, entry.config.uuid)
                if self._entries.get(entry.config.uuid) is entry:
                    del self._entries[entry.config.uuid]
                await self._remove_at_source(entry)
                return
            state = ENABLED if entry.config.enabled else DISABLED
            if entry.config.enabled and not self._closing:
                self._start_poller(entry)
            entry.state = state
            await self.db.run(self.store.put, entry.config, state, entry.state_reason)

        task = asyncio.get_running_loop().create_task(settle())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _remove_at_source(self, entry: MappingEntry) -> None:
        kind = self.kind_of(entry)
        if kind is None or kind.remove is None:
            return
        try:
            await kind.remove(entry.config, self.ctx)
        except Exception:
            log.exception(
                "event source mapping %s: removing its state at the source failed",
                entry.config.uuid,
            )

    def _start_poller(self, entry: MappingEntry) -> None:
        kind = self.kind_of(entry)
        if kind is None:
            entry.status.last_result = f"PROBLEM: Unsupported event source ({entry.config.kind})"
            return
        entry.poller = Poller(
            entry.config,
            kind,
            self.ctx,
            invoke=self._invoke,
            ready=self._ready,
            send_failure=self._send_failure,
            status=entry.status,
        )
        entry.poller.start()

    async def _stop_poller(self, entry: MappingEntry, *, graceful: bool = True) -> None:
        """Stop the poller; batches being processed may finish (as long as the function may
        run, at most a minute) unless the server is shutting down."""
        poller, entry.poller = entry.poller, None
        if poller is not None:
            grace = 0.0
            if graceful and not self._closing:
                grace = min(self._function_timeout_s(entry.config) + 5.0, 60.0)
            await poller.stop(grace)

    # -- what pollers call -----------------------------------------------------------------------

    async def _invoke(self, mapping: MappingConfig, payload: bytes) -> InvokeResult:
        cfg = self.dispatcher.resolve(
            mapping.region, parse_function_ref(mapping.function_arn), None
        )
        return await self.dispatcher.invoke(cfg, payload, invoked_arn=mapping.function_arn)

    def _ready(self, mapping: MappingConfig) -> str | None:
        try:
            self.dispatcher.resolve(mapping.region, parse_function_ref(mapping.function_arn), None)
        except (ResourceNotFoundException, ResourceConflictException) as exc:
            return f"Function cannot be invoked: {exc.message}"
        return None

    async def _send_failure(
        self, mapping: MappingConfig, destination: str, record: dict[str, Any]
    ) -> None:
        """Deliver an on-failure record, or raise DestinationUnavailable (the poller keeps the
        batch and tries again later)."""
        service = destination.split(":")[2:3]
        if service == ["lambda"]:
            if self.async_worker is None:
                raise DestinationUnavailable("function destinations are not served here")
            await self._send_failure_to_function(mapping, destination, record)
            return
        if service != ["sqs"] or self.queues is None:
            raise DestinationUnavailable(
                "Lamina delivers on-failure records to its queues (sqs) and functions only"
            )
        queue = self.queues.by_arn(destination)
        if queue is None:
            raise DestinationUnavailable("The specified queue does not exist.")
        try:
            await self.queues.send(queue, [NewMessage(json.dumps(record), {})])
        except QueueError as exc:  # deleted meanwhile, or the record is too large for it
            raise DestinationUnavailable(exc.message) from exc

    async def _send_failure_to_function(
        self, mapping: MappingConfig, destination: str, record: dict[str, Any]
    ) -> None:
        """A function as OnFailure destination (Lamina's extension: AWS takes queues, topics and
        buckets for streams) is invoked asynchronously, durably, with the record as its event."""
        assert self.async_worker is not None
        try:
            ref = parse_function_ref(destination)
            cfg = self.registry.resolve(ref.region or mapping.region, ref, None)
        except (ResourceNotFoundException, InvalidParameterValueException) as exc:
            raise DestinationUnavailable(exc.message) from exc
        await self.async_worker.submit(
            cfg, ref.qualifier, json.dumps(record).encode(), request_id=str(uuidlib.uuid4())
        )

    def _function_concurrency(self, mapping: MappingConfig) -> int:
        """What the function may run at once: its reserved concurrency, else the region's
        unreserved pool (a queue mapping without MaximumConcurrency scales up to this)."""
        try:
            record = self.registry.record(mapping.region, parse_function_ref(mapping.function_arn))
        except (ResourceNotFoundException, InvalidParameterValueException):
            return 1
        if record.reserved_concurrency is not None:
            return record.reserved_concurrency
        return self.registry.unreserved_concurrency(mapping.region)

    def _function_timeout_s(self, mapping: MappingConfig) -> int:
        try:
            ref = parse_function_ref(mapping.function_arn)
            return self.registry.resolve(mapping.region, ref).timeout_s
        except (ResourceNotFoundException, InvalidParameterValueException):
            return 3

    # -- helpers ---------------------------------------------------------------------------------

    def _function_arn(self, region: str, name: Any) -> str:
        if not isinstance(name, str):
            raise InvalidParameterValueException(
                "1 validation error detected: Value null at 'functionName' failed to satisfy "
                "constraint: Member must not be null"
            )
        ref = parse_function_ref(name)
        cfg = self.registry.resolve(region, ref)
        arn = f"arn:aws:lambda:{region}:{self.registry.account_id}:function:{cfg.name}"
        return f"{arn}:{ref.qualifier}" if ref.qualifier else arn

    async def _checked(self, kind: SourceKind, config: MappingConfig) -> MappingConfig:
        if config.batch_size > kind.max_batch_size:
            raise InvalidParameterValueException(
                f"BatchSize must be between 1 and {kind.max_batch_size} for this event source."
            )
        if kind.check is not None:
            config = await kind.check(config, self.ctx)
        return config


# Optional members every kind accepts; the rest only where the kind lists them (output_members).
_COMMON_MEMBERS = frozenset(
    {
        "FunctionName",
        "EventSourceArn",
        "Enabled",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "Tags",
        "KMSKeyArn",
    }
)
_OPTIONAL_MEMBERS = frozenset(
    {
        "FilterCriteria",
        "ScalingConfig",
        "FunctionResponseTypes",
        "MetricsConfig",
        "LoggingConfig",
        "ParallelizationFactor",
        "StartingPosition",
        "StartingPositionTimestamp",
        "DestinationConfig",
        "MaximumRecordAgeInSeconds",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "TumblingWindowInSeconds",
        "Topics",
        "Queues",
        "SourceAccessConfigurations",
        "SelfManagedEventSource",
        "AmazonManagedKafkaEventSourceConfig",
        "SelfManagedKafkaEventSourceConfig",
        "DocumentDBEventSourceConfig",
        "ProvisionedPollerConfig",
    }
)


def _check_members(kind: SourceKind, body: dict[str, Any]) -> None:
    for member, value in body.items():
        if member in _OPTIONAL_MEMBERS and member not in kind.output_members:
            if value is None or value == {} or value == []:
                continue
            raise InvalidParameterValueException(
                f"Unsupported {member} parameter for given event source mapping type."
            )


def _function_name(arn: str) -> str:
    return arn.split(":function:", 1)[-1]


def _names_function(config: MappingConfig, ref: FunctionRef) -> bool:
    name = _function_name(config.function_arn)
    base, _, qualifier = name.partition(":")
    if base != ref.name:
        return False
    return ref.qualifier is None or qualifier == ref.qualifier


def _same_target(a: MappingConfig, b: MappingConfig) -> bool:
    return (
        a.kind == b.kind
        and a.region == b.region
        and a.function_arn == b.function_arn
        and a.event_source_arn == b.event_source_arn
        and a.queues == b.queues
        and a.topics == b.topics
        and a.endpoints == b.endpoints
    )


def _snapshot(entry: MappingEntry) -> MappingEntry:
    """A copy of the entry as it is now (the answer must not show the settled state)."""
    return MappingEntry(entry.config, entry.state, entry.state_reason, entry.status)

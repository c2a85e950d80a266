"""The registry of functions: the rules of create/update/delete, RevisionIds, states, concurrency.

Reads are served from memory (the invoke path never touches the database); every change is
written through the FunctionStore on the database thread before it is acknowledged.
What other layers must hear about (an update retires environments) leaves through `listeners`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any

from lamina.control import validation
from lamina.control.code_store import CodeStore
from lamina.control.model import LATEST, FunctionConfig, FunctionRecord, now_lambda_timestamp
from lamina.control.names import FunctionRef, check_scope, merge_qualifier
from lamina.control.store import FunctionStore
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)

log = logging.getLogger(__name__)

# Called with (region, name, version) when environments of that version must be retired.
RetireListener = Callable[[str, str, str], None]

LIST_PAGE_MAX = 50


class Registry:
    def __init__(
        self,
        *,
        db: Database,
        store: FunctionStore,
        code: CodeStore,
        account_id: str,
        account_concurrency: int,
        unreserved_floor: int,
        runtimes: Mapping[str, str | None],
    ) -> None:
        self.db = db
        self.store = store
        self.code = code
        self.account_id = account_id
        self.account_concurrency = account_concurrency
        self.unreserved_floor = unreserved_floor
        self.runtimes = runtimes
        self.listeners: list[RetireListener] = []
        self._functions: dict[tuple[str, str], FunctionRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- loading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every record; a transition cut short by a crash is completed now."""
        records = await self.db.run(self.store.load_all)
        for record in records:
            cfg = record.latest
            if cfg.state == "Pending" or cfg.last_update_status == "InProgress":
                record.latest = _settled(cfg)
                await self.db.run(self.store.put, record)
            self._functions[record.key] = record
        log.debug("loaded %d functions", len(records))

    async def drain(self) -> None:
        """Wait for background writes (state transitions) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- reads -----------------------------------------------------------------------------------

    def not_found(
        self, region: str, name: str, qualifier: str | None = None
    ) -> ResourceNotFoundException:
        arn = f"arn:aws:lambda:{region}:{self.account_id}:function:{name}"
        if qualifier is not None:
            arn += f":{qualifier}"
        return ResourceNotFoundException(f"Function not found: {arn}")

    def record(self, region: str, ref: FunctionRef) -> FunctionRecord:
        check_scope(ref, region, self.account_id)
        record = self._functions.get((region, ref.name))
        if record is None:
            raise self.not_found(region, ref.name)
        return record

    def resolve(
        self, region: str, ref: FunctionRef, qualifier: str | None = None
    ) -> FunctionConfig:
        """The configuration a call names: the invoke path's lookup, from memory only."""
        record = self.record(region, ref)
        q = merge_qualifier(ref, qualifier)
        if q is None or q == LATEST:
            return record.latest
        raise self.not_found(region, ref.name, q)

    def list_page(
        self, region: str, marker: str | None, max_items: int | None
    ) -> tuple[list[FunctionConfig], str | None]:
        names = sorted(name for (r, name) in self._functions if r == region)
        start = 0
        if marker:
            after = _decode_marker(marker)
            start = next((i for i, n in enumerate(names) if n > after), len(names))
        limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
        page = names[start : start + limit]
        next_marker = _encode_marker(page[-1]) if start + limit < len(names) and page else None
        return [self._functions[(region, n)].latest for n in page], next_marker

    def functions(self, region: str | None = None) -> list[FunctionRecord]:
        return [r for (reg, _), r in self._functions.items() if region is None or reg == region]

    # -- writes ----------------------------------------------------------------------------------

    async def create(self, region: str, fields: dict[str, Any], zip_bytes: bytes) -> FunctionConfig:
        name = fields["name"]
        if (region, name) in self._functions:
            raise ResourceConflictException(f"Function already exist: {name}")
        validation.runtime(fields["runtime"], self.runtimes)
        code = await asyncio.to_thread(self.code.put, zip_bytes)
        if (region, name) in self._functions:  # created meanwhile by a concurrent call
            raise ResourceConflictException(f"Function already exist: {name}")
        cfg = FunctionConfig(region=region, account_id=self.account_id, code=code, **fields)
        record = FunctionRecord(
            latest=cfg, tags=dict(fields.get("extra", {}).pop("Tags", {}) or {})
        )
        self._functions[record.key] = record
        try:
            await self.db.run(self.store.put, record)
        except BaseException:
            self._functions.pop(record.key, None)
            raise
        self._later(record, _settled)
        return cfg

    async def update_code(
        self,
        region: str,
        ref: FunctionRef,
        zip_bytes: bytes,
        *,
        revision_id: str | None,
        architectures: tuple[str, ...] | None = None,
    ) -> FunctionConfig:
        record = self._updatable(region, ref, revision_id)
        code = await asyncio.to_thread(self.code.put, zip_bytes)
        record = self._updatable(region, ref, revision_id)
        changes: dict[str, Any] = {"code": code}
        if architectures is not None:
            changes["architectures"] = architectures
        return await self._apply_update(record, changes)

    async def update_configuration(
        self, region: str, ref: FunctionRef, changes: dict[str, Any], *, revision_id: str | None
    ) -> FunctionConfig:
        record = self._updatable(region, ref, revision_id)
        if "runtime" in changes:
            validation.runtime(changes["runtime"], self.runtimes)
        if "handler" in changes or "runtime" in changes:
            validation.handler(
                changes.get("handler", record.latest.handler),
                changes.get("runtime", record.latest.runtime),
            )
        if "extra" in changes:
            changes["extra"] = {**record.latest.extra, **changes["extra"]}
        return await self._apply_update(record, changes)

    async def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        record = self.record(region, ref)
        q = merge_qualifier(ref, qualifier)
        if q is not None and q != LATEST:
            raise self.not_found(region, ref.name, q)
        if q == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        await self.db.run(self.store.delete, *record.key)
        self._functions.pop(record.key, None)
        self._notify(record.latest)

    async def put_reserved_concurrency(self, region: str, ref: FunctionRef, value: int) -> int:
        record = self.record(region, ref)
        others = sum(
            r.reserved_concurrency or 0
            for r in self._functions.values()
            if r is not record and r.latest.region == region
        )
        if self.account_concurrency - others - value < self.unreserved_floor:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{self.unreserved_floor}]."
            )
        record.reserved_concurrency = value
        await self.db.run(self.store.put, record)
        return value

    async def delete_reserved_concurrency(self, region: str, ref: FunctionRef) -> None:
        record = self.record(region, ref)
        record.reserved_concurrency = None
        await self.db.run(self.store.put, record)

    def unreserved_concurrency(self, region: str) -> int:
        reserved = sum(r.reserved_concurrency or 0 for r in self.functions(region))
        return self.account_concurrency - reserved

    # -- internals -------------------------------------------------------------------------------

    def _updatable(self, region: str, ref: FunctionRef, revision_id: str | None) -> FunctionRecord:
        record = self.record(region, ref)
        cfg = record.latest
        if revision_id is not None and revision_id != cfg.revision_id:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        if cfg.state == "Pending":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. "
                f"The function is currently in the following state: {cfg.state}"
            )
        if cfg.last_update_status == "InProgress":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. "
                f"An update is in progress for resource: {cfg.arn}"
            )
        return record

    async def _apply_update(
        self, record: FunctionRecord, changes: dict[str, Any]
    ) -> FunctionConfig:
        old = record.latest
        new = old.with_revision(
            **changes,
            last_modified=now_lambda_timestamp(),
            last_update_status="InProgress",
            last_update_status_reason="The function is being created.",
            last_update_status_reason_code="Creating",
        )
        record.latest = new
        try:
            await self.db.run(self.store.put, record)
        except BaseException:
            record.latest = old
            raise
        if new.execution_key() != old.execution_key():
            self._notify(old)
        self._later(record, _settled)
        return new

    def _notify(self, cfg: FunctionConfig) -> None:
        for listener in self.listeners:
            try:
                listener(cfg.region, cfg.name, cfg.version)
            except Exception:  # a listener's fault must not undo a committed change
                log.exception("retire listener failed for %s", cfg.arn)

    def _later(
        self, record: FunctionRecord, step: Callable[[FunctionConfig], FunctionConfig]
    ) -> None:
        """Finish a transition (Pending -> Active, InProgress -> Successful) after the response.

        The in-memory record changes at once on the next loop turn, so a client that calls
        GetFunction after the create/update response already sees the settled state.
        """

        async def settle() -> None:
            if self._functions.get(record.key) is not record:
                return
            record.latest = step(record.latest)
            await self.db.run(self.store.put, record)

        task = asyncio.get_running_loop().create_task(settle())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _settled(cfg: FunctionConfig) -> FunctionConfig:
    return cfg.with_revision(
        state="Active",
        state_reason=None,
        state_reason_code=None,
        last_update_status="Successful",
        last_update_status_reason=None,
        last_update_status_reason_code=None,
    )


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc


__all__ = ["Registry"]

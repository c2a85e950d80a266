"""The registry of functions, versions and aliases: the rules of create/update/publish/delete,
RevisionIds, states, concurrency.

Reads are served from memory (the invoke path never touches the database); every change is
written through the FunctionStore on the database thread before it is acknowledged.
What other layers must hear about leaves through two lists of callbacks:
`listeners` (a version's environments must retire) and `alias_listeners` (an alias changed).

The API other parts build on (all reads are synchronous, from memory, raise LambdaErrors):

- `target(region, ref, qualifier)` -> `Target`: what an invocation of a function name or ARN
  (`ref`, from `names.parse_function_ref`) with an optional `Qualifier` runs: `.config` is the
  configuration of the version that runs (for a weighted alias the version chosen for this call,
  by the alias's weights), `.alias` the alias it came through (or None), `.qualifier` what was
  named, `.invoked_arn` the ARN to hand to the function. Call it once per invocation.
- `resolve(region, ref, qualifier)` -> `FunctionConfig`: the same without a random choice (an
  alias gives its primary version), for reads such as GetFunctionConfiguration.
- `alias(region, ref, name)`, `version(region, ref, version)`, `record(region, ref)`: look-ups
  that raise Lambda's ResourceNotFoundException; `find(region, name)` returns None instead.
- `publish_version(...)`, `create_alias(...)`, `update_alias(...)`: what SAM's AutoPublishAlias
  and the API do.

Qualifiers: None or `$LATEST` -> $LATEST; digits -> that published version; anything else ->
an alias (`model.qualifier_kind` tells them apart by form). Published versions are immutable snapshots (frozen FunctionConfigs with `version` "1",
"2", ...); an alias always points at versions that exist (deleting one it uses is refused).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from lamina.control import aliases as alias_rules
from lamina.control import validation
from lamina.control.code_store import CodeStore
from lamina.control.layers import Layers, check_unzipped_size
from lamina.control.model import (
    LATEST,
    Alias,
    CodeRef,
    FunctionConfig,
    FunctionRecord,
    LayerRef,
    Target,
    is_version_number,
    new_revision_id,
    now_lambda_timestamp,
)
from lamina.control.names import FunctionRef, check_qualifier, check_scope, merge_qualifier
from lamina.control.policies import Policies
from lamina.control.store import FunctionStore
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)

log = logging.getLogger(__name__)

# Called with (region, name, version) when environments of that version must be retired: after an
# update of $LATEST, and when a version or the whole function (once per version) is deleted.
RetireListener = Callable[[str, str, str], None]
# Called with (region, function name, alias name) after an alias is created, updated or deleted.
AliasListener = Callable[[str, str, str], None]

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


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
        self.alias_listeners: list[AliasListener] = []
        self.layers: Layers | None = None  # resolves `Layers` (wired by server.py)
        self.policies: Policies | None = None  # resource-based policies (wired by server.py)
        self.hot_reload = False  # whether code may be a host folder (control/hot_reload.py)
        self._functions: dict[tuple[str, str], FunctionRecord] = {}
        # Reserved concurrency summed per region, read on every invocation (admission);
        # None after any change to the functions or their reservations.
        self._reserved_sums: dict[str, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- loading -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every record; a transition cut short by a crash is completed now."""
        records = await self.db.run(self.store.load_all)
        for record in records:
            cfg = record.latest
            if cfg.state == "Pending" or cfg.last_update_status == "InProgress":
                record.latest = cfg.settled()
                await self.db.run(self.store.put, record)
            self._functions[record.key] = record
        self._reserved_sums = None
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

    def find(self, region: str, name: str) -> FunctionRecord | None:
        return self._functions.get((region, name))

    def resolve(
        self, region: str, ref: FunctionRef, qualifier: str | None = None
    ) -> FunctionConfig:
        """The configuration a call names (an alias gives its primary version), from memory."""
        return self._lookup(region, ref, qualifier, None).config

    def target(
        self,
        region: str,
        ref: FunctionRef,
        qualifier: str | None = None,
        *,
        draw: Callable[[], float] = random.random,
    ) -> Target:
        """What one invocation runs: a weighted alias chooses its version with `draw()`."""
        return self._lookup(region, ref, qualifier, draw)

    def version(self, region: str, ref: FunctionRef, version: str) -> FunctionConfig:
        """$LATEST or a published version by number."""
        record = self.record(region, ref)
        if version == LATEST:
            return record.latest
        found = record.versions.get(version)
        if found is None:
            raise self.not_found(region, ref.name, version)
        return found

    def alias(self, region: str, ref: FunctionRef, name: str) -> Alias:
        record = self.record(region, ref)
        found = record.aliases.get(name)
        if found is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {record.latest.arn}:{name}")
        return found

    def _lookup(
        self,
        region: str,
        ref: FunctionRef,
        qualifier: str | None,
        draw: Callable[[], float] | None,
    ) -> Target:
        record = self.record(region, ref)
        q = merge_qualifier(ref, qualifier)
        if q is None or q == LATEST:
            return Target(record.latest, None, q)
        version = record.versions.get(q)
        if version is not None:
            return Target(version, None, q)
        alias = record.aliases.get(q)
        if alias is None:
            check_qualifier(q)
            raise self.not_found(region, ref.name, q)
        chosen = (
            alias.choose(draw()) if draw is not None and alias.weights else alias.function_version
        )
        return Target(record.latest if chosen == LATEST else record.versions[chosen], alias, q)

    def functions(self, region: str | None = None) -> list[FunctionRecord]:
        return [r for (reg, _), r in self._functions.items() if region is None or reg == region]

    # -- writes ----------------------------------------------------------------------------------

    async def create(
        self,
        region: str,
        fields: dict[str, Any],
        zip_bytes: bytes | CodeRef,
        *,
        publish: bool = False,
    ) -> FunctionConfig:
        """Create $LATEST (Pending); with `publish` also version 1, which is then returned."""
        name = fields["name"]
        if (region, name) in self._functions:
            raise ResourceConflictException(f"Function already exist: {name}")
        validation.runtime(fields["runtime"], self.runtimes)
        code = await self._store_code(zip_bytes)
        fields["layers"] = await self._attach_layers(region, fields.get("layers", ()), code)
        if (region, name) in self._functions:  # created meanwhile by a concurrent call
            raise ResourceConflictException(f"Function already exist: {name}")
        cfg = FunctionConfig(region=region, account_id=self.account_id, code=code, **fields)
        record = FunctionRecord(
            latest=cfg, tags=dict(fields.get("extra", {}).pop("Tags", {}) or {})
        )
        self._functions[record.key] = record
        self._reserved_sums = None
        try:
            await self.db.run(self.store.put, record)
        except BaseException:
            self._functions.pop(record.key, None)
            self._reserved_sums = None
            raise
        self._later(record, FunctionConfig.settled)
        if publish:
            return await self._publish(record, None)
        return cfg

    async def update_code(
        self,
        region: str,
        ref: FunctionRef,
        zip_bytes: bytes | CodeRef,
        *,
        revision_id: str | None,
        architectures: tuple[str, ...] | None = None,
        publish: bool = False,
    ) -> FunctionConfig:
        """Replace $LATEST's code; with `publish` also publish it, and return that version."""
        record = self._updatable(region, ref, revision_id)
        code = await self._store_code(zip_bytes)
        record = self._updatable(region, ref, revision_id)
        check_unzipped_size(code, record.latest.layers)
        changes: dict[str, Any] = {"code": code}
        if architectures is not None:
            changes["architectures"] = architectures
        latest = await self._apply_update(record, changes)
        if publish:
            return await self._publish(record, None)
        return latest

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
        if "layers" in changes:
            changes["layers"] = await self._attach_layers(
                region, changes["layers"], record.latest.code
            )
            record = self._updatable(region, ref, revision_id)
        return await self._apply_update(record, changes)

    async def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        """Without a qualifier the function with every version and alias; else one version."""
        record = self.record(region, ref)
        q = merge_qualifier(ref, qualifier)
        if q is not None:
            await self._delete_version(record, q)
            return
        await self.db.run(self.store.delete, *record.key)
        self._functions.pop(record.key, None)
        if self.policies is not None:
            await self.policies.forget_function(record.latest.arn)
        self._reserved_sums = None
        for cfg in record.all_versions():
            self._notify(cfg)
        for alias in record.aliases.values():
            self._notify_alias(alias)

    async def _delete_version(self, record: FunctionRecord, qualifier: str) -> None:
        if qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        alias = record.aliases.get(qualifier)
        version = alias.function_version if alias is not None else qualifier
        if alias is None and not is_version_number(qualifier):
            check_qualifier(qualifier)
            raise self.not_found(record.latest.region, record.latest.name, qualifier)
        users = record.aliases_of(version)
        if users:
            raise ResourceConflictException(
                "Unable to delete version because the following aliases reference it: "
                f"[{', '.join(users)}]"
            )
        cfg = record.versions.get(version)
        if cfg is None:  # deleting a version that does not exist succeeds, as on AWS
            return
        await self.db.run(self.store.delete_version, *record.key, version)
        record.versions.pop(version, None)
        if self.policies is not None:
            await self.policies.forget(cfg.qualified_arn)
        self._notify(cfg)

    # -- versions and aliases --------------------------------------------------------------------

    async def publish_version(
        self,
        region: str,
        ref: FunctionRef,
        *,
        code_sha256: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
    ) -> FunctionConfig:
        """Snapshot $LATEST as the next version, or return the newest one if nothing changed."""
        record = self._updatable(region, ref, revision_id)
        current = record.latest.code.sha256_b64
        if code_sha256 is not None and code_sha256 != current:
            raise InvalidParameterValueException(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                f"({current}). Please try again with the CodeSHA256 in $LATEST."
            )
        return await self._publish(record, description)

    async def _publish(self, record: FunctionRecord, description: str | None) -> FunctionConfig:
        latest = record.latest
        if record.versions:
            newest = record.versions[next(reversed(record.versions))]
            if newest.publish_key() == latest.publish_key():
                return newest
        number = str(record.last_version + 1)
        version = latest.published_as(number, description)
        record.last_version += 1
        record.versions[number] = version
        record.latest = latest.with_revision()  # publishing is a change of the function
        try:
            await self.db.run(self.store.put_version, record, version)
        except BaseException:
            record.last_version -= 1
            record.versions.pop(number, None)
            record.latest = latest
            raise
        return version

    async def create_alias(
        self,
        region: str,
        ref: FunctionRef,
        name: str,
        function_version: str,
        *,
        description: str = "",
        weights: Mapping[str, float] | None = None,
    ) -> Alias:
        record = self.record(region, ref)
        if name in record.aliases:
            raise ResourceConflictException(f"Alias already exists: {record.latest.arn}:{name}")
        alias_rules.check_target(record, function_version)
        alias_rules.check_routing(record, function_version, weights or {})
        alias = Alias(
            name=name,
            function_name=record.latest.name,
            region=region,
            account_id=self.account_id,
            function_version=function_version,
            description=description,
            weights=dict(weights or {}),
        )
        await self._put_alias(record, alias, None)
        return alias

    async def update_alias(
        self,
        region: str,
        ref: FunctionRef,
        name: str,
        *,
        function_version: str | None = None,
        description: str | None = None,
        weights: Mapping[str, float] | None = None,
        revision_id: str | None = None,
    ) -> Alias:
        """Change what is given (None keeps it); `weights` replaces the split ({} removes it)."""
        record = self.record(region, ref)
        old = record.aliases.get(name)
        if old is None:
            raise ResourceNotFoundException(f"Alias not found: {record.latest.arn}:{name}")
        if revision_id is not None and revision_id != old.revision_id:
            raise PreconditionFailedException(REVISION_MISMATCH)
        new = replace(
            old,
            function_version=old.function_version if function_version is None else function_version,
            description=old.description if description is None else description,
            weights=old.weights if weights is None else dict(weights),
            revision_id=new_revision_id(),
        )
        alias_rules.check_target(record, new.function_version)
        alias_rules.check_routing(record, new.function_version, new.weights)
        await self._put_alias(record, new, old)
        return new

    async def delete_alias(self, region: str, ref: FunctionRef, name: str) -> None:
        record = self.record(region, ref)
        alias = self.alias(region, ref, name)
        await self.db.run(self.store.delete_alias, *record.key, name)
        if record.aliases.get(name) is alias:
            del record.aliases[name]
        if self.policies is not None:
            await self.policies.forget(alias.arn)
        self._notify_alias(alias)

    async def _put_alias(self, record: FunctionRecord, alias: Alias, old: Alias | None) -> None:
        record.aliases[alias.name] = alias
        try:
            await self.db.run(self.store.put_alias, alias)
        except BaseException:
            if old is None:
                record.aliases.pop(alias.name, None)
            else:
                record.aliases[alias.name] = old
            raise
        self._notify_alias(alias)

    async def tag(self, region: str, ref: FunctionRef, tags: Mapping[str, str]) -> None:
        """TagResource: add or overwrite; the function may hold at most 50 tags in all."""
        record = self.record(region, ref)
        merged = {**record.tags, **tags}
        if len(merged) > validation.MAX_TAGS:
            raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")
        old = record.tags
        record.tags = merged
        try:
            await self.db.run(self.store.put, record)
        except BaseException:
            record.tags = old
            raise

    async def untag(self, region: str, ref: FunctionRef, keys: list[str]) -> None:
        """UntagResource: keys the function does not have are ignored, as on AWS."""
        record = self.record(region, ref)
        old = record.tags
        record.tags = {k: v for k, v in old.items() if k not in keys}
        try:
            await self.db.run(self.store.put, record)
        except BaseException:
            record.tags = old
            raise

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
        self._reserved_sums = None
        await self.db.run(self.store.put, record)
        return value

    async def delete_reserved_concurrency(self, region: str, ref: FunctionRef) -> None:
        record = self.record(region, ref)
        record.reserved_concurrency = None
        self._reserved_sums = None
        await self.db.run(self.store.put, record)

    def unreserved_concurrency(self, region: str) -> int:
        sums = self._reserved_sums
        if sums is None:
            sums = self._reserved_sums = {}
            for (reg, _), r in self._functions.items():
                sums[reg] = sums.get(reg, 0) + (r.reserved_concurrency or 0)
        return self.account_concurrency - sums.get(region, 0)

    # -- internals -------------------------------------------------------------------------------

    async def _store_code(self, code: bytes | CodeRef) -> CodeRef:
        """A zip goes to the code store; a hot-reloaded folder is used where it is."""
        if isinstance(code, CodeRef):
            return code
        return await asyncio.to_thread(self.code.put, code)

    async def _attach_layers(
        self, region: str, arns: tuple[str, ...], code: CodeRef
    ) -> tuple[LayerRef, ...]:
        if not arns:
            return ()
        if self.layers is None:
            raise InvalidParameterValueException(f"Layer version {arns[0]} does not exist.")
        refs = await self.layers.attach(region, arns)
        check_unzipped_size(code, refs)
        return refs

    def _updatable(self, region: str, ref: FunctionRef, revision_id: str | None) -> FunctionRecord:
        record = self.record(region, ref)
        cfg = record.latest
        if revision_id is not None and revision_id != cfg.revision_id:
            raise PreconditionFailedException(REVISION_MISMATCH)
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
        self._later(record, FunctionConfig.settled)
        return new

    def _notify(self, cfg: FunctionConfig) -> None:
        for listener in self.listeners:
            try:
                listener(cfg.region, cfg.name, cfg.version)
            except Exception:  # a listener's fault must not undo a committed change
                log.exception("retire listener failed for %s", cfg.arn)

    def _notify_alias(self, alias: Alias) -> None:
        for listener in self.alias_listeners:
            try:
                listener(alias.region, alias.function_name, alias.name)
            except Exception:  # a listener's fault must not undo a committed change
                log.exception("alias listener failed for %s", alias.arn)

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


__all__ = ["Registry"]

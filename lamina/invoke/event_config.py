"""Asynchronous invocation settings per function and qualifier (FunctionEventInvokeConfig):
retries, maximum event age and destinations. Kept in their own table, read from memory.

As on Lambda, settings belong to exactly the qualifier they were put on: `$LATEST` (also for
unqualified calls), one published version, or one alias; an event invoked through an alias
uses the alias's settings whichever version the alias routes it to.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from lamina.control.model import LATEST
from lamina.control.names import FunctionRef, parse_function_ref
from lamina.control.registry import Registry
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 21_600
LIST_PAGE_MAX = 50

metadata = sa.MetaData()

event_invoke_configs = sa.Table(
    "event_invoke_configs",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventInvokeConfig:
    region: str
    function_name: str
    qualifier: str
    function_arn: str  # qualified
    max_retries: int | None = None
    max_age_s: int | None = None
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = 0.0

    @property
    def retries(self) -> int:
        return DEFAULT_RETRIES if self.max_retries is None else self.max_retries

    @property
    def age_limit_s(self) -> int:
        return DEFAULT_MAX_AGE_S if self.max_age_s is None else self.max_age_s


def destination_kind(arn: str) -> str | None:
    """`sqs`, `lambda`, `sns`, `events` or `s3` for an ARN a destination may name."""
    parts = arn.split(":")
    if (
        len(parts) >= 6
        and parts[0] == "arn"
        and parts[2] in ("sqs", "lambda", "sns", "events", "s3")
    ):
        return parts[2]
    return None


class EventInvokeConfigs:
    def __init__(self, db: Database, registry: Registry) -> None:
        self.db = db
        self.registry = registry
        db.create(metadata)
        self._configs: dict[tuple[str, str, str], EventInvokeConfig] = {}

    async def load(self) -> None:
        rows = await self.db.run(self._load_rows)
        for text in rows:
            cfg = EventInvokeConfig(**json.loads(text))
            self._configs[(cfg.region, cfg.function_name, cfg.qualifier)] = cfg

    def _load_rows(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(sa.select(event_invoke_configs.c.config)).scalars())

    # -- reads -----------------------------------------------------------------------------------

    def effective(self, region: str, name: str, qualifier: str | None) -> EventInvokeConfig | None:
        """The settings an asynchronous invocation of `name:qualifier` runs with."""
        return self._configs.get((region, name, qualifier or LATEST))

    def _target(self, region: str, ref: FunctionRef, qualifier: str | None) -> tuple[str, str, str]:
        cfg = self.registry.resolve(region, ref, qualifier)
        q = qualifier or ref.qualifier or LATEST
        return cfg.name, q, f"{cfg.arn}:{q}"

    def get(self, region: str, ref: FunctionRef, qualifier: str | None) -> EventInvokeConfig:
        name, q, arn = self._target(region, ref, qualifier)
        found = self._configs.get((region, name, q))
        if found is None:
            raise ResourceNotFoundException(f"The function {arn} doesn't have an EventInvokeConfig")
        return found

    def list_page(
        self, region: str, ref: FunctionRef, marker: str | None, max_items: int | None
    ) -> tuple[list[EventInvokeConfig], str | None]:
        cfg = self.registry.resolve(region, ref, None)
        found = sorted(
            (c for (r, n, _), c in self._configs.items() if r == region and n == cfg.name),
            key=lambda c: c.qualifier,
        )
        if marker:
            found = [c for c in found if c.qualifier > marker]
        limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
        page = found[:limit]
        return page, (page[-1].qualifier if len(found) > limit else None)

    # -- writes ----------------------------------------------------------------------------------

    async def put(
        self,
        region: str,
        ref: FunctionRef,
        qualifier: str | None,
        body: dict[str, Any],
        *,
        merge: bool,
    ) -> EventInvokeConfig:
        name, q, arn = self._target(region, ref, qualifier)
        old = self._configs.get((region, name, q))
        if merge and old is None:
            raise ResourceNotFoundException(f"The function {arn} doesn't have an EventInvokeConfig")
        changes = self._validate(region, name, body)
        if merge and old is not None:
            new = replace(old, **changes, last_modified=time.time())
        else:
            if not changes:
                raise InvalidParameterValueException(
                    "You must specify at least one of error handling or destination setting."
                )
            new = EventInvokeConfig(
                region=region,
                function_name=name,
                qualifier=q,
                function_arn=arn,
                last_modified=time.time(),
                **changes,
            )
        await self.db.run(self._write, new)
        self._configs[(region, name, q)] = new
        return new

    async def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        found = self.get(region, ref, qualifier)
        await self.db.run(self._remove, region, found.function_name, found.qualifier)
        self._configs.pop((region, found.function_name, found.qualifier), None)

    def forget_deleted(self, region: str, name: str, _qualifier: str) -> None:
        """Registry listener (versions and aliases): settings go with what they belong to.

        A deleted function takes all of its settings, a deleted version or alias its own.
        """
        record = self.registry.find(region, name)
        for key in [k for k in self._configs if k[0] == region and k[1] == name]:
            q = key[2]
            if record is not None and (q == LATEST or q in record.versions or q in record.aliases):
                continue
            del self._configs[key]
            self.db.submit(self._remove, *key)

    def _validate(self, region: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if "MaximumRetryAttempts" in body:
            changes["max_retries"] = _ranged(
                body["MaximumRetryAttempts"], "maximumRetryAttempts", 0, 2
            )
        if "MaximumEventAgeInSeconds" in body:
            changes["max_age_s"] = _ranged(
                body["MaximumEventAgeInSeconds"], "maximumEventAgeInSeconds", 60, 21_600
            )
        dest = body.get("DestinationConfig")
        if dest is not None:
            if not isinstance(dest, dict):
                raise InvalidParameterValueException("DestinationConfig must be an object.")
            for key in ("OnSuccess", "OnFailure"):
                if not isinstance(dest.get(key) or {}, dict):
                    raise InvalidParameterValueException(
                        f"DestinationConfig.{key} must be an object."
                    )
            success = (dest.get("OnSuccess") or {}).get("Destination")
            failure = (dest.get("OnFailure") or {}).get("Destination")
            for arn in (success, failure):
                if arn is not None:
                    self._check_destination(region, name, arn, success, failure)
            changes["on_success"] = success
            changes["on_failure"] = failure
        return changes

    def _check_destination(
        self, region: str, name: str, arn: Any, success: Any, failure: Any
    ) -> None:
        kind = destination_kind(arn) if isinstance(arn, str) else None
        if kind is None:
            on_s = f"OnSuccess(destination={success})" if success else "null"
            on_f = f"OnFailure(destination={failure})" if failure else "null"
            raise InvalidParameterValueException(
                f"The provided destination config DestinationConfig(onSuccess={on_s}, "
                f"onFailure={on_f}) is invalid."
            )
        if kind == "lambda":
            try:
                ref = parse_function_ref(arn)
                target = self.registry.resolve(region, ref, None)
            except (ResourceNotFoundException, InvalidParameterValueException) as exc:
                raise InvalidParameterValueException(
                    f"The destination ARN {arn} is invalid."
                ) from exc
            if target.name == name:
                raise InvalidParameterValueException(
                    "You can't specify the function as a destination for itself."
                )

    def _write(self, cfg: EventInvokeConfig) -> None:
        t = event_invoke_configs
        with self.db.engine.begin() as conn:
            conn.execute(
                t.delete().where(
                    t.c.region == cfg.region,
                    t.c.function_name == cfg.function_name,
                    t.c.qualifier == cfg.qualifier,
                )
            )
            conn.execute(
                t.insert().values(
                    region=cfg.region,
                    function_name=cfg.function_name,
                    qualifier=cfg.qualifier,
                    config=json.dumps(asdict(cfg)),
                )
            )

    def _remove(self, region: str, name: str, qualifier: str) -> None:
        t = event_invoke_configs
        with self.db.engine.begin() as conn:
            conn.execute(
                t.delete().where(
                    t.c.region == region, t.c.function_name == name, t.c.qualifier == qualifier
                )
            )


def _ranged(value: Any, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            "constraint: Member must be an integer"
        )
    if value < low:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must have value less than or equal to {high}"
        )
    return value

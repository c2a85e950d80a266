"""Buckets: host folders whose files stand for S3 objects, with S3-style notification
configurations that send object events to functions.

A bucket's notification configuration has S3's `LambdaFunctionConfigurations` shape (Id,
LambdaFunctionArn, Events, Filter.Key.FilterRules with prefix/suffix) and S3's rules: known event
types, at most one prefix and one suffix rule, and no two configurations that could both match
the same event type and key ("Configurations overlap").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lamina.control.model import FunctionConfig
from lamina.control.names import FunctionRef, parse_function_ref
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    LambdaError,
    ResourceConflictException,
    ResourceNotFoundException,
)

BUCKET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
IP_LIKE_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")
# The event types Lamina produces (from the folder, or its S3 API), and the ones it accepts
# without ever producing them (so that configurations written for S3 load unchanged).
PRODUCED = (
    "ObjectCreated:Put",  # a file settled in the folder, or PutObject
    "ObjectCreated:Copy",  # CopyObject
    "ObjectCreated:CompleteMultipartUpload",
    "ObjectRemoved:Delete",
)
ACCEPTED_EVENTS = frozenset(
    {
        "s3:ObjectCreated:*",
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:*",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
    }
)
FILTER_VALUE_MAX = 1024

Resolve = Callable[[str, FunctionRef, str | None], FunctionConfig]

metadata = sa.MetaData()

buckets_table = sa.Table(
    "buckets",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("notification", sa.Text, nullable=False),  # JSON: LambdaFunctionConfigurations
    sa.Column("sequencer", sa.BigInteger, nullable=False),
)

bucket_objects = sa.Table(
    "bucket_objects",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(32), nullable=False),
)


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, event_name: str, key: str) -> bool:
        kind = event_name.split(":", 1)[0]
        wanted = {f"s3:{event_name}", f"s3:{kind}:*"}
        return (
            any(e in wanted for e in self.events)
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
        )

    def shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": self.id,
            "LambdaFunctionArn": self.function_arn,
            "Events": list(self.events),
        }
        rules = [("prefix", self.prefix), ("suffix", self.suffix)]
        if self.prefix or self.suffix:
            out["Filter"] = {
                "Key": {"FilterRules": [{"Name": n, "Value": v} for n, v in rules if v]}
            }
        return out


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    region: str
    path: str
    created: str
    notifications: tuple[NotificationConfig, ...] = ()

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"

    def shape(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Arn": self.arn,
            "Path": self.path,
            "Region": self.region,
            "CreationDate": self.created,
        }


def _event_types(events: tuple[str, ...]) -> set[str]:
    """The produced or producible types a configuration's event list covers."""
    out: set[str] = set()
    for e in events:
        if e.endswith(":*"):
            out.add(e[:-1])  # "s3:ObjectCreated:" covers every ObjectCreated type
        else:
            out.add(e)
    return out


def _types_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    for x in _event_types(a):
        for y in _event_types(b):
            if x.startswith(y) or y.startswith(x):
                return True
    return False


def overlaps(a: NotificationConfig, b: NotificationConfig) -> bool:
    """S3's rule: two configurations may not both match one event type and one key."""
    return (
        _types_overlap(a.events, b.events)
        and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))
        and (a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix))
    )


def parse_notifications(
    body: dict[str, Any], region: str, resolve: Resolve
) -> tuple[NotificationConfig, ...]:
    raw = body.get("LambdaFunctionConfigurations", [])
    if not isinstance(raw, list):
        raise InvalidParameterValueException("LambdaFunctionConfigurations must be a list.")
    unsupported = [k for k in ("QueueConfigurations", "TopicConfigurations") if body.get(k)]
    if unsupported:
        raise InvalidParameterValueException(
            f"Lamina sends object events to functions only; {unsupported[0]} is not supported."
        )
    configs: list[NotificationConfig] = []
    for item in raw:
        configs.append(_parse_one(item, region, resolve))
    ids = [c.id for c in configs]
    if len(set(ids)) != len(ids):
        raise InvalidParameterValueException("Configuration Ids must be unique.")
    for i, a in enumerate(configs):
        for b in configs[i + 1 :]:
            if overlaps(a, b):
                raise InvalidParameterValueException(
                    "Configurations overlap. Configurations on the same bucket cannot share a "
                    "common event type."
                )
    return tuple(configs)


def _parse_one(item: Any, region: str, resolve: Resolve) -> NotificationConfig:
    if not isinstance(item, dict):
        raise InvalidParameterValueException("Each configuration must be an object.")
    arn = item.get("LambdaFunctionArn")
    if not isinstance(arn, str):
        raise InvalidParameterValueException("LambdaFunctionArn is required.")
    try:
        ref = parse_function_ref(arn)
        if (ref.region or region) != region:
            raise ResourceNotFoundException(f"{arn} is in another region")
        resolve(region, ref, None)
    except LambdaError as exc:
        raise InvalidParameterValueException(
            f"Unable to validate the following destination configurations: {arn} ({exc.message})"
        ) from exc
    events = item.get("Events")
    if not isinstance(events, list) or not events:
        raise InvalidParameterValueException("Events must name at least one event type.")
    for event in events:
        if event not in ACCEPTED_EVENTS:
            raise InvalidParameterValueException(
                f"The event is not supported for notifications: {event}"
            )
    prefix = suffix = ""
    seen: set[str] = set()
    rules = (((item.get("Filter") or {}).get("Key") or {}).get("FilterRules")) or []
    if not isinstance(rules, list):
        raise InvalidParameterValueException("Filter.Key.FilterRules must be a list.")
    for rule in rules:
        name = str((rule or {}).get("Name", "")).lower()
        value = (rule or {}).get("Value")
        if name not in ("prefix", "suffix"):
            raise InvalidParameterValueException("filter rule name must be either prefix or suffix")
        if name in seen:
            raise InvalidParameterValueException(
                "Cannot specify more than one prefix or suffix rule in a filter."
            )
        if not isinstance(value, str) or len(value) > FILTER_VALUE_MAX:
            raise InvalidParameterValueException(
                f"The {name} filter value must be a string of at most {FILTER_VALUE_MAX} "
                "characters."
            )
        seen.add(name)
        if name == "prefix":
            prefix = value
        else:
            suffix = value
    config_id = item.get("Id") or str(uuid.uuid4())
    if not isinstance(config_id, str) or len(config_id) > 1024:
        raise InvalidParameterValueException("Id must be a string of at most 1024 characters.")
    return NotificationConfig(config_id, arn, tuple(events), prefix, suffix)


def _config_from(d: dict[str, Any]) -> NotificationConfig:
    return NotificationConfig(
        d["id"], d["function_arn"], tuple(d["events"]), d.get("prefix", ""), d.get("suffix", "")
    )


def _config_json(configs: tuple[NotificationConfig, ...]) -> str:
    return json.dumps(
        [
            {
                "id": c.id,
                "function_arn": c.function_arn,
                "events": list(c.events),
                "prefix": c.prefix,
                "suffix": c.suffix,
            }
            for c in configs
        ]
    )


def valid_bucket_name(name: str) -> bool:
    """S3's naming rules: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit
    at both ends, no `..`, and not shaped like an IP address."""
    return (
        BUCKET_NAME_RE.fullmatch(name) is not None
        and ".." not in name
        and ".-" not in name
        and "-." not in name
        and IP_LIKE_RE.fullmatch(name) is None
    )


def check_path(raw: Any, hidden: list[Path]) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidParameterValueException("Path is required: the folder the bucket stands for.")
    path = Path(raw)
    if not path.is_absolute():
        raise InvalidParameterValueException(f"Path must be absolute: {raw}")
    real = Path(os.path.realpath(path))
    if not real.is_dir():
        raise InvalidParameterValueException(f"Path is not a folder: {raw}")
    for secret in hidden:
        secret = Path(os.path.realpath(secret))
        if real == secret or secret in real.parents or real in secret.parents:
            raise InvalidParameterValueException(
                f"Path {raw} overlaps Lamina's data dir, which functions must not see."
            )
    return str(real)


class Buckets:
    """The buckets and their notification configurations, in memory and written through."""

    def __init__(
        self,
        db: Database,
        resolve: Resolve,
        *,
        hidden: list[Path],
        managed_root: Path | None = None,
    ) -> None:
        self.db = db
        # Resolved once, so that the paths of managed buckets compare as stored (real paths).
        self.managed_root = None if managed_root is None else Path(os.path.realpath(managed_root))
        self.resolve = resolve
        self.hidden = hidden
        db.create(metadata)
        self.lock = asyncio.Lock()
        self._buckets: dict[str, Bucket] = {}
        self.on_created: list[Callable[[Bucket], Awaitable[None]]] = []  # start watching
        self.on_deleted: list[Callable[[Bucket], Awaitable[None]]] = []  # stop watching

    async def load(self) -> None:
        for bucket in await self.db.run(self._load_rows):
            self._buckets[bucket.name] = bucket

    def _load_rows(self) -> list[Bucket]:
        with self.db.engine.connect() as conn:
            return [
                Bucket(
                    r.name,
                    r.region,
                    r.path,
                    r.created,
                    tuple(_config_from(d) for d in json.loads(r.notification)),
                )
                for r in conn.execute(sa.select(buckets_table))
            ]

    def all(self) -> list[Bucket]:
        return sorted(self._buckets.values(), key=lambda b: b.name)

    def find(self, name: str) -> Bucket | None:
        return self._buckets.get(name)

    def get(self, name: str) -> Bucket:
        found = self._buckets.get(name)
        if found is None:
            raise ResourceNotFoundException(f"The specified bucket does not exist: {name}")
        return found

    async def create(self, name: str, region: str, body: dict[str, Any]) -> tuple[Bucket, bool]:
        """Create the bucket (True) or find the same one again (False, idempotent)."""
        if not valid_bucket_name(name):
            raise InvalidParameterValueException(
                f"The specified bucket is not valid: {name} (3-63 characters: lowercase "
                "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
            )
        path = check_path(body.get("Path"), self.hidden)
        return await self._create(name, region, path)

    def managed_path(self, name: str) -> Path | None:
        """Where a bucket made through the S3 API keeps its files (None: no such place)."""
        return None if self.managed_root is None else self.managed_root / name

    async def create_managed(self, name: str, region: str) -> tuple[Bucket, bool]:
        """A bucket made through the S3 API: its folder is Lamina's own, under the data dir
        (functions reach it through the S3 API, not the file system)."""
        path = self.managed_path(name)
        if path is None or not valid_bucket_name(name):
            raise InvalidParameterValueException(f"The specified bucket is not valid: {name}")
        if name in self._buckets:
            return self._buckets[name], False
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        return await self._create(name, region, str(path))

    def is_managed(self, bucket: Bucket) -> bool:
        path = self.managed_path(bucket.name)
        return path is not None and bucket.path == str(path)

    async def _create(self, name: str, region: str, path: str) -> tuple[Bucket, bool]:
        async with self.lock:
            old = self._buckets.get(name)
            if old is not None:
                if old.path != path:
                    raise ResourceConflictException(f"Bucket {name} already exists for {old.path}.")
                return old, False
            for other in self._buckets.values():
                o = Path(other.path)
                p = Path(path)
                if o == p or o in p.parents or p in o.parents:
                    raise ResourceConflictException(
                        f"Path {path} overlaps bucket {other.name} ({other.path})."
                    )
            created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            bucket = Bucket(name, region, path, created)
            await self.db.run(self._insert, bucket)
            self._buckets[name] = bucket
        for hook in self.on_created:
            await hook(bucket)
        return bucket, True

    async def delete(self, name: str) -> None:
        async with self.lock:
            bucket = self.get(name)
            await self.db.run(self._remove, name)
            del self._buckets[name]
        for hook in self.on_deleted:
            await hook(bucket)

    async def put_notifications(self, name: str, body: dict[str, Any]) -> Bucket:
        async with self.lock:
            bucket = self.get(name)
            configs = parse_notifications(body, bucket.region, self.resolve)
            await self.db.run(self._write_notifications, name, configs)
            bucket = replace(self._buckets[name], notifications=configs)
            self._buckets[name] = bucket
        return bucket

    # -- the database thread ---------------------------------------------------------------------

    def _insert(self, bucket: Bucket) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                buckets_table.insert().values(
                    name=bucket.name,
                    region=bucket.region,
                    path=bucket.path,
                    created=bucket.created,
                    notification="[]",
                    sequencer=0,
                )
            )

    def _remove(self, name: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(buckets_table.delete().where(buckets_table.c.name == name))
            conn.execute(bucket_objects.delete().where(bucket_objects.c.bucket == name))

    def _write_notifications(self, name: str, configs: tuple[NotificationConfig, ...]) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                buckets_table.update()
                .where(buckets_table.c.name == name)
                .values(notification=_config_json(configs))
            )

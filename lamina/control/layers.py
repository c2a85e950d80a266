"""The registry of layers: publish, read, list and delete layer versions; resolve the layer
version ARNs a function names into what its environments mount under /opt.

Like the function registry, reads come from memory and every change is written through the
LayerStore before it is acknowledged. Version numbers count up per layer name and are never
reused, even after every version was deleted.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lamina.control import layers_tree
from lamina.control.code_store import MAX_UNZIPPED_BYTES, CodeStore
from lamina.control.layers_store import LayerStore, LayerVersion
from lamina.control.model import CodeRef, LayerRef
from lamina.control.policies import Policies
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)

LIST_PAGE_MAX = 50

_REGION = r"(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d"
LAYER_NAME_RE = re.compile(r"[a-zA-Z0-9\-_]{1,140}")
LAYER_ARN_RE = re.compile(
    rf"arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>{_REGION}):(?P<account>\d{{12}}):layer:"
    r"(?P<name>[a-zA-Z0-9\-_]{1,140})"
)
LAYER_VERSION_ARN_RE = re.compile(LAYER_ARN_RE.pattern + r":(?P<version>[0-9]+)")
# The model's pattern for LayerVersionArn, quoted in validation messages as AWS quotes it.
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|"
    r"(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
NOT_FOUND = "The resource you requested does not exist."


class Layers:
    def __init__(
        self,
        *,
        db: Database,
        store: LayerStore,
        code: CodeStore,
        account_id: str,
        runtimes: Mapping[str, str | None],
    ) -> None:
        self.db = db
        self.store = store
        self.code = code
        self.account_id = account_id
        self.runtimes = runtimes  # every runtime id Lamina knows (CompatibleRuntimes' enum)
        self.policies: Policies | None = None  # layer version policies (wired by server.py)
        # (region, name) -> version number -> version, tombstones included
        self._layers: dict[tuple[str, str], dict[int, LayerVersion]] = {}

    async def load(self) -> None:
        for version in await self.db.run(self.store.load_all):
            self._layers.setdefault((version.region, version.name), {})[version.version] = version

    # -- names -----------------------------------------------------------------------------------

    def layer_name(self, region: str, value: str) -> str:
        """A LayerName path member: a name or a layer ARN of this region and account."""
        if LAYER_NAME_RE.fullmatch(value):
            return value
        m = LAYER_ARN_RE.fullmatch(value)
        if m is None:
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at 'layerName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|"
                r"[a-zA-Z0-9-_]+"
            )
        if m["region"] != region or m["account"] != self.account_id:
            raise ResourceNotFoundException(NOT_FOUND)
        return m["name"]

    # -- writes ----------------------------------------------------------------------------------

    async def publish(
        self, region: str, name: str, zip_bytes: bytes, **fields: Any
    ) -> LayerVersion:
        code = await asyncio.to_thread(self.code.put, zip_bytes)
        versions = self._layers.setdefault((region, name), {})
        number = max(versions, default=0) + 1
        version = LayerVersion(
            region=region,
            account_id=self.account_id,
            name=name,
            version=number,
            code=code,
            **fields,
        )
        versions[number] = version  # claimed before the write: a concurrent publish gets the next
        try:
            await self.db.run(self.store.put, version)
        except BaseException:
            versions.pop(number, None)
            raise
        return version

    async def delete(self, region: str, name: str, number: int) -> None:
        """Idempotent, as on Lambda. Functions that use the version keep its content."""
        version = self._layers.get((region, name), {}).get(number)
        if version is None or version.deleted:
            return
        tombstone = dataclasses.replace(version, deleted=True)
        await self.db.run(self.store.put, tombstone)
        self._layers[(region, name)][number] = tombstone
        if self.policies is not None:
            await self.policies.forget(version.arn)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, region: str, name: str, number: int) -> LayerVersion:
        if number < 1:
            raise InvalidParameterValueException("Layer Version Cannot be less than 1")
        version = self._layers.get((region, name), {}).get(number)
        if version is None or version.deleted:
            raise ResourceNotFoundException(NOT_FOUND)
        return version

    def get_by_arn(self, region: str, arn: str) -> LayerVersion:
        m = LAYER_VERSION_ARN_RE.fullmatch(arn)
        if m is None:
            raise ValidationException(
                f"1 validation error detected: Value '{arn}' at 'arn' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: "
                f"{LAYER_VERSION_ARN_PATTERN}"
            )
        if m["region"] != region or m["account"] != self.account_id:
            raise ResourceNotFoundException(NOT_FOUND)
        return self.get(region, m["name"], int(m["version"]))

    def list_layers(
        self,
        region: str,
        *,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> tuple[list[LayerVersion], str | None]:
        """The newest matching version of every layer that has one, by layer name."""
        latest: list[LayerVersion] = []
        for (r, _name), versions in sorted(self._layers.items()):
            if r != region:
                continue
            match = next(
                (
                    v
                    for _n, v in sorted(versions.items(), reverse=True)
                    if not v.deleted and v.matches(runtime, architecture)
                ),
                None,
            )
            if match is not None:
                latest.append(match)
        return _page(latest, marker, max_items)

    def list_versions(
        self,
        region: str,
        name: str,
        *,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> tuple[list[LayerVersion], str | None]:
        """A layer's live versions matching the filters, newest first."""
        versions = self._layers.get((region, name), {})
        live = [
            v
            for _n, v in sorted(versions.items(), reverse=True)
            if not v.deleted and v.matches(runtime, architecture)
        ]
        return _page(live, marker, max_items)

    def code_size(self, region: str) -> int:
        """Bytes of the live layer versions' archives (GetAccountSettings' TotalCodeSize)."""
        return sum(
            v.code.size
            for (r, _name), versions in self._layers.items()
            if r == region
            for v in versions.values()
            if not v.deleted
        )

    # -- what functions use ----------------------------------------------------------------------

    async def attach(self, region: str, arns: Sequence[str]) -> tuple[LayerRef, ...]:
        """Resolve a function's `Layers` with Lambda's rules and build its /opt tree."""
        refs: list[LayerRef] = []
        seen: dict[tuple[str, str], str] = {}
        for arn in arns:
            m = LAYER_VERSION_ARN_RE.fullmatch(arn)
            if m is None:
                if re.fullmatch(LAYER_VERSION_ARN_PATTERN, arn):  # an AWS-managed layer
                    raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
                raise ValidationException(
                    f"1 validation error detected: Value '[{', '.join(arns)}]' at 'layers' "
                    "failed to satisfy constraint: Member must satisfy constraint: [Member must "
                    "have length less than or equal to 2048, Member must have length greater "
                    "than or equal to 1, Member must satisfy regular expression pattern: "
                    f"{LAYER_VERSION_ARN_PATTERN}, Member must not be null]"
                )
            if m["region"] != region:
                raise InvalidParameterValueException(
                    "Layers are not in the same region as the function. "
                    f"Layers are expected to be in region {region}."
                )
            key = (m["account"], m["name"])
            if key in seen and seen[key] != arn:
                raise InvalidParameterValueException(
                    "Two different versions of the same layer are not allowed to be referenced "
                    f"in the same function. {seen[key]} and {arn} are versions of the same layer."
                )
            seen[key] = arn
            version = None
            if m["account"] == self.account_id:
                version = self._layers.get((region, m["name"]), {}).get(int(m["version"]))
            if version is None or version.deleted:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            refs.append(version.ref())
        await asyncio.to_thread(layers_tree.build_opt_tree, self.code, [r.code for r in refs])
        return tuple(refs)


def check_unzipped_size(code: CodeRef, layers: Sequence[LayerRef]) -> None:
    """Function code and layers together stay within Lambda's 250 MB, unzipped."""
    total = code.unzipped_size + sum(ref.code.unzipped_size for ref in layers)
    if layers and total > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueException(
            "Function code combined with layers exceeds the maximum allowed size of "
            f"{MAX_UNZIPPED_BYTES} bytes. The actual size is {total} bytes."
        )


def _page(
    items: list[LayerVersion], marker: str | None, max_items: int | None
) -> tuple[list[LayerVersion], str | None]:
    """One page after `marker` (an opaque token naming the last item returned)."""
    start = 0
    if marker:
        last = _decode_marker(marker)
        keys = [f"{v.name}:{v.version}" for v in items]
        start = keys.index(last) + 1 if last in keys else _after(items, last)
    limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
    page = items[start : start + limit]
    more = start + limit < len(items)
    next_marker = _encode_marker(f"{page[-1].name}:{page[-1].version}") if more and page else None
    return page, next_marker


def _after(items: list[LayerVersion], last: str) -> int:
    """Where to resume when the marker's item is gone (deleted between pages)."""
    name, _, number = last.rpartition(":")
    n = int(number) if number.isdecimal() else 0
    for i, v in enumerate(items):
        if v.name > name or (v.name == name and v.version < n):
            return i
    return len(items)


def _encode_marker(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc

"""Where layer versions are kept: one row per version, deleted ones included.

A deleted version stays as a tombstone row, so that the layer's version numbers are never
reused (as on Lambda) and its content stays known to the functions that already use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from lamina.control.model import CodeRef, LayerRef, now_lambda_timestamp
from lamina.db import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerVersion:
    """One published, immutable version of a layer."""

    region: str
    account_id: str
    name: str
    version: int
    code: CodeRef
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()
    license_info: str | None = None
    created_date: str = field(default_factory=now_lambda_timestamp)
    deleted: bool = False

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account_id, self.name)

    @property
    def arn(self) -> str:
        return f"{self.layer_arn}:{self.version}"

    def ref(self) -> LayerRef:
        return LayerRef(arn=self.arn, code=self.code)

    def matches(self, runtime: str | None, architecture: str | None) -> bool:
        """ListLayers/ListLayerVersions filters: the value must be among the declared ones."""
        if runtime is not None and runtime not in self.compatible_runtimes:
            return False
        return architecture is None or architecture in self.compatible_architectures


def layer_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:layer:{name}"


class LayerStore(Protocol):
    def load_all(self) -> list[LayerVersion]: ...
    def put(self, version: LayerVersion) -> None: ...


metadata = sa.MetaData()

layer_versions = sa.Table(
    "layer_versions",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(140), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)


def _to_json(version: LayerVersion) -> str:
    return json.dumps(asdict(version))


def _from_json(text: str) -> LayerVersion:
    data: dict[str, Any] = json.loads(text)
    data["code"] = CodeRef(**data["code"])
    data["compatible_runtimes"] = tuple(data["compatible_runtimes"])
    data["compatible_architectures"] = tuple(data["compatible_architectures"])
    return LayerVersion(**data)


class SqlLayerStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    def load_all(self) -> list[LayerVersion]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(layer_versions.c.record)).scalars().all()
        return [_from_json(r) for r in rows]

    def put(self, version: LayerVersion) -> None:
        key = (
            (layer_versions.c.region == version.region)
            & (layer_versions.c.name == version.name)
            & (layer_versions.c.version == version.version)
        )
        text = _to_json(version)
        with self.db.engine.begin() as conn:
            if not conn.execute(layer_versions.update().where(key).values(record=text)).rowcount:
                conn.execute(
                    layer_versions.insert().values(
                        region=version.region,
                        name=version.name,
                        version=version.version,
                        record=text,
                    )
                )

"""Event source mappings and the checkpoints of ordered sources, in the shared database.

A mapping is one row: its settings as JSON plus the state it was last left in, so that a restart
resumes every enabled mapping (a transition cut short by a crash is completed at load). The
checkpoints of ordered sources are rows keyed by mapping and partition, deleted with the mapping.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from lamina.db import Database
from lamina.sources.base import MappingConfig

metadata = sa.MetaData()

mappings_table = sa.Table(
    "event_source_mappings",
    metadata,
    sa.Column("uuid", sa.String(36), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("state_reason", sa.Text, nullable=False),
)

checkpoints_table = sa.Table(
    "source_checkpoints",
    metadata,
    sa.Column("mapping_uuid", sa.String(36), primary_key=True),
    sa.Column("partition", sa.String(256), primary_key=True),
    sa.Column("position", sa.Text, nullable=False),
)

_TUPLES = ("filters", "function_response_types", "queues", "topics", "source_access")


@dataclass(frozen=True, slots=True)
class StoredMapping:
    config: MappingConfig
    state: str
    state_reason: str


def encode(config: MappingConfig) -> str:
    return json.dumps(asdict(config), separators=(",", ":"), sort_keys=True)


def decode(text: str) -> MappingConfig:
    data: dict[str, Any] = json.loads(text)
    for key in _TUPLES:
        data[key] = tuple(data.get(key) or ())
    if data.get("endpoints") is not None:
        data["endpoints"] = {k: tuple(v) for k, v in data["endpoints"].items()}
    return MappingConfig(**data)


class MappingStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    def load_all(self) -> list[StoredMapping]:
        t = mappings_table
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.config, t.c.state, t.c.state_reason)).all()
        return [StoredMapping(decode(r.config), r.state, r.state_reason) for r in rows]

    def put(self, config: MappingConfig, state: str, state_reason: str) -> None:
        t = mappings_table
        with self.db.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.uuid == config.uuid))
            conn.execute(
                t.insert().values(
                    uuid=config.uuid,
                    config=encode(config),
                    state=state,
                    state_reason=state_reason,
                )
            )

    def remove(self, uuid: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(mappings_table.delete().where(mappings_table.c.uuid == uuid))
            conn.execute(checkpoints_table.delete().where(checkpoints_table.c.mapping_uuid == uuid))


class SqlCheckpoints:
    """The Checkpoints of base.py on the shared database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    async def load(self, mapping_uuid: str, partition: str) -> str | None:
        return await self.db.run(self._load, mapping_uuid, partition)

    async def save(self, mapping_uuid: str, partition: str, position: str) -> None:
        await self.db.run(self._save, mapping_uuid, partition, position)

    def _load(self, mapping_uuid: str, partition: str) -> str | None:
        t = checkpoints_table
        with self.db.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.c.position).where(
                    t.c.mapping_uuid == mapping_uuid, t.c.partition == partition
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def _save(self, mapping_uuid: str, partition: str, position: str) -> None:
        t = checkpoints_table
        with self.db.engine.begin() as conn:
            updated = conn.execute(
                t.update()
                .where(t.c.mapping_uuid == mapping_uuid, t.c.partition == partition)
                .values(position=position)
            ).rowcount
            if not updated:
                conn.execute(
                    t.insert().values(
                        mapping_uuid=mapping_uuid, partition=partition, position=position
                    )
                )

"""FunctionStore on SQLAlchemy Core. A record is one row holding its JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from lamina.control.model import CodeRef, FunctionConfig, FunctionRecord
from lamina.db import Database

metadata = sa.MetaData()

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)


def record_to_json(record: FunctionRecord) -> str:
    return json.dumps(
        {
            "latest": asdict(record.latest),
            "reserved_concurrency": record.reserved_concurrency,
            "tags": record.tags,
        }
    )


def config_from_dict(data: dict[str, Any]) -> FunctionConfig:
    data = dict(data)
    data["code"] = CodeRef(**data["code"])
    data["architectures"] = tuple(data["architectures"])
    data["layers"] = tuple(data["layers"])
    return FunctionConfig(**data)


def record_from_json(text: str) -> FunctionRecord:
    data = json.loads(text)
    return FunctionRecord(
        latest=config_from_dict(data["latest"]),
        reserved_concurrency=data.get("reserved_concurrency"),
        tags=data.get("tags") or {},
    )


class SqlFunctionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    def load_all(self) -> list[FunctionRecord]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(functions.c.record)).scalars().all()
        return [record_from_json(r) for r in rows]

    def put(self, record: FunctionRecord) -> None:
        region, name = record.key
        text = record_to_json(record)
        with self.db.engine.begin() as conn:
            updated = conn.execute(
                functions.update()
                .where(functions.c.region == region, functions.c.name == name)
                .values(record=text)
            ).rowcount
            if not updated:
                conn.execute(functions.insert().values(region=region, name=name, record=text))

    def delete(self, region: str, name: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                functions.delete().where(functions.c.region == region, functions.c.name == name)
            )

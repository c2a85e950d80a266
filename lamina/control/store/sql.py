"""FunctionStore on SQLAlchemy Core: a row per function, per published version and per alias,
each holding its JSON form."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from lamina.control.model import Alias, CodeRef, FunctionConfig, FunctionRecord, LayerRef
from lamina.db import Database

metadata = sa.MetaData()

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)

function_versions = sa.Table(
    "function_versions",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(16), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
)

function_aliases = sa.Table(
    "function_aliases",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("alias_record", sa.Text, nullable=False),
)


def record_to_json(record: FunctionRecord) -> str:
    return json.dumps(
        {
            "latest": asdict(record.latest),
            "reserved_concurrency": record.reserved_concurrency,
            "tags": record.tags,
            "last_version": record.last_version,
        }
    )


def config_from_dict(data: dict[str, Any]) -> FunctionConfig:
    data = dict(data)
    data["code"] = CodeRef(**data["code"])
    data["architectures"] = tuple(data["architectures"])
    data["layers"] = tuple(
        LayerRef(arn=ref["arn"], code=CodeRef(**ref["code"])) for ref in data["layers"]
    )
    return FunctionConfig(**data)


def record_from_json(text: str) -> FunctionRecord:
    data = json.loads(text)
    return FunctionRecord(
        latest=config_from_dict(data["latest"]),
        reserved_concurrency=data.get("reserved_concurrency"),
        tags=data.get("tags") or {},
        last_version=data.get("last_version") or 0,
    )


def alias_to_json(alias: Alias) -> str:
    return json.dumps({**asdict(alias), "weights": dict(alias.weights)})


def alias_from_json(text: str) -> Alias:
    return Alias(**json.loads(text))


class SqlFunctionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    def load_all(self) -> list[FunctionRecord]:
        versions: dict[tuple[str, str], list[FunctionConfig]] = defaultdict(list)
        aliases: dict[tuple[str, str], list[Alias]] = defaultdict(list)
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(functions.c.record)).scalars().all()
            for region, name, text in conn.execute(
                sa.select(
                    function_versions.c.region, function_versions.c.name, function_versions.c.config
                )
            ):
                versions[(region, name)].append(config_from_dict(json.loads(text)))
            for region, name, text in conn.execute(
                sa.select(
                    function_aliases.c.region,
                    function_aliases.c.name,
                    function_aliases.c.alias_record,
                )
            ):
                aliases[(region, name)].append(alias_from_json(text))
        records = [record_from_json(r) for r in rows]
        for record in records:
            found = sorted(versions.get(record.key, []), key=lambda c: int(c.version))
            record.versions = {c.version: c for c in found}
            record.aliases = {
                a.name: a for a in sorted(aliases.get(record.key, []), key=lambda a: a.name)
            }
        return records

    def put(self, record: FunctionRecord) -> None:
        with self.db.engine.begin() as conn:
            _put_record(conn, record)

    def delete(self, region: str, name: str) -> None:
        with self.db.engine.begin() as conn:
            for table in (functions, function_versions, function_aliases):
                conn.execute(table.delete().where(table.c.region == region, table.c.name == name))

    def put_version(self, record: FunctionRecord, version: FunctionConfig) -> None:
        with self.db.engine.begin() as conn:
            _put_record(conn, record)
            conn.execute(
                function_versions.insert().values(
                    region=version.region,
                    name=version.name,
                    version=version.version,
                    config=json.dumps(asdict(version)),
                )
            )

    def delete_version(self, region: str, name: str, version: str) -> None:
        t = function_versions
        with self.db.engine.begin() as conn:
            conn.execute(
                t.delete().where(t.c.region == region, t.c.name == name, t.c.version == version)
            )

    def put_alias(self, alias: Alias) -> None:
        t = function_aliases
        where = (
            t.c.region == alias.region,
            t.c.name == alias.function_name,
            t.c.alias == alias.name,
        )
        text = alias_to_json(alias)
        with self.db.engine.begin() as conn:
            if not conn.execute(t.update().where(*where).values(alias_record=text)).rowcount:
                conn.execute(
                    t.insert().values(
                        region=alias.region,
                        name=alias.function_name,
                        alias=alias.name,
                        alias_record=text,
                    )
                )

    def delete_alias(self, region: str, name: str, alias: str) -> None:
        t = function_aliases
        with self.db.engine.begin() as conn:
            conn.execute(
                t.delete().where(t.c.region == region, t.c.name == name, t.c.alias == alias)
            )


def _put_record(conn: sa.Connection, record: FunctionRecord) -> None:
    region, name = record.key
    text = record_to_json(record)
    updated = conn.execute(
        functions.update()
        .where(functions.c.region == region, functions.c.name == name)
        .values(record=text)
    ).rowcount
    if not updated:
        conn.execute(functions.insert().values(region=region, name=name, record=text))

"""The embedded database: one SQLAlchemy engine (SQLite in WAL mode by default) and one thread.

Every statement runs on a single worker thread, so the event loop never blocks on SQLite and
SQLite never sees two writers. A PostgreSQL URL works the same way (SQLAlchemy Core serves both).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

T = TypeVar("T")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lamina-db")

    def create(self, metadata: sa.MetaData) -> None:
        metadata.create_all(self.engine)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        return self._executor.submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL survives kill -9 without losing committed rows; NORMAL skips the fsync per commit
    # (durable against process crashes, not power loss: see docs/behaviour.md).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()

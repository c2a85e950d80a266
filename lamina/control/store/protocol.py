"""The registry's persistence contract. Calls are blocking; the registry runs them on the DB thread.

A function is stored as three kinds of rows: the function (its $LATEST and function-wide
settings), one per published version, one per alias. `delete` removes all of a function's rows.
"""

from __future__ import annotations

from typing import Protocol

from lamina.control.model import Alias, FunctionConfig, FunctionRecord


class FunctionStore(Protocol):
    def load_all(self) -> list[FunctionRecord]: ...
    def put(self, record: FunctionRecord) -> None: ...
    def delete(self, region: str, name: str) -> None: ...
    def put_version(self, record: FunctionRecord, version: FunctionConfig) -> None:
        """Write a new version and the record (its `last_version`, $LATEST) in one transaction."""
        ...

    def delete_version(self, region: str, name: str, version: str) -> None: ...
    def put_alias(self, alias: Alias) -> None: ...
    def delete_alias(self, region: str, name: str, alias: str) -> None: ...

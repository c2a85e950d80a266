"""The registry's persistence contract. Calls are blocking; the registry runs them on the DB thread."""

from __future__ import annotations

from typing import Protocol

from lamina.control.model import FunctionRecord


class FunctionStore(Protocol):
    def load_all(self) -> list[FunctionRecord]: ...
    def put(self, record: FunctionRecord) -> None: ...
    def delete(self, region: str, name: str) -> None: ...

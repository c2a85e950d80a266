"""Where the registry keeps its records: a small protocol with a SQL (SQLAlchemy Core) implementation."""

from lamina.control.store.protocol import FunctionStore
from lamina.control.store.sql import SqlFunctionStore

__all__ = ["FunctionStore", "SqlFunctionStore"]

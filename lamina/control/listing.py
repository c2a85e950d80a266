"""The orders and pages of the list operations over registry records: ListFunctions (optionally
every version), ListVersionsByFunction and ListAliases. Markers are opaque (control/paging.py);
each list's keys sort as strings in the order the list is shown."""

from __future__ import annotations

from collections.abc import Iterable

from lamina.control.model import LATEST, Alias, FunctionConfig, FunctionRecord
from lamina.control.paging import page

Page = tuple[list[FunctionConfig], str | None]


def functions_page(
    records: Iterable[FunctionRecord],
    marker: str | None,
    max_items: int | None,
    *,
    all_versions: bool = False,
) -> Page:
    """ListFunctions: $LATEST of each function by name, or with `all_versions` every version."""
    ordered = sorted(records, key=lambda r: r.latest.name)
    if not all_versions:
        return page(((r.latest.name, r.latest) for r in ordered), marker, max_items)
    return page(
        (
            (f"{r.latest.name}\0{version_key(c.version)}", c)
            for r in ordered
            for c in r.all_versions()
        ),
        marker,
        max_items,
    )


def versions_page(record: FunctionRecord, marker: str | None, max_items: int | None) -> Page:
    """ListVersionsByFunction: $LATEST first, then the published versions ascending."""
    return page(((version_key(c.version), c) for c in record.all_versions()), marker, max_items)


def aliases_page(
    record: FunctionRecord,
    function_version: str | None,
    marker: str | None,
    max_items: int | None,
) -> tuple[list[Alias], str | None]:
    """ListAliases by name; with `function_version` only the aliases that may run it."""
    found = sorted(record.aliases.values(), key=lambda a: a.name)
    if function_version is not None:
        found = [a for a in found if function_version in a.versions]
    return page(((a.name, a) for a in found), marker, max_items)


def version_key(version: str) -> str:
    """Sorts $LATEST first, then versions by number, as plain strings."""
    return "" if version == LATEST else f"{int(version):012d}"

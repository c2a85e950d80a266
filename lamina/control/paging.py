"""Marker/MaxItems pagination as Lambda's list operations do it: at most 50 items a page, an
opaque NextMarker only when more follow (paginators stop when it is absent)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TypeVar

from lamina.errors import InvalidParameterValueException

PAGE_MAX = 50
T = TypeVar("T")


def page(
    items: Iterable[tuple[str, T]], marker: str | None, max_items: int | None
) -> tuple[list[T], str | None]:
    """One page of `items` (ascending by key) after the opaque `marker`, and the next marker."""
    after = _decode_marker(marker) if marker else None
    limit = min(max_items or PAGE_MAX, PAGE_MAX)
    page: list[tuple[str, T]] = []
    more = False
    for key, item in items:
        if after is not None and key <= after:
            continue
        if len(page) == limit:
            more = True
            break
        page.append((key, item))
    next_marker = _encode_marker(page[-1][0]) if more else None
    return [item for _, item in page], next_marker


def _encode_marker(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc

"""Concurrency admission: the account limit, reserved concurrency, and Lambda's throttle reasons.

A function with reserved concurrency may run that many at once and no more; all other functions
share what is left of the account limit (the unreserved pool). A refusal is a 429 with the
Reason Lambda uses. Counting is in memory: one server process owns its environments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lamina.errors import TooManyRequestsException


@dataclass(frozen=True, slots=True)
class Lease:
    function: tuple[str, str]
    reserved: bool


class Admission:
    def __init__(self) -> None:
        self._by_function: dict[tuple[str, str], int] = defaultdict(int)
        self._unreserved_in_use: dict[str, int] = defaultdict(int)  # per region

    def acquire(
        self, function: tuple[str, str], reserved: int | None, unreserved_pool: int
    ) -> Lease:
        region = function[0]
        if reserved is not None:
            if self._by_function[function] >= reserved:
                raise TooManyRequestsException("ReservedFunctionConcurrentInvocationLimitExceeded")
            self._by_function[function] += 1
            return Lease(function, True)
        if self._unreserved_in_use[region] >= unreserved_pool:
            raise TooManyRequestsException("ConcurrentInvocationLimitExceeded")
        self._unreserved_in_use[region] += 1
        self._by_function[function] += 1
        return Lease(function, False)

    def release(self, lease: Lease) -> None:
        self._by_function[lease.function] -= 1
        if self._by_function[lease.function] <= 0:
            del self._by_function[lease.function]
        if not lease.reserved:
            self._unreserved_in_use[lease.function[0]] -= 1

    def in_use(self, function: tuple[str, str] | None = None) -> int:
        if function is None:
            return sum(self._by_function.values())
        return self._by_function.get(function, 0)

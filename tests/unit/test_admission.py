"""Admission: reserved concurrency caps a function; the rest share the unreserved pool."""

from __future__ import annotations

import pytest

from lamina.errors import TooManyRequestsException
from lamina.invoke.admission import Admission

F = ("us-east-1", "f")
G = ("us-east-1", "g")


def test_reserved_function_is_capped_at_its_reservation() -> None:
    adm = Admission()
    lease = adm.acquire(F, 1, unreserved_pool=100)
    with pytest.raises(TooManyRequestsException) as exc:
        adm.acquire(F, 1, unreserved_pool=100)
    assert exc.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    adm.release(lease)
    adm.release(adm.acquire(F, 1, unreserved_pool=100))
    assert adm.in_use() == 0


def test_reserved_zero_always_throttles() -> None:
    with pytest.raises(TooManyRequestsException) as exc:
        Admission().acquire(F, 0, unreserved_pool=100)
    assert exc.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_unreserved_pool_is_shared_and_reported_as_account_limit() -> None:
    adm = Admission()
    a = adm.acquire(F, None, unreserved_pool=2)
    adm.acquire(G, None, unreserved_pool=2)
    with pytest.raises(TooManyRequestsException) as exc:
        adm.acquire(F, None, unreserved_pool=2)
    assert exc.value.reason == "ConcurrentInvocationLimitExceeded"
    adm.release(a)
    adm.acquire(F, None, unreserved_pool=2)
    assert adm.in_use(F) == 1 and adm.in_use(G) == 1


def test_reserved_calls_do_not_use_the_unreserved_pool() -> None:
    adm = Admission()
    adm.acquire(F, 5, unreserved_pool=1)
    adm.acquire(F, 5, unreserved_pool=1)
    adm.acquire(G, None, unreserved_pool=1)  # the pool is still free for g


def test_lease_remembers_how_it_was_counted() -> None:
    adm = Admission()
    lease = adm.acquire(F, None, unreserved_pool=1)
    # The reservation changes while the call runs; releasing must undo what acquiring did.
    adm.release(lease)
    adm.acquire(G, None, unreserved_pool=1)

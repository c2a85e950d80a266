"""Shared by the event source tests: mappings made and cleaned up, the batches a function got
(read from its logs), and polling with deadlines."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import client_for, wait_for

DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def logs(endpoint: str) -> Any:
    return client_for(endpoint, "logs")


@pytest.fixture
def mappings(lambda_client: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create a mapping (and wait until it is Enabled); every one made is deleted afterwards."""
    made: list[str] = []

    def create(**kwargs: Any) -> dict[str, Any]:
        resp = lambda_client.create_event_source_mapping(**kwargs)
        made.append(resp["UUID"])
        wait_state(
            lambda_client, resp["UUID"], "Enabled" if kwargs.get("Enabled", True) else "Disabled"
        )
        return dict(resp)

    yield create
    for ident in made:
        with contextlib.suppress(ClientError):
            lambda_client.delete_event_source_mapping(UUID=ident)


def wait_state(client: Any, ident: str, state: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = client.get_event_source_mapping(UUID=ident)
        if got["State"] == state or time.monotonic() > deadline:
            assert got["State"] == state
            return dict(got)
        time.sleep(0.05)


def events_of(logs: Any, function: str) -> list[dict[str, Any]]:
    """The events the batch function logged, in order."""
    group = f"/aws/lambda/{function}"
    out: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": "EVENT"}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.filter_log_events(**kwargs)
        except ClientError:
            return []
        for item in page["events"]:
            for line in item["message"].splitlines():
                if line.startswith("EVENT "):
                    out.append(json.loads(line[6:]))
        token = page.get("nextToken")
        if not token:
            return out


def records_of(logs: Any, function: str) -> list[dict[str, Any]]:
    return [r for e in events_of(logs, function) for r in e.get("Records", [])]


def poll(check: Callable[[], Any], timeout_s: float = DEADLINE_S, what: str = "") -> Any:
    """wait_for with the event source tests' longer deadline."""
    return wait_for(check, timeout_s, what or str(check))

"""The parts of the event source framework every kind relies on: batch failure answers, kinds."""

from __future__ import annotations

import pytest

from lamina.errors import InvalidParameterValueException
from lamina.sources.base import (
    CreateRequest,
    MappingConfig,
    SourceKind,
    SourceKinds,
    arn_service,
    failed_items,
)

IDS = ["a", "b", "c"]


@pytest.mark.parametrize(
    "response",
    [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}', b"  "],
)
def test_complete_success(response: bytes) -> None:
    assert failed_items(response, IDS) == []


@pytest.mark.parametrize(
    "response",
    [
        b"not json",
        b'"a string"',
        b"[1]",
        b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
        b'{"batchItemFailures": [{"itemIdentifier": null}]}',
        b'{"batchItemFailures": [{"itemIdentifer": "a"}]}',
        b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}',
        b'{"batchItemFailures": "a"}',
        b'{"batchItemFailures": ["a"]}',
    ],
)
def test_complete_failure(response: bytes) -> None:
    assert failed_items(response, IDS) is None


def test_named_failures_in_batch_order() -> None:
    response = b'{"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "a"}]}'
    assert failed_items(response, IDS) == ["a", "c"]


async def _open(_m: object, _c: object) -> list[object]:
    return []


def _kind(name: str, service: str) -> SourceKind:
    return SourceKind(
        name=name,
        event_source=f"aws:{name}",
        ordered=False,
        default_batch_size=10,
        max_batch_size=10_000,
        claims=lambda r: arn_service(r.event_source_arn) == service,
        open=_open,  # type: ignore[arg-type]
    )


def test_kinds_claim_by_arn_and_refuse_the_unknown() -> None:
    kinds = SourceKinds()
    kinds.register(_kind("sqs", "sqs"))
    kinds.register(_kind("rmq", "mq"))
    assert kinds.claim(CreateRequest("arn:aws:sqs:us-east-1:000000000000:q", None)).name == "sqs"
    assert (
        kinds.claim(CreateRequest("arn:aws:mq:us-east-1:000000000000:broker:b:id", None)).name
        == "rmq"
    )
    with pytest.raises(InvalidParameterValueException, match="Unrecognized event source"):
        kinds.claim(CreateRequest("arn:aws:kinesis:us-east-1:000000000000:stream/s", None))
    with pytest.raises(ValueError):
        kinds.register(_kind("sqs", "sqs"))


def test_mapping_arn_and_access() -> None:
    m = MappingConfig(
        uuid="u",
        region="us-east-1",
        account_id="000000000000",
        kind="rmq",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
        batch_size=10,
        source_access=({"Type": "VIRTUAL_HOST", "URI": "/v"},),
    )
    assert m.arn == "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:u"
    assert m.access("VIRTUAL_HOST") == "/v"
    assert m.access("BASIC_AUTH") is None

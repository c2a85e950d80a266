"""The pure parts of the stream sources: how they are named, typed and shaped."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from lamina.errors import InvalidParameterValueException, ValidationException
from lamina.sources.base import MappingConfig, Record
from lamina.sources.postgres_changes import TableStream, attribute, parse_arn
from lamina.sources.redis_streams import entry_record, parse_id, start_id, stream_key
from lamina.sources.streams import batch_info, check_stream_settings, iso_ms

REDIS_ARN = "arn:aws:redis:us-east-1:000000000000:stream/orders:eu/2024"


def mapping(**changes: Any) -> MappingConfig:
    values: dict[str, Any] = {
        "uuid": "u-1",
        "region": "us-east-1",
        "account_id": "000000000000",
        "kind": "redis",
        "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "event_source_arn": REDIS_ARN,
        "batch_size": 100,
        "starting_position": "LATEST",
    }
    values.update(changes)
    return MappingConfig(**values)


# -- Redis ---------------------------------------------------------------------------------------


def test_stream_key_is_everything_after_stream_slash() -> None:
    assert stream_key(REDIS_ARN) == "orders:eu/2024"
    assert stream_key("arn:aws:redis:us-east-1:000000000000:stream/") is None
    assert stream_key("arn:aws:redis:us-east-1:000000000000:table/x") is None
    assert stream_key("arn:aws:sqs:us-east-1:000000000000:stream/x") is None


def test_entry_ids_order_numerically() -> None:
    assert parse_id("1700000000000-10") > parse_id("1700000000000-9")
    assert parse_id("1700000000001-0") > parse_id("1700000000000-99")


@pytest.mark.parametrize(
    ("position", "stamp", "expected"),
    [
        ("TRIM_HORIZON", None, "0"),
        ("LATEST", None, "$"),
        ("AT_TIMESTAMP", 1700000000.5, f"1700000000499-{2**64 - 1}"),
    ],
)
def test_the_group_starts_at_the_starting_position(
    position: str, stamp: float | None, expected: str
) -> None:
    m = mapping(starting_position=position, starting_position_timestamp=stamp)
    assert start_id(m) == expected


def test_a_data_field_is_the_record_data_as_is() -> None:
    record = entry_record(mapping(), "orders", "1700000000123-4", {b"data": b"\xff\x00raw"})
    kinesis = record.payload["kinesis"]
    assert base64.b64decode(kinesis["data"]) == b"\xff\x00raw"
    assert kinesis["sequenceNumber"] == record.id == "1700000000123-4"
    assert kinesis["partitionKey"] == "orders"
    assert kinesis["approximateArrivalTimestamp"] == 1700000000.123
    assert record.arrived_s == 1700000000.123
    assert record.payload["eventID"] == "shardId-000000000000:1700000000123-4"
    assert record.payload["eventName"] == "aws:kinesis:record"
    assert record.payload["eventSource"] == "aws:kinesis"
    assert record.payload["eventSourceARN"] == REDIS_ARN
    assert record.size == len(json.dumps(record.payload, separators=(",", ":"))) + 1


def test_other_fields_become_a_json_object() -> None:
    fields = {b"user": b"ann", b"amount": b"12", b"partitionKey": b"p-7"}
    record = entry_record(mapping(), "orders", "1-0", fields)
    data = json.loads(base64.b64decode(record.payload["kinesis"]["data"]))
    assert data == {"user": "ann", "amount": "12", "partitionKey": "p-7"}
    assert record.payload["kinesis"]["partitionKey"] == "p-7"
    assert record.filter_view is not None and record.filter_view["data"] == data


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:postgres:us-east-1:000000000000:table/orders",
            ("public", "orders", "NEW_AND_OLD_IMAGES"),
        ),
        (
            "arn:aws:postgres:us-east-1:000000000000:table/shop.orders",
            ("shop", "orders", "NEW_AND_OLD_IMAGES"),
        ),
        (
            "arn:aws:postgres:us-east-1:000000000000:table/shop.orders/stream/KEYS_ONLY",
            ("shop", "orders", "KEYS_ONLY"),
        ),
        ("arn:aws:postgres:us-east-1:000000000000:table/orders/stream/NOPE", None),
        ("arn:aws:postgres:us-east-1:000000000000:table/", None),
        ("arn:aws:postgres:us-east-1:000000000000:stream/orders", None),
        ("arn:aws:dynamodb:us-east-1:000000000000:table/orders", None),
    ],
)
def test_table_arns(arn: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_arn(arn) == (TableStream(*expected) if expected else None)


@pytest.mark.parametrize(
    ("value", "column_type", "expected"),
    [
        (None, "text", {"NULL": True}),
        (True, "bool", {"BOOL": True}),
        (7, "int4", {"N": "7"}),
        (Decimal("12.50"), "numeric", {"N": "12.50"}),
        ("NaN", "numeric", {"S": "NaN"}),
        ("hello", "text", {"S": "hello"}),
        ("2024-01-31T12:00:00+00:00", "timestamptz", {"S": "2024-01-31T12:00:00+00:00"}),
        ("\\x0102ff", "bytea", {"B": base64.b64encode(b"\x01\x02\xff").decode()}),
        ("\\x0102ff", "text", {"S": "\\x0102ff"}),
        (["a", None], "_text", {"L": [{"S": "a"}, {"NULL": True}]}),
        (["\\x01"], "_bytea", {"L": [{"B": "AQ=="}]}),
        (
            {"k": [1, {"x": False}]},
            "jsonb",
            {"M": {"k": {"L": [{"N": "1"}, {"M": {"x": {"BOOL": False}}}]}}},
        ),
    ],
)
def test_column_values_as_attribute_values(value: Any, column_type: str, expected: Any) -> None:
    assert attribute(value, column_type) == expected


# -- shared ----------------------------------------------------------------------------------------


def test_batch_info_points_at_the_records() -> None:
    records = [
        Record(id="00001", payload={}, arrived_s=1700000000.0),
        Record(id="00009", payload={}, arrived_s=1700000001.25),
    ]
    info = batch_info("shardId-1", records, "arn:x")
    assert info == {
        "shardId": "shardId-1",
        "startSequenceNumber": "00001",
        "endSequenceNumber": "00009",
        "approximateArrivalOfFirstRecord": "2023-11-14T22:13:20.000Z",
        "approximateArrivalOfLastRecord": "2023-11-14T22:13:21.250Z",
        "batchSize": 2,
        "streamArn": "arn:x",
    }
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"


def test_a_stream_needs_a_starting_position() -> None:
    with pytest.raises(ValidationException, match="startingPosition"):
        check_stream_settings(mapping(starting_position=None), allow_at_timestamp=True)


def test_at_timestamp_needs_a_timestamp_and_a_kind_that_has_it() -> None:
    at = mapping(starting_position="AT_TIMESTAMP", starting_position_timestamp=None)
    with pytest.raises(InvalidParameterValueException, match="StartingPositionTimestamp"):
        check_stream_settings(at, allow_at_timestamp=True)
    table = mapping(
        starting_position="AT_TIMESTAMP",
        starting_position_timestamp=1.0,
        event_source_arn="arn:aws:postgres:us-east-1:000000000000:table/t",
    )
    with pytest.raises(InvalidParameterValueException, match="Unsupported starting position"):
        check_stream_settings(table, allow_at_timestamp=False)


def test_a_timestamp_without_at_timestamp_is_dropped() -> None:
    checked = check_stream_settings(
        mapping(starting_position="LATEST", starting_position_timestamp=5.0),
        allow_at_timestamp=True,
    )
    assert checked.starting_position_timestamp is None

"""Object event pieces: key encoding, object names, filters, S3's overlap rule, record shapes."""

from __future__ import annotations

import pytest

from lamina.triggers.buckets import Bucket, NotificationConfig, overlaps
from lamina.triggers.object_events import ObjectState, encode_key, is_object_key, s3_record


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("data.csv", "data.csv"),
        ("my data.csv", "my+data.csv"),
        ("2026/03/report.csv", "2026/03/report.csv"),
        ("a+b=c&d.txt", "a%2Bb%3Dc%26d.txt"),
        ("café.txt", "caf%C3%A9.txt"),
    ],
)
def test_keys_are_url_encoded_as_s3_does(key: str, encoded: str) -> None:
    assert encode_key(key) == encoded


@pytest.mark.parametrize(
    ("key", "counts"),
    [
        ("data.csv", True),
        ("dir/data.csv", True),
        (".hidden.csv", False),
        ("dir/.tmp/data.csv", False),
        ("data.csv.tmp", False),
        ("data.csv.part", False),
        ("data.csv~", False),
        ("download.crdownload", False),
        ("", False),
    ],
)
def test_what_counts_as_an_object(key: str, counts: bool) -> None:
    assert is_object_key(key) is counts


def config(events: tuple[str, ...], prefix: str = "", suffix: str = "") -> NotificationConfig:
    return NotificationConfig("id", "arn:aws:lambda:us-east-1:0:function:f", events, prefix, suffix)


def test_matching_by_event_type_and_filters() -> None:
    created = config(("s3:ObjectCreated:*",), "in/", ".csv")
    assert created.matches("ObjectCreated:Put", "in/a.csv")
    assert not created.matches("ObjectRemoved:Delete", "in/a.csv")
    assert not created.matches("ObjectCreated:Put", "out/a.csv")
    assert not created.matches("ObjectCreated:Put", "in/a.txt")
    exact = config(("s3:ObjectRemoved:Delete",))
    assert exact.matches("ObjectRemoved:Delete", "anything")
    assert not config(("s3:ObjectCreated:Copy",)).matches("ObjectCreated:Put", "a")


def test_s3_overlap_rule() -> None:
    assert overlaps(config(("s3:ObjectCreated:*",)), config(("s3:ObjectCreated:Put",), "a/"))
    assert overlaps(config(("s3:ObjectCreated:*",), "a/"), config(("s3:ObjectCreated:*",), "a/b"))
    assert not overlaps(
        config(("s3:ObjectCreated:*",), "a/"), config(("s3:ObjectCreated:*",), "b/")
    )
    assert not overlaps(
        config(("s3:ObjectCreated:*",), suffix=".csv"),
        config(("s3:ObjectCreated:*",), suffix=".txt"),
    )
    assert not overlaps(config(("s3:ObjectCreated:*",)), config(("s3:ObjectRemoved:*",)))
    assert overlaps(
        config(("s3:ObjectCreated:*",), suffix="s.csv"),
        config(("s3:ObjectCreated:*",), suffix=".csv"),
    )


def test_record_shapes() -> None:
    bucket = Bucket("incoming", "eu-west-1", "/srv/in", "2026-01-01T00:00:00.000Z")
    created = s3_record(
        bucket=bucket,
        key="a b.csv",
        event_name="ObjectCreated:Put",
        state=ObjectState(12, 0, "0" * 32),
        sequencer=26,
        configuration_id="cfg",
        time_ms=1_767_225_600_123,
    )
    assert created["eventTime"] == "2026-01-01T00:00:00.123Z"
    assert created["awsRegion"] == "eu-west-1"
    assert created["s3"]["object"] == {
        "key": "a+b.csv",
        "size": 12,
        "eTag": "0" * 32,
        "sequencer": "000000000000001A",
    }
    assert created["s3"]["bucket"]["arn"] == "arn:aws:s3:::incoming"
    removed = s3_record(
        bucket=bucket,
        key="a b.csv",
        event_name="ObjectRemoved:Delete",
        state=None,
        sequencer=27,
        configuration_id="cfg",
        time_ms=0,
    )
    assert removed["s3"]["object"] == {"key": "a+b.csv", "sequencer": "000000000000001B"}

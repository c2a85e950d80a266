"""SQS's message attribute digest, checked against values SQS itself returned for known inputs."""

from __future__ import annotations

from lamina.queues.model import md5_hex, md5_of_attributes


def test_number_attribute_digest() -> None:
    attrs = {"timestamp": {"DataType": "Number", "StringValue": "1493147359900"}}
    assert md5_of_attributes(attrs) == "235c5c510d26fb653d073faed50ae77c"


def test_string_attribute_digest() -> None:
    attrs = {"SellerName": {"DataType": "String", "StringValue": "Example Store"}}
    assert md5_of_attributes(attrs) == "cd28f3b68aeee4b2eac9c66f2f694b58"


def test_order_of_names_does_not_matter() -> None:
    a = {
        "b": {"DataType": "String", "StringValue": "2"},
        "a": {"DataType": "String", "StringValue": "1"},
    }
    b = dict(reversed(list(a.items())))
    assert md5_of_attributes(a) == md5_of_attributes(b)


def test_no_attributes_no_digest() -> None:
    assert md5_of_attributes({}) is None
    assert md5_hex("hello") == "5d41402abc4b2a76b9719d911017c592"

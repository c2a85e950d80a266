"""Queues and messages as SQS defines them: attribute rules, defaults and the MD5 digests."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lamina.queues.errors import (
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidParameterValue,
    UnsupportedOperation,
)

QUEUE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
MAX_MESSAGE_BYTES = 1_048_576  # SQS's limit (and default MaximumMessageSize) since 2025

# name -> (minimum, maximum, default) of the integer attributes
INT_ATTRIBUTES: dict[str, tuple[int, int, int]] = {
    "DelaySeconds": (0, 900, 0),
    "MaximumMessageSize": (1024, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600, 345_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20, 0),
    "VisibilityTimeout": (0, 43_200, 30),
}
# Stored and echoed, not acted upon.
OPAQUE_ATTRIBUTES = (
    "Policy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
COMPUTED_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
ALL_ATTRIBUTES = (
    *INT_ATTRIBUTES,
    "RedrivePolicy",
    *OPAQUE_ATTRIBUTES,
    *COMPUTED_ATTRIBUTES,
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)
MESSAGE_SYSTEM_ATTRIBUTES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
)


def queue_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def parse_queue_arn(arn: str) -> tuple[str, str, str] | None:
    """(region, account, name) of an SQS queue ARN, or None if it is not one."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        return None
    return parts[3], parts[4], parts[5]


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    dead_letter_arn: str
    max_receive_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    id: int
    region: str
    account_id: str
    name: str
    attributes: Mapping[str, str]  # what was set (validated), as strings
    created_s: int
    modified_s: int

    @property
    def arn(self) -> str:
        return queue_arn(self.region, self.account_id, self.name)

    def int_attr(self, name: str) -> int:
        value = self.attributes.get(name)
        return int(value) if value is not None else INT_ATTRIBUTES[name][2]

    @property
    def redrive(self) -> RedrivePolicy | None:
        text = self.attributes.get("RedrivePolicy")
        if not text:
            return None
        data = json.loads(text)
        return RedrivePolicy(str(data["deadLetterTargetArn"]), int(data["maxReceiveCount"]))


def validate_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Check settable queue attributes; return them normalised to strings."""
    out: dict[str, str] = {}
    for name, raw in attributes.items():
        value = str(raw)
        if name in INT_ATTRIBUTES:
            low, high, _ = INT_ATTRIBUTES[name]
            if not value.lstrip("-").isdecimal() or not low <= int(value) <= high:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            out[name] = str(int(value))
        elif name == "RedrivePolicy":
            out[name] = _redrive(value) if value else ""
        elif name == "FifoQueue":
            if value.lower() == "true":
                raise UnsupportedOperation(
                    "Lamina's queues are standard queues; FIFO is not served."
                )
            if value.lower() != "false":
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
        elif name in OPAQUE_ATTRIBUTES:
            out[name] = value
        elif name in ALL_ATTRIBUTES:
            raise InvalidAttributeName(f"Attribute {name} cannot be set.")
        else:
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
    return out


def _redrive(text: str) -> str:
    try:
        data = json.loads(text)
        arn = data["deadLetterTargetArn"]
        count = int(data["maxReceiveCount"])
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid "
            "JSON map with deadLetterTargetArn and maxReceiveCount."
        ) from exc
    if not isinstance(arn, str) or parse_queue_arn(arn) is None:
        raise InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. Reason: Invalid value for "
            "deadLetterTargetArn."
        )
    if not 1 <= count <= 1000:
        raise InvalidAttributeValue(
            "Value for parameter RedrivePolicy is invalid. Reason: Invalid value for "
            "maxReceiveCount: must be between 1 and 1000."
        )
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count}, separators=(",", ":"))


def md5_hex(data: str) -> str:
    return hashlib.md5(data.encode(), usedforsecurity=False).hexdigest()


def check_message_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Validate message attributes; binary values are kept base64-encoded, as they travel."""
    if len(attributes) > 10:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [10]."
        )
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if not isinstance(value, Mapping) or not isinstance(value.get("DataType"), str):
            raise InvalidParameterValue(
                f"The message attribute '{name}' must contain a non-empty data type."
            )
        data_type = value["DataType"]
        base = data_type.split(".", 1)[0]
        if base in ("String", "Number"):
            text = value.get("StringValue")
            if not isinstance(text, str) or text == "":
                raise InvalidParameterValue(
                    f"The message attribute '{name}' must contain a non-empty message attribute value "
                    f"for message attribute type '{base}'."
                )
            if base == "Number":
                try:
                    float(text)
                except ValueError as exc:
                    raise InvalidParameterValue(
                        f"Can't cast the value of message attribute '{name}' to a number."
                    ) from exc
            out[name] = {"DataType": data_type, "StringValue": text}
        elif base == "Binary":
            blob = value.get("BinaryValue")
            if not isinstance(blob, str) or blob == "":
                raise InvalidParameterValue(
                    f"The message attribute '{name}' must contain a non-empty message attribute value "
                    "for message attribute type 'Binary'."
                )
            out[name] = {"DataType": data_type, "BinaryValue": blob}
        else:
            raise InvalidParameterValue(
                f"The type of message attribute '{name}' is invalid. You must use only the "
                "following supported type prefixes: Binary, Number, String."
            )
    return out


def md5_of_attributes(attributes: Mapping[str, Mapping[str, str]]) -> str | None:
    """The digest SQS computes over message attributes: for each name in order, the name, the
    type and the value, each prefixed by its 4-byte big-endian length, with a one-byte marker
    (1 = string value, 2 = binary value) before the value."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)

    def field(data: bytes) -> None:
        digest.update(struct.pack(">I", len(data)))
        digest.update(data)

    for name in sorted(attributes):
        value = attributes[name]
        field(name.encode())
        field(value["DataType"].encode())
        if "StringValue" in value:
            digest.update(b"\x01")
            field(value["StringValue"].encode())
        else:
            digest.update(b"\x02")
            field(base64.b64decode(value["BinaryValue"]))
    return digest.hexdigest()

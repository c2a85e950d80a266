"""What every ordered stream source shares (Redis Streams, PostgreSQL table changes): the batch
pointer of an on-failure record, the settings a stream mapping must have, the problem text a
broker outage shows, and record sizes. The processing itself (one batch in flight per shard,
retries, bisection, record age, checkpoints) is the poller's ordered path (`lamina.sources.poller`),
driven through the `Source` interface of `lamina.sources.base`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lamina.errors import InvalidParameterValueException, ValidationException
from lamina.sources.base import MappingConfig, Record, problem

CONNECTION_PROBLEM = problem(
    "Connection error. Please check your event source connection configuration."
)
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
# The optional request members a stream kind accepts (and GetEventSourceMapping shows).
STREAM_MEMBERS = frozenset(
    {
        "StartingPosition",
        "FilterCriteria",
        "FunctionResponseTypes",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryAttempts",
        "BisectBatchOnFunctionError",
        "ParallelizationFactor",
        "DestinationConfig",
        "SourceAccessConfigurations",
        "SelfManagedEventSource",
        "MetricsConfig",
    }
)


def iso_ms(epoch_s: float) -> str:
    """A timestamp as Lambda writes them in on-failure records: 2024-01-31T12:00:00.123Z."""
    t = _dt.datetime.fromtimestamp(epoch_s, _dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def record_size(payload: dict[str, Any]) -> int:
    """Bytes the record adds to an invocation payload (its compact JSON and a comma)."""
    return len(json.dumps(payload, separators=(",", ":")).encode()) + 1


def batch_info(shard_id: str, records: Sequence[Record], stream_arn: str) -> dict[str, Any]:
    """The pointer part of a stream's on-failure record (KinesisBatchInfo, DDBStreamBatchInfo):
    which records were given up, never the records themselves."""
    first, last = records[0], records[-1]
    return {
        "shardId": shard_id,
        "startSequenceNumber": first.id,
        "endSequenceNumber": last.id,
        "approximateArrivalOfFirstRecord": iso_ms(first.arrived_s),
        "approximateArrivalOfLastRecord": iso_ms(last.arrived_s),
        "batchSize": len(records),
        "streamArn": stream_arn,
    }


def check_stream_settings(mapping: MappingConfig, *, allow_at_timestamp: bool) -> MappingConfig:
    """StartingPosition as Lambda requires it of Kinesis (AT_TIMESTAMP allowed) and DynamoDB
    (refused) streams."""
    position = mapping.starting_position
    if position is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'startingPosition' failed to satisfy "
            "constraint: Member must not be null."
        )
    if position not in STARTING_POSITIONS:
        raise ValidationException(
            f"1 validation error detected: Value '{position}' at 'startingPosition' failed to "
            "satisfy constraint: Member must satisfy enum value set: "
            "[TRIM_HORIZON, AT_TIMESTAMP, LATEST]"
        )
    if position == "AT_TIMESTAMP" and not allow_at_timestamp:
        raise InvalidParameterValueException(
            f"Unsupported starting position for arn type: {mapping.event_source_arn}"
        )
    if position == "AT_TIMESTAMP" and mapping.starting_position_timestamp is None:
        raise InvalidParameterValueException(
            "StartingPositionTimestamp must be provided for the AT_TIMESTAMP starting position."
        )
    if position != "AT_TIMESTAMP" and mapping.starting_position_timestamp is not None:
        mapping = replace(mapping, starting_position_timestamp=None)
    return mapping

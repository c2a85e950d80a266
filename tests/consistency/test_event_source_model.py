"""The raw JSON of the event source mapping operations against botocore's model."""

from __future__ import annotations

import base64
import time
from typing import Any

from tests.consistency.test_model import call, endpoint  # noqa: F401  (the server fixture)
from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, function_zip


def test_event_source_mapping_responses_are_model_members(endpoint: str) -> None:  # noqa: F811
    call(
        endpoint,
        "CreateFunction",
        {
            "FunctionName": "esm-model",
            "Runtime": PYTHON_RUNTIME,
            "Role": ROLE,
            "Handler": "echo.handler",
            "Code": {"ZipFile": base64.b64encode(function_zip("echo")).decode()},
        },
    )
    sqs = client_for(endpoint, "sqs")
    url = sqs.create_queue(QueueName="esm-model")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    created: Any = call(
        endpoint,
        "CreateEventSourceMapping",
        {
            "EventSourceArn": arn,
            "FunctionName": "esm-model",
            "BatchSize": 20,
            "MaximumBatchingWindowInSeconds": 1,
            "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
            "MetricsConfig": {"Metrics": ["EventCount"]},
            "Tags": {"team": "core"},
        },
    )
    assert isinstance(created["LastModified"], float | int)
    ident = created["UUID"]
    time.sleep(0.2)
    call(endpoint, "GetEventSourceMapping", UUID=ident)
    call(endpoint, "UpdateEventSourceMapping", {"BatchSize": 5}, UUID=ident)
    listed = call(endpoint, "ListEventSourceMappings", _query="?MaxItems=1")
    assert len(listed["EventSourceMappings"]) == 1
    call(endpoint, "DeleteEventSourceMapping", UUID=ident)
    call(endpoint, "DeleteFunction", FunctionName="esm-model")

"""SAM events through `lamina deploy -t`: what Lamina serves is applied through its own APIs (an
S3 event really fires when a file lands in the bucket's folder), what it cannot honour is said."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration.conftest import PYTHON_RUNTIME, client_for

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Inbox:
    Type: AWS::S3::Bucket
    Metadata:
      Lamina:
        Path: inbox/
    Properties:
      BucketName: {stack}-inbox
  Jobs:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {stack}-worker
      CodeUri: worker/
      Handler: app.handler
      Runtime: {runtime}
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 3 * * ? *)
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Inbox
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - Name: suffix
                    Value: .csv
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
        Web:
          Type: HttpApi
"""

WORKER = """\
def handler(event, context):
    for record in event.get("Records", []):
        if "s3" in record:
            print("object event for", record["s3"]["object"]["key"])
        elif record.get("eventSource") == "aws:sqs":
            print("queue message", record["body"])
    return "ok"
"""


def test_events_are_applied_or_reported(lambda_client: Any, endpoint: str, tmp_path: Path) -> None:
    stack = f"ev{uuid.uuid4().hex[:8]}"
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(WORKER)
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(stack=stack, runtime=PYTHON_RUNTIME))
    function = f"{stack}-worker"
    events = client_for(endpoint, "events")
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lamina",
                "deploy",
                "-t",
                str(tmp_path / "template.yaml"),
                "--stack-name",
                stack,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "LAMINA_ENDPOINT": endpoint},
            cwd=tmp_path,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        arn = lambda_client.get_function_configuration(FunctionName=function)["FunctionArn"]
        # Schedule -> an EventBridge rule whose target is the function
        assert "Worker.Tick (Schedule): applied" in out
        rule = events.describe_rule(Name=f"{stack}-WorkerTick")
        assert rule["ScheduleExpression"] == "rate(1 hour)"
        targets = events.list_targets_by_rule(Rule=f"{stack}-WorkerTick")["Targets"]
        assert [t["Arn"] for t in targets] == [arn]
        # ScheduleV2 -> a rule with the same expression
        assert "Worker.Nightly (ScheduleV2): applied" in out
        nightly = [
            r for r in events.list_rules(NamePrefix=stack)["Rules"] if "Nightly" in r["Name"]
        ]
        assert [r["ScheduleExpression"] for r in nightly] == ["cron(0 3 * * ? *)"]
        # the HttpApi event cannot be honoured, and says so
        assert "Worker.Web (HttpApi): not supported: API Gateway is not emulated" in out
        # SQS: applied when the server serves event source mappings, else reported
        # SQS -> an event source mapping on the template's queue, whose messages reach the function
        assert "Worker.Queue (SQS): applied" in out
        queue_arn = f"arn:aws:sqs:us-east-1:000000000000:{stack}-Jobs"
        mappings = lambda_client.list_event_source_mappings(FunctionName=function)
        assert [(m["EventSourceArn"], m["BatchSize"]) for m in mappings["EventSourceMappings"]] == [
            (queue_arn, 5)
        ]
        sqs = client_for(endpoint, "sqs")
        queue_url = sqs.get_queue_url(QueueName=f"{stack}-Jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="job-42")
        # S3 -> a bucket for the folder, whose object events reach the function
        assert "Worker.Upload (S3): applied" in out
        (tmp_path / "inbox" / "skipped.txt").write_text("not a csv")
        (tmp_path / "inbox" / "data.csv").write_text("a,b\n1,2\n")
        logs = client_for(endpoint, "logs")
        deadline = time.monotonic() + 90
        messages: list[str] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
                found = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")
                messages = [e["message"] for e in found["events"]]
            sqs_seen = any("queue message job-42" in m for m in messages)
            if sqs_seen and any("object event for data.csv" in m for m in messages):
                break
            time.sleep(0.5)
        assert any("object event for data.csv" in m for m in messages), messages
        assert not any("skipped.txt" in m for m in messages)
        assert any("queue message job-42" in m for m in messages), messages

        # deploying again changes nothing
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lamina",
                "deploy",
                "-t",
                str(tmp_path / "template.yaml"),
                "--stack-name",
                stack,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "LAMINA_ENDPOINT": endpoint},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"= bucket {stack}-inbox" in proc.stdout
        assert f"= function {function} unchanged" in proc.stdout
        assert f"= event source mapping {queue_arn} -> {function} unchanged" in proc.stdout
    finally:
        with contextlib.suppress(Exception):
            for m in lambda_client.list_event_source_mappings(FunctionName=function)[
                "EventSourceMappings"
            ]:
                lambda_client.delete_event_source_mapping(UUID=m["UUID"])
        for rule in events.list_rules(NamePrefix=stack)["Rules"]:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
            if ids:
                events.remove_targets(Rule=rule["Name"], Ids=ids)
            events.delete_rule(Name=rule["Name"])
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=function)

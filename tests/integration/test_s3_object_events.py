"""The seeds' use case under the default (Linux) sandbox: a CSV dropped in a bucket's folder, or
uploaded with `aws s3 cp`, is read by a function with boto3's S3 client (it cannot see the
folder), totalled, and the result written into another bucket with put_object.

Objects written through the S3 API produce the same object events as files dropped in the
folder, each exactly once, under S3's event names (Put, Copy, Delete).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import client_for, deploy, make_zip, wait_for
from tests.integration.lamina_process import LaminaProcess

# Reads the object through Lamina's S3 API (AWS_ENDPOINT_URL points there), totals `amount`
# per `customer`, and writes results/<key>.json; each record is also kept as
# results/events/<sequencer>.json, so that the test can count the events per key.
PROCESSOR = """
import csv, io, json, os
from urllib.parse import unquote_plus

import boto3

s3 = boto3.client("s3")


def handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        seq = record["s3"]["object"]["sequencer"]
        s3.put_object(Bucket="results", Key=f"events/{bucket}-{seq}.json",
                      Body=json.dumps(record).encode())
        if record["eventName"].startswith("ObjectRemoved"):
            s3.delete_object(Bucket="results", Key=key + ".json")
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        totals = {}
        for row in csv.DictReader(io.StringIO(body)):
            totals[row["customer"]] = totals.get(row["customer"], 0) + int(row["amount"])
        result = {
            "source": key,
            "event": record["eventName"],
            "totals": totals,
            "sees_folder": os.path.exists(os.environ["INCOMING_FOLDER"]),
        }
        s3.put_object(Bucket="results", Key=key + ".json", Body=json.dumps(result).encode(),
                      ContentType="application/json")
    return {"processed": len(event["Records"])}
"""

ORDERS = "customer,amount\nada,10\nbob,5\nada,7\n"
MORE_ORDERS = "customer,amount\ncy,1\ncy,2\nada,3\n"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:csv-totals"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LaminaProcess]:
    # "auto" is the default: whatever the caller's shell says, the server picks its sandbox.
    server = LaminaProcess(tmp_path / "data", env={"LAMINA_SANDBOX": "auto"})
    server.start()
    output = "".join(server.output)
    if "sandbox:  linux" not in output:
        server.stop()
        pytest.skip("this host has no Linux sandbox (the default falls back to processes)")
    yield server
    server.stop()


def aws(endpoint: str, *args: str) -> str:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "aws"), "--endpoint-url", endpoint, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_csv_in_a_bucket_is_read_through_s3_inside_the_default_sandbox(
    server: LaminaProcess, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    endpoint = server.endpoint
    lam = client_for(endpoint)
    s3 = client_for(endpoint, "s3")
    deploy(
        lam,
        "csv-totals",
        "f",
        code=make_zip({"f.py": PROCESSOR}),
        Timeout=60,
        Environment={"Variables": {"INCOMING_FOLDER": str(incoming)}},
    )

    # `incoming` is a host folder (Lamina's bucket API); `results` is made with the S3 API and
    # lives in Lamina's data dir.
    proc = subprocess.run(
        [sys.executable, "-m", "lamina", "buckets", "create", "incoming", "--path", str(incoming)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LAMINA_ENDPOINT": endpoint},
    )
    assert proc.returncode == 0, proc.stderr
    s3.create_bucket(Bucket="results")
    config = {
        "LambdaFunctionConfigurations": [
            {
                "Id": "csv-created",
                "LambdaFunctionArn": ARN,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".csv"}]}},
            },
            {
                "Id": "csv-removed",
                "LambdaFunctionArn": ARN,
                "Events": ["s3:ObjectRemoved:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".csv"}]}},
            },
        ]
    }
    s3.put_bucket_notification_configuration(Bucket="incoming", NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket="incoming")
    assert got["LambdaFunctionConfigurations"] == config["LambdaFunctionConfigurations"]

    def result(key: str) -> dict[str, Any] | None:
        try:
            body = s3.get_object(Bucket="results", Key=key + ".json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    # 1. Dropped into the folder (renamed into place from a hidden name).
    tmp = incoming / ".orders.csv.partial"
    tmp.write_text(ORDERS)
    os.rename(tmp, incoming / "orders.csv")
    dropped = wait_for(lambda: result("orders.csv"), 60, "the dropped CSV's result")
    assert dropped == {
        "source": "orders.csv",
        "event": "ObjectCreated:Put",
        "totals": {"ada": 17, "bob": 5},
        "sees_folder": False,  # the sandbox hides the folder: S3 is the way in
    }

    # 2. Uploaded with the AWS CLI: the file lands in the folder, and one event is sent.
    upload = tmp_path / "more orders.csv"
    upload.write_text(MORE_ORDERS)
    aws(endpoint, "s3", "cp", str(upload), "s3://incoming/cli/more orders.csv")
    assert (incoming / "cli" / "more orders.csv").read_text() == MORE_ORDERS
    uploaded = wait_for(lambda: result("cli/more orders.csv"), 60, "the uploaded CSV's result")
    assert uploaded["totals"] == {"cy": 3, "ada": 3}
    assert uploaded["event"] == "ObjectCreated:Put"

    # 3. Copied with boto3: ObjectCreated:Copy.
    s3.copy_object(
        Bucket="incoming", Key="copy.csv", CopySource={"Bucket": "incoming", "Key": "orders.csv"}
    )
    copied = wait_for(lambda: result("copy.csv"), 60, "the copied CSV's result")
    assert copied["event"] == "ObjectCreated:Copy"
    assert copied["totals"] == {"ada": 17, "bob": 5}

    # 4. Removed through the CLI: ObjectRemoved:Delete, and the function removes the result.
    aws(endpoint, "s3", "rm", "s3://incoming/copy.csv")
    assert not (incoming / "copy.csv").exists()
    wait_for(lambda: result("copy.csv") is None, 60, "the copy's result to be removed")

    # Each change was told exactly once: the watcher saw every file the S3 API wrote, after
    # the settle time, and found it already told.
    time.sleep(2.5)

    def events() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="results", Prefix="events/")
        records = [
            json.loads(s3.get_object(Bucket="results", Key=o["Key"])["Body"].read())
            for page in pages
            for o in page.get("Contents", [])
        ]
        records.sort(key=lambda r: r["s3"]["object"]["sequencer"])
        for r in records:
            out.setdefault(r["s3"]["object"]["key"], []).append(r["eventName"])
        return out

    assert events() == {
        "orders.csv": ["ObjectCreated:Put"],
        "cli/more+orders.csv": ["ObjectCreated:Put"],
        "copy.csv": ["ObjectCreated:Copy", "ObjectRemoved:Delete"],
    }
    listed = s3.list_objects_v2(Bucket="incoming")
    assert [o["Key"] for o in listed["Contents"]] == ["cli/more orders.csv", "orders.csv"]

    # After a restart nothing is told again (what the API wrote was recorded as told), and
    # what S3 keeps beside the bytes is still there.
    told = events()
    server.stop()
    server.start(timeout_s=60)
    s3 = client_for(server.endpoint, "s3")
    time.sleep(2.5)
    assert events() == told
    assert s3.head_object(Bucket="results", Key="orders.csv.json")["ContentType"] == (
        "application/json"
    )

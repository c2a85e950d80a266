"""Object events end to end: CSV files dropped in a watched folder are processed by a function
that writes its result into another bucket's folder; deletions, filters, partial writes, the
bucket API's errors, and files dropped while the server is down.

The server runs with LAMINA_SANDBOX=process so that the function reads and writes the bucket
folders on the host (what a bucket folder mounted for it would give), and with the default
settle time of one second.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.integration.conftest import client_for, deploy, make_zip, wait_for
from tests.integration.lamina_process import LaminaProcess

BUCKETS = "/lamina/v1/buckets"

# Totals a CSV's `amount` column per `customer`; writes results/<key>.json (via a temporary name
# and a rename, so that a watcher of results/ would see a complete file). A removed CSV removes
# its result. Every event is appended to a ledger.
PROCESSOR = """
import csv, json, os
from urllib.parse import unquote_plus

FOLDERS = json.loads(os.environ["BUCKET_FOLDERS"])


def handler(event, context):
    with open(os.environ["LEDGER"], "a") as ledger:
        ledger.write(json.dumps(event) + "\\n")
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        result = os.path.join(FOLDERS["results"], key + ".json")
        if record["eventName"].startswith("ObjectRemoved"):
            if os.path.exists(result):
                os.unlink(result)
            continue
        totals = {}
        with open(os.path.join(FOLDERS[bucket], key), newline="") as f:
            for row in csv.DictReader(f):
                totals[row["customer"]] = totals.get(row["customer"], 0) + int(row["amount"])
        os.makedirs(os.path.dirname(result), exist_ok=True)
        tmp = os.path.join(os.path.dirname(result), "." + os.path.basename(result) + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"source": key, "totals": totals, "etag": record["s3"]["object"]["eTag"]}, f)
        os.replace(tmp, result)
    return {"processed": len(event["Records"])}
"""

ORDERS = "customer,amount\nada,10\nbob,5\nada,7\n"


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.results = root / "results"
        self.ledger = root / "ledger.jsonl"
        self.incoming.mkdir()
        self.results.mkdir()
        self.server = LaminaProcess(root / "data", env={"LAMINA_SANDBOX": "process"})

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server.endpoint + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None, ""
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), exc.headers.get("x-amzn-ErrorType", "")

    def cli(self, *args: str, ok: bool = True) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "lamina", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LAMINA_ENDPOINT": self.server.endpoint},
        )
        assert (proc.returncode == 0) is ok, proc.stderr
        return proc.stdout if ok else proc.stderr

    def records(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        lines = self.ledger.read_text().splitlines()
        return [r for line in lines if line.strip() for r in json.loads(line)["Records"]]

    def events_for(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if unquote_plus(r["s3"]["object"]["key"]) == key]

    def result(self, key: str) -> dict[str, Any] | None:
        path = self.results / f"{key}.json"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    env = Env(tmp_path)
    env.server.start()
    try:
        lam = client_for(env.server.endpoint)
        deploy(
            lam,
            "csv-totals",
            "f",
            code=make_zip({"f.py": PROCESSOR}),
            Timeout=30,
            Environment={
                "Variables": {
                    "LEDGER": str(env.ledger),
                    "BUCKET_FOLDERS": json.dumps(
                        {"incoming": str(env.incoming), "results": str(env.results)}
                    ),
                }
            },
        )
        yield env
    finally:
        env.server.stop()


@pytest.mark.slow
def test_csv_dropped_in_a_bucket_is_processed(env: Env) -> None:
    out = env.cli("buckets", "create", "incoming", "--path", str(env.incoming))
    assert "arn:aws:s3:::incoming" in out
    env.cli("buckets", "create", "results", "--path", str(env.results))
    env.cli(
        "buckets",
        "notify",
        "incoming",
        "csv-totals",
        "--event",
        "s3:ObjectCreated:*",
        "--suffix",
        ".csv",
        "--id",
        "csv-created",
    )
    env.cli(
        "buckets", "notify", "incoming", "csv-totals", "--event", "s3:ObjectRemoved:*",
        "--suffix", ".csv", "--id", "csv-removed",
    )  # fmt: skip
    assert "incoming" in env.cli("buckets", "list")
    shown = json.loads(env.cli("buckets", "show", "incoming"))
    configs = shown["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert [c["Id"] for c in configs] == ["csv-created", "csv-removed"]

    # Renamed into place from a hidden temporary name: one event, under the final name.
    key = "2026/orders march.csv"
    (env.incoming / "2026").mkdir()
    tmp = env.incoming / "2026" / ".orders.csv.partial"
    tmp.write_text(ORDERS)
    os.rename(tmp, env.incoming / key)
    (env.incoming / "notes.txt").write_text("not a CSV: filtered out by the suffix rule")

    result = wait_for(lambda: env.result(key), 60, "the CSV's result")
    assert result["totals"] == {"ada": 17, "bob": 5}
    (record,) = env.events_for(key)
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["eventSource"] == "aws:s3" and record["eventVersion"] == "2.1"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventTime"].endswith("Z")
    s3 = record["s3"]
    assert s3["s3SchemaVersion"] == "1.0" and s3["configurationId"] == "csv-created"
    assert s3["bucket"]["name"] == "incoming" and s3["bucket"]["arn"] == "arn:aws:s3:::incoming"
    assert s3["object"]["key"] == "2026/orders+march.csv"  # URL-encoded as S3 does
    assert s3["object"]["size"] == len(ORDERS)
    assert s3["object"]["eTag"] == hashlib.md5(ORDERS.encode()).hexdigest()
    first_sequencer = s3["object"]["sequencer"]

    # Written in several steps: one event, for the whole file, once the writes stop.
    slow = "slow.csv"
    lines = ["customer,amount\n"] + [f"c{i % 3},{i}\n" for i in range(30)]
    with (env.incoming / slow).open("w") as f:
        for line in lines:
            f.write(line)
            f.flush()
            time.sleep(0.02)
    result = wait_for(lambda: env.result(slow), 60, "the slowly written CSV's result")
    assert sum(result["totals"].values()) == sum(range(30))
    (record,) = env.events_for(slow)
    assert record["s3"]["object"]["size"] == len("".join(lines))
    assert record["s3"]["object"]["sequencer"] > first_sequencer

    # Deleted: ObjectRemoved:Delete (key and sequencer, no size or eTag) removes the result.
    os.unlink(env.incoming / key)
    wait_for(lambda: env.result(key) is None, 60, "the result to be removed")
    _created, removed = env.events_for(key)
    assert removed["eventName"] == "ObjectRemoved:Delete"
    assert removed["s3"]["configurationId"] == "csv-removed"
    assert set(removed["s3"]["object"]) == {"key", "sequencer"}
    assert not env.events_for("notes.txt")
    # The results folder is a bucket too, without notifications: nothing goes anywhere.
    assert not [r for r in env.records() if r["s3"]["bucket"]["name"] == "results"]

    # Dropped while the server is down: processed once at the next start.
    env.server.stop()
    (env.incoming / "while-down.csv").write_text(ORDERS)
    (env.incoming / "slow.csv").unlink()
    time.sleep(1.1)  # older than the settle time when the server looks
    env.server.start(timeout_s=60)
    result = wait_for(lambda: env.result("while-down.csv"), 60, "the result after a restart")
    assert result["totals"] == {"ada": 17, "bob": 5}
    wait_for(lambda: env.result(slow) is None, 60, "the deletion made while down")
    time.sleep(2)  # any second event would have come by now
    assert len(env.events_for("while-down.csv")) == 1
    assert [r["eventName"] for r in env.events_for(slow)] == [
        "ObjectCreated:Put",
        "ObjectRemoved:Delete",
    ]
    assert len(env.events_for(key)) == 2  # nothing told twice after the restart


def test_bucket_api_errors(env: Env, tmp_path: Path) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:csv-totals"
    status, body, kind = env.call("PUT", f"{BUCKETS}/Not_Valid", {"Path": str(env.incoming)})
    assert (status, kind) == (400, "InvalidParameterValueException")
    status, body, kind = env.call("PUT", f"{BUCKETS}/ok-name", {"Path": "relative/dir"})
    assert (status, kind) == (400, "InvalidParameterValueException")
    status, body, kind = env.call("PUT", f"{BUCKETS}/ok-name", {"Path": str(tmp_path / "none")})
    assert (status, kind) == (400, "InvalidParameterValueException")
    status, body, kind = env.call(
        "PUT", f"{BUCKETS}/ok-name", {"Path": str(env.server.data_dir / "code")}
    )
    assert (status, kind) == (400, "InvalidParameterValueException")
    assert "data dir" in body["message"]

    status, body, _ = env.call("PUT", f"{BUCKETS}/incoming", {"Path": str(env.incoming)})
    assert status == 201 and body["Arn"] == "arn:aws:s3:::incoming"
    status, _, _ = env.call("PUT", f"{BUCKETS}/incoming", {"Path": str(env.incoming)})
    assert status == 200  # the same again: idempotent
    status, _, kind = env.call("PUT", f"{BUCKETS}/incoming", {"Path": str(env.results)})
    assert (status, kind) == (409, "ResourceConflictException")
    (env.incoming / "sub").mkdir()
    status, _, kind = env.call("PUT", f"{BUCKETS}/nested", {"Path": str(env.incoming / "sub")})
    assert (status, kind) == (409, "ResourceConflictException")

    status, _, kind = env.call("GET", f"{BUCKETS}/nope")
    assert (status, kind) == (404, "ResourceNotFoundException")
    assert "ResourceNotFoundException: The specified bucket does not exist: nope" in env.cli(
        "buckets", "show", "nope", ok=False
    )
    status, _, kind = env.call("PUT", f"{BUCKETS}/nope/notification", {})
    assert (status, kind) == (404, "ResourceNotFoundException")

    def put(configs: list[dict[str, Any]]) -> tuple[int, Any, str]:
        return env.call(
            "PUT", f"{BUCKETS}/incoming/notification", {"LambdaFunctionConfigurations": configs}
        )

    missing = arn.replace("csv-totals", "no-such-function")
    for bad in (
        [{"LambdaFunctionArn": missing, "Events": ["s3:ObjectCreated:*"]}],
        [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:Nope"]}],
        [{"LambdaFunctionArn": arn, "Events": []}],
        [
            {
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "middle", "Value": "x"}]}},
            }
        ],
        [  # overlapping: both would match ObjectCreated:Put of data/x.csv
            {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]},
            {
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:Put"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "data/"}]}},
            },
        ],
    ):
        status, body, kind = put(bad)
        assert (status, kind) == (400, "InvalidParameterValueException"), body
    status, body, _ = put(
        [
            {
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "a/"}]}},
            },
            {
                "LambdaFunctionArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "b/"}]}},
            },
        ]
    )
    assert status == 200
    assert [c["Filter"]["Key"]["FilterRules"] for c in body["LambdaFunctionConfigurations"]] == [
        [{"Name": "prefix", "Value": "a/"}],
        [{"Name": "prefix", "Value": "b/"}],
    ]
    assert all(c["Id"] for c in body["LambdaFunctionConfigurations"])

    # Kept across a restart; deleting a bucket leaves its folder alone.
    env.server.stop()
    env.server.start(timeout_s=60)
    status, body, _ = env.call("GET", f"{BUCKETS}/incoming/notification")
    assert status == 200 and len(body["LambdaFunctionConfigurations"]) == 2
    status, _, _ = env.call("DELETE", f"{BUCKETS}/incoming")
    assert status == 204
    assert env.incoming.is_dir()
    status, body, _ = env.call("GET", BUCKETS)
    assert body == {"Buckets": []}


def test_a_removed_and_recreated_folder_is_watched_again(env: Env) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:csv-totals"
    assert env.call("PUT", f"{BUCKETS}/incoming", {"Path": str(env.incoming)})[0] == 201
    assert env.call("PUT", f"{BUCKETS}/results", {"Path": str(env.results)})[0] == 201
    status, _, _ = env.call(
        "PUT",
        f"{BUCKETS}/incoming/notification",
        {
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    assert status == 200
    (env.incoming / "first.csv").write_text(ORDERS)
    wait_for(lambda: env.result("first.csv"), 60, "the first CSV's result")
    for path in env.incoming.iterdir():
        path.unlink()
    env.incoming.rmdir()
    time.sleep(0.5)
    # While the folder itself is gone nothing is told (an unmounted disk is not a mass
    # deletion); once it is back, it is compared with what was told and watched again.
    env.incoming.mkdir()
    (env.incoming / "second.csv").write_text(ORDERS)
    result = wait_for(lambda: env.result("second.csv"), 60, "a CSV in the re-created folder")
    assert result["totals"] == {"ada": 17, "bob": 5}
    wait_for(lambda: env.result("first.csv") is None, 60, "the removal to be told")
    assert [r["eventName"] for r in env.events_for("first.csv")] == [
        "ObjectCreated:Put",
        "ObjectRemoved:Delete",
    ]
    assert len(env.events_for("second.csv")) == 1

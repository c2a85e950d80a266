"""Latency of Lamina's push triggers: a file renamed into a bucket (or put through the S3 API)
-> the function starts, and the spacing of a scheduled rule's runs; the S3 API's throughput.
Prints figures; quoted in docs/triggers.md and docs/s3.md.

    .venv/bin/python bench/triggers.py [--files 20] [--seconds 12]

Starts its own server (`--sandbox process`, LAMINA_SCHEDULE_TIME_SCALE=60 so that
`rate(1 minute)` runs every second, default settle time) on a temporary data dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.conftest import client_for, deploy, make_zip
from tests.integration.lamina_process import LaminaProcess

RECORDER = """
import json, os, time

def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"t": time.time(), "e": event}) + "\\n")
"""
FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:recorder"


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_latencies(out: Path, sent_at: dict[str, float]) -> list[float]:
    """Seconds from each object's write (`sent_at` by key) to the start of the function it
    triggered, sorted; waits up to a minute for every object's run."""
    deadline = time.monotonic() + 60
    while len(rows(out)) < len(sent_at) and time.monotonic() < deadline:
        time.sleep(0.1)
    return sorted(
        float(r["t"]) - sent_at[r["e"]["Records"][0]["s3"]["object"]["key"]]  # type: ignore[arg-type, index]
        for r in rows(out)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lamina-bench-triggers-") as tmp:
        root = Path(tmp)
        inbox = root / "inbox"
        inbox.mkdir()
        out = root / "out.jsonl"
        server = LaminaProcess(
            root / "data",
            env={"LAMINA_SANDBOX": "process", "LAMINA_SCHEDULE_TIME_SCALE": "60"},
        )
        server.start()
        try:
            lam = client_for(server.endpoint)
            deploy(
                lam,
                "recorder",
                "f",
                code=make_zip({"f.py": RECORDER}),
                Environment={"Variables": {"OUT": str(out)}},
            )

            def put(path: str, body: object) -> None:
                request = urllib.request.Request(
                    server.endpoint + path, method="PUT", data=json.dumps(body).encode()
                )
                urllib.request.urlopen(request, timeout=30).read()

            put("/lamina/v1/buckets/inbox", {"Path": str(inbox)})
            put(
                "/lamina/v1/buckets/inbox/notification",
                {
                    "LambdaFunctionConfigurations": [
                        {"LambdaFunctionArn": FN_ARN, "Events": ["s3:ObjectCreated:*"]}
                    ]
                },
            )
            dropped: dict[str, float] = {}
            for i in range(args.files):
                tmp_file = inbox / f".f{i}.tmp"
                tmp_file.write_text("x" * 1000)
                dropped[f"f{i}.csv"] = time.time()
                os.rename(tmp_file, inbox / f"f{i}.csv")
                time.sleep(0.5)
            latencies = start_latencies(out, dropped)
            print(
                f"object events: {len(latencies)} files, rename -> function start: median "
                f"{statistics.median(latencies):.3f} s, max {latencies[-1]:.3f} s (settle 1.0 s)"
            )

            # The same through the S3 API: PutObject tells the watcher at once (no settle time).
            out.unlink()
            s3 = client_for(server.endpoint, "s3")
            put_at: dict[str, float] = {}
            put_s: list[float] = []
            for i in range(args.files):
                key = f"s3-{i}.csv"
                put_at[key] = time.time()
                s3.put_object(Bucket="inbox", Key=key, Body=b"x" * 1000)
                put_s.append(time.time() - put_at[key])
                time.sleep(0.5)
            latencies = start_latencies(out, put_at)
            print(
                f"S3 PutObject: {len(latencies)} objects, put call -> function start: median "
                f"{statistics.median(latencies):.3f} s, max {latencies[-1]:.3f} s; the put "
                f"itself: median {statistics.median(put_s) * 1000:.1f} ms"
            )
            s3.create_bucket(Bucket="bulk")
            blob = os.urandom(64 * 1024 * 1024)
            t0 = time.perf_counter()
            s3.put_object(Bucket="bulk", Key="blob", Body=blob)
            t1 = time.perf_counter()
            got = s3.get_object(Bucket="bulk", Key="blob")["Body"].read()
            t2 = time.perf_counter()
            assert got == blob
            t3 = time.perf_counter()
            for i in range(200):
                s3.put_object(Bucket="bulk", Key=f"small/{i}", Body=b"y" * 1024)
            t4 = time.perf_counter()
            for i in range(200):
                s3.get_object(Bucket="bulk", Key=f"small/{i}")["Body"].read()
            t5 = time.perf_counter()
            print(
                f"S3 64 MiB object: PutObject {64 / (t1 - t0):.0f} MiB/s, GetObject "
                f"{64 / (t2 - t1):.0f} MiB/s; 1 KiB objects one at a time: {200 / (t4 - t3):.0f} "
                f"puts/s, {200 / (t5 - t4):.0f} gets/s"
            )

            out.unlink()
            events = client_for(server.endpoint, "events")
            events.put_rule(Name="bench", ScheduleExpression="rate(1 minute)")
            events.put_targets(Rule="bench", Targets=[{"Id": "t", "Arn": FN_ARN}])
            time.sleep(args.seconds)
            events.disable_rule(Name="bench")
            time.sleep(1)
            starts = [float(r["t"]) for r in rows(out)]  # type: ignore[arg-type]
            gaps = [b - a for a, b in pairwise(starts)]
            print(
                f"schedule: {len(starts)} runs in {args.seconds:.0f} s at a 1 s period; "
                f"starts apart: median {statistics.median(gaps):.3f} s, "
                f"min {min(gaps):.3f} s, max {max(gaps):.3f} s"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()

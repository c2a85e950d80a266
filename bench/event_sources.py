#!/usr/bin/env python3
"""Event source mapping benchmark: how fast a mapping drains a backlog, and how long a message
waits between its send and its function's start when the queue is nearly idle.

    python bench/event_sources.py                      # Lamina's queues, then RabbitMQ if it answers
    python bench/event_sources.py --messages 5000 --batch-size 10 --concurrency 5

A `lamina server` on a free port with a temporary data dir (the process sandbox, so that the
function can keep a ledger on the host). The function appends `<id> <sent> <started>` per record
to a file. For each source: a backlog of N messages is sent first, then the mapping is created,
and drained/s is N over the time from the mapping's creation to the last record's start; then
200 messages are sent one at a time, 20 ms apart, and send-to-start is measured per message
(p50/p99). The figures are printed, not written to docs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
REPO = Path(__file__).resolve().parent.parent
AMQP = "amqp://guest:guest@127.0.0.1:5672/"

HANDLER = """
import base64
import json
import os
import time

PATH = os.environ["LEDGER"]


def handler(event, context):
    started = time.time()
    time.sleep(float(os.environ.get("SLEEP_MS", "0")) / 1000)  # I/O-bound work, if asked
    lines = []
    for r in event.get("Records", []):
        if "body" not in r:
            continue
        body = json.loads(r["body"])
        lines.append(f"{body['id']} {body['sent']} {started}\\n")
    for r in event.get("Records", []):
        if "kinesis" in r:
            body = json.loads(base64.b64decode(r["kinesis"]["data"]))
            lines.append(f"{body['id']} {body['sent']} {started}\\n")
        elif "dynamodb" in r:
            image = r["dynamodb"]["NewImage"]
            lines.append(f"{image['id']['S']} {image['sent']['N']} {started}\\n")
    for batch in (event.get("rmqMessagesByQueue") or {}).values():
        for m in batch:
            body = json.loads(base64.b64decode(m["data"]))
            lines.append(f"{body['id']} {body['sent']} {started}\\n")
    fd = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(lines).encode())
    finally:
        os.close(fd)
"""


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAMINA_SANDBOX": "process"}
    cmd = [sys.executable, "-m", "lamina", "server", "--port", "0", "--data-dir", str(data_dir)]
    cmd += ["--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"Lamina is listening on (http://\S+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("lamina server did not start")


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def ledger_lines(path: Path) -> list[tuple[str, float, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        ident, sent, started = line.split()
        out.append((ident, float(sent), float(started)))
    return out


def wait_for(path: Path, ids: set[str], timeout_s: float) -> list[tuple[str, float, float]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = [r for r in ledger_lines(path) if r[0] in ids]
        if {r[0] for r in got} >= ids:
            return got
        time.sleep(0.05)
    raise RuntimeError(
        f"only {len({r[0] for r in ledger_lines(path)} & ids)} of {len(ids)} arrived"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def body(ident: str) -> str:
    return json.dumps({"id": ident, "sent": time.time()})


def bench_sqs(endpoint: str, ledger: Path, args: argparse.Namespace) -> None:
    lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="bench")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    ids = [uuid.uuid4().hex for _ in range(args.messages)]
    for i in range(0, len(ids), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "MessageBody": body(x)} for j, x in enumerate(ids[i : i + 10])],
        )
    started = time.time()
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName="sink",
        BatchSize=args.batch_size,
        MaximumBatchingWindowInSeconds=1 if args.batch_size > 10 else 0,
        **(
            {"ScalingConfig": {"MaximumConcurrency": max(2, args.concurrency)}}
            if args.concurrency
            else {}
        ),
    )
    got = wait_for(ledger, set(ids), 600)
    last = max(r[2] for r in got)
    print(
        f"sqs  backlog {len(ids)}: drained {len(ids) / (last - started):,.0f} messages/s "
        f"(batch {args.batch_size}, MaximumConcurrency {args.concurrency or 'none: scales'})"
    )
    paced = []
    for _ in range(200):
        ident = uuid.uuid4().hex
        sqs.send_message(QueueUrl=url, MessageBody=body(ident))
        paced.append(ident)
        time.sleep(0.02)
    got = wait_for(ledger, set(paced), 120)
    waits = [1000 * (s - t) for _, t, s in got]
    print(f"sqs  paced: send-to-start p50 {pct(waits, 0.5):.1f} ms, p99 {pct(waits, 0.99):.1f} ms")
    lam.delete_event_source_mapping(UUID=mapping["UUID"])


async def _publish(queue: str, bodies: list[str], declare: bool) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP, timeout=10)
    async with connection:
        channel = await connection.channel()
        if declare:
            await channel.declare_queue(queue, durable=True)
        for text in bodies:
            await channel.default_exchange.publish(aio_pika.Message(text.encode()), queue)


async def _delete(queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)


def bench_rabbitmq(endpoint: str, ledger: Path, data_dir: Path, args: argparse.Namespace) -> None:
    try:
        asyncio.run(_publish(f"bench-probe-{uuid.uuid4().hex}", [], declare=False))
    except Exception as exc:
        print(f"rmq  skipped: RabbitMQ does not answer at 127.0.0.1:5672 ({exc})")
        return
    lam = client(endpoint, "lambda")
    (data_dir / "secrets").mkdir(exist_ok=True)
    (data_dir / "secrets" / "bench").write_text('{"username": "guest", "password": "guest"}')
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    ids = [uuid.uuid4().hex for _ in range(args.messages)]
    try:
        asyncio.run(_publish(queue, [body(x) for x in ids], declare=True))
        started = time.time()
        mapping = lam.create_event_source_mapping(
            FunctionName="sink",
            SelfManagedEventSource={"Endpoints": {"RABBITMQ_BROKERS": ["amqp://127.0.0.1:5672"]}},
            Queues=[queue],
            SourceAccessConfigurations=[
                {
                    "Type": "BASIC_AUTH",
                    "URI": "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench",
                }
            ],
            BatchSize=args.rmq_batch_size,
        )
        got = wait_for(ledger, set(ids), 600)
        last = max(r[2] for r in got)
        print(
            f"rmq  backlog {len(ids)}: drained {len(ids) / (last - started):,.0f} messages/s "
            f"(batch {args.rmq_batch_size}, 5 batches in flight)"
        )
        paced = [uuid.uuid4().hex for _ in range(200)]

        async def paced_send() -> None:
            import aio_pika

            connection = await aio_pika.connect(AMQP, timeout=10)
            async with connection:
                channel = await connection.channel()
                for ident in paced:
                    message = aio_pika.Message(body(ident).encode())
                    await channel.default_exchange.publish(message, queue)
                    await asyncio.sleep(0.02)

        asyncio.run(paced_send())
        got = wait_for(ledger, set(paced), 120)
        waits = [1000 * (s - t) for _, t, s in got]
        print(
            f"rmq  paced: send-to-start p50 {pct(waits, 0.5):.1f} ms, p99 {pct(waits, 0.99):.1f} ms"
        )
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    finally:
        asyncio.run(_delete(queue))


REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def bench_redis(endpoint: str, ledger: Path, args: argparse.Namespace) -> None:
    try:
        import redis

        r = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
        r.ping()
    except Exception as exc:
        print(f"redis skipped: Redis does not answer at {REDIS} ({exc})")
        return
    lam = client(endpoint, "lambda")
    key = f"bench-{uuid.uuid4().hex[:8]}"
    ids = [uuid.uuid4().hex for _ in range(args.messages)]
    try:
        pipe = r.pipeline(transaction=False)
        for ident in ids:
            pipe.xadd(key, {"data": body(ident)})
        pipe.execute()
        started = time.time()
        mapping = lam.create_event_source_mapping(
            FunctionName="sink",
            EventSourceArn=f"arn:aws:redis:us-east-1:000000000000:stream/{key}",
            SelfManagedEventSource={"Endpoints": {"REDIS_URL": [REDIS]}},
            StartingPosition="TRIM_HORIZON",
            BatchSize=args.stream_batch_size,
        )
        got = wait_for(ledger, set(ids), 600)
        last = max(row[2] for row in got)
        print(
            f"redis backlog {len(ids)}: drained {len(ids) / (last - started):,.0f} records/s "
            f"(batch {args.stream_batch_size}, one batch in flight)"
        )
        paced = []
        for _ in range(200):
            ident = uuid.uuid4().hex
            r.xadd(key, {"data": body(ident)})
            paced.append(ident)
            time.sleep(0.02)
        got = wait_for(ledger, set(paced), 120)
        waits = [1000 * (s - t) for _, t, s in got]
        print(
            f"redis paced: add-to-start p50 {pct(waits, 0.5):.1f} ms, p99 {pct(waits, 0.99):.1f} ms"
        )
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    finally:
        r.delete(key)


def bench_postgres(endpoint: str, ledger: Path, args: argparse.Namespace) -> None:
    try:
        import psycopg

        conn = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"pg   skipped: PostgreSQL does not answer at {POSTGRES} ({exc})")
        return
    lam = client(endpoint, "lambda")
    table = f"bench_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, sent double precision)")
    try:
        mapping = lam.create_event_source_mapping(
            FunctionName="sink",
            EventSourceArn=f"arn:aws:postgres:us-east-1:000000000000:table/{table}",
            SelfManagedEventSource={"Endpoints": {"POSTGRES_URL": [POSTGRES]}},
            StartingPosition="LATEST",
            BatchSize=args.stream_batch_size,
        )
        deadline = time.monotonic() + 60
        query = "SELECT 1 FROM lamina_cdc.consumers WHERE mapping_uuid = %s"
        while time.monotonic() < deadline:
            try:
                if conn.execute(query, [mapping["UUID"]]).fetchone():
                    break
            except psycopg.Error:
                pass
            time.sleep(0.1)
        ids = [uuid.uuid4().hex for _ in range(args.messages)]
        started = time.time()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (id, sent) VALUES (%s, %s)", [(i, started) for i in ids]
            )
        got = wait_for(ledger, set(ids), 600)
        last = max(row[2] for row in got)
        print(
            f"pg   backlog {len(ids)} (one transaction): drained "
            f"{len(ids) / (last - started):,.0f} changes/s (batch {args.stream_batch_size})"
        )
        paced = []
        for _ in range(200):
            ident = uuid.uuid4().hex
            conn.execute(f"INSERT INTO {table} (id, sent) VALUES (%s, %s)", [ident, time.time()])
            paced.append(ident)
            time.sleep(0.02)
        got = wait_for(ledger, set(paced), 120)
        waits = [1000 * (s - t) for _, t, s in got]
        print(
            f"pg   paced: commit-to-start p50 {pct(waits, 0.5):.1f} ms, p99 {pct(waits, 0.99):.1f} ms"
        )
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--rmq-batch-size", type=int, default=100)
    parser.add_argument(
        "--concurrency", type=int, default=5, help="SQS MaximumConcurrency; 0: none (scales)"
    )
    parser.add_argument("--stream-batch-size", type=int, default=100)
    parser.add_argument(
        "--sleep-ms", type=int, default=0, help="the function waits this long per batch (I/O)"
    )
    parser.add_argument(
        "--sources",
        default="sqs,rabbitmq,redis,postgres",
        help="comma-separated: which sources to measure (default: all)",
    )
    args = parser.parse_args()
    chosen = set(args.sources.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        ledger = Path(tmp) / "ledger"
        proc, endpoint = start_server(data_dir)
        try:
            lam = client(endpoint, "lambda")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("sink.py", HANDLER)
            lam.create_function(
                FunctionName="sink",
                Runtime=RUNTIME,
                Role="arn:aws:iam::000000000000:role/bench",
                Handler="sink.handler",
                Code={"ZipFile": buf.getvalue()},
                Timeout=30,
                Environment={"Variables": {"LEDGER": str(ledger), "SLEEP_MS": str(args.sleep_ms)}},
            )
            lam.get_waiter("function_active_v2").wait(FunctionName="sink")
            if "sqs" in chosen:
                bench_sqs(endpoint, ledger, args)
            if "rabbitmq" in chosen:
                bench_rabbitmq(endpoint, ledger, data_dir, args)
            if "redis" in chosen:
                bench_redis(endpoint, ledger, args)
            if "postgres" in chosen:
                bench_postgres(endpoint, ledger, args)
            print(f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()

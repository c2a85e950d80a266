"""Records every stream batch it receives in a Lamina queue, then succeeds or fails on purpose.

Each record's item is read from Kinesis `data` (JSON) or a DynamoDB image: {"n": 3, "poison": true}.
MODE (environment): "ok" succeeds; "raise" fails the whole batch when it holds a poison record;
"report" answers batchItemFailures naming the poison records. The batch is sent, before the
answer (and after DELAY_S seconds), as {"seqs", "ns", "failed", "request", "t"} to the queue SEEN_QUEUE_URL (SQS JSON protocol,
stdlib only).
"""

import base64
import json
import os
import time
import urllib.request


def _plain(value):
    [(kind, inner)] = value.items()
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind in ("S", "BOOL"):
        return inner
    if kind == "NULL":
        return None
    return inner


def _item(record):
    if "kinesis" in record:
        return record["kinesis"]["sequenceNumber"], json.loads(
            base64.b64decode(record["kinesis"]["data"])
        )
    ddb = record["dynamodb"]
    image = ddb.get("NewImage") or ddb.get("OldImage") or ddb["Keys"]
    return ddb["SequenceNumber"], {k: _plain(v) for k, v in image.items()}


def _send(body):
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"] + "/",
        data=json.dumps({"QueueUrl": os.environ["SEEN_QUEUE_URL"], "MessageBody": body}).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.SendMessage",
        },
    )
    urllib.request.urlopen(request, timeout=30).read()


def handler(event, context):
    mode = os.environ.get("MODE", "ok")
    time.sleep(float(os.environ.get("DELAY_S", "0")))
    items = [_item(r) for r in event["Records"]]
    poison = [seq for seq, item in items if item.get("poison")]
    failed = bool(poison) and mode in ("raise", "report")
    _send(
        json.dumps(
            {
                "seqs": [seq for seq, _ in items],
                "ns": [item.get("n") for _, item in items],
                "failed": failed,
                "request": context.aws_request_id,
                "t": time.time_ns(),
                "names": sorted({r.get("eventName") for r in event["Records"]}),
            }
        )
    )
    if poison and mode == "raise":
        raise RuntimeError(f"poison records {poison}")
    if mode == "report":
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in poison]}
    return {"processed": len(items)}

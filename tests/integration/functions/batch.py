"""Logs every batch it gets (one EVENT line of JSON) and fails the records that ask for it.

A record asks to fail when its SQS body, or its RabbitMQ data once decoded, contains "fail"
("fail-once": only when it is not a redelivery). MODE=report answers batchItemFailures for them;
MODE=raise (the default) raises instead.
"""

import base64
import json
import os
import time


def _records(event):
    if "Records" in event:
        for r in event["Records"]:
            yield r["messageId"], r["body"], False
    for messages in (event.get("rmqMessagesByQueue") or {}).values():
        for m in messages:
            text = base64.b64decode(m["data"]).decode()
            yield m["basicProperties"].get("messageId"), text, m["redelivered"]


def handler(event, context):
    print("EVENT " + json.dumps(event, separators=(",", ":")))
    delay = float(os.environ.get("DELAY", "0"))
    if delay:
        time.sleep(delay)
    failed = [
        ident
        for ident, text, again in _records(event)
        if "fail" in text and not ("fail-once" in text and again)
    ]
    if not failed:
        return None
    if os.environ.get("MODE") == "report":
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    raise RuntimeError(f"{len(failed)} records failed")

"""Forwards the event it receives, whole, to the Lamina queue SEEN_QUEUE_URL (stdlib only)."""

import json
import os
import time
import urllib.request


def handler(event, context):
    body = json.dumps({"event": event, "t": time.time_ns(), "failed": False, "ns": []})
    request = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"] + "/",
        data=json.dumps({"QueueUrl": os.environ["SEEN_QUEUE_URL"], "MessageBody": body}).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.SendMessage",
        },
    )
    urllib.request.urlopen(request, timeout=30).read()
    return {}

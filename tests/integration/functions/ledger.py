"""Appends the id of every record it gets to the file LEDGER names (one line each), then sleeps
DELAY seconds: a witness of deliveries that outlives the server (tests run it unsandboxed)."""

import os
import time


def handler(event, context):
    ids = [r["messageId"] for r in event.get("Records", [])]
    for batch in (event.get("rmqMessagesByQueue") or {}).values():
        ids += [m["basicProperties"]["messageId"] for m in batch]
    with open(os.environ["LEDGER"], "a") as ledger:
        ledger.write("".join(f"{i}\n" for i in ids))
    time.sleep(float(os.environ.get("DELAY", "0")))
    return {"seen": len(ids)}

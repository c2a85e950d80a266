"""Module state, a file in the environment's temp area, sleeps and child processes."""

import os
import socket
import subprocess
import tempfile
import time

INITS = 0
INITS += 1
CALLS = 0
CODE = "v1"
CHILDREN = []


def handler(event, context):
    global CALLS
    CALLS += 1
    marker = os.path.join(tempfile.gettempdir(), "lamina-test-" + context.log_stream_name[-32:])
    if event.get("write"):
        with open(marker, "w") as f:
            f.write(event["write"])
    found = None
    if os.path.exists(marker):
        with open(marker) as f:
            found = f.read()
        if event.get("cleanup"):
            os.unlink(marker)
    if event.get("spawn"):
        CHILDREN.append(subprocess.Popen(["sleep", "300"]))
    if event.get("notify"):  # tells the test that the call is running
        socket.create_connection(("127.0.0.1", event["notify"]), timeout=10).close()
    if event.get("sleep"):
        time.sleep(event["sleep"])
    print("lifecycle call", CALLS, "pid", os.getpid())
    return {
        "pid": os.getpid(),
        "stream": context.log_stream_name,
        "inits": INITS,
        "calls": CALLS,
        "found": found,
        "children": [c.pid for c in CHILDREN],
        "code": CODE,
        "setting": os.environ.get("SETTING"),
    }

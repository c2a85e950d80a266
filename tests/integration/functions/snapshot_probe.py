"""Shows what differs between environments forked from one template, and what they share."""

import os
import random
import time
import uuid

from snapshot_restore_py import register_after_restore, register_before_snapshot

INIT_TOKEN = uuid.uuid4().hex  # module-level: made once per Init
HOOKS = []
print(f"init ran {INIT_TOKEN}", flush=True)

if os.environ.get("PROBE_THREAD") == "1":
    import threading

    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


@register_before_snapshot
def _before():
    HOOKS.append("before")


@register_after_restore
def _after():
    HOOKS.append("after")


def handler(event, context):
    mark = f"/tmp/mark-{context.aws_request_id}"
    with open(mark, "w") as f:
        f.write("x")
    time.sleep(event.get("sleep", 0))
    if "exit" in event:
        os._exit(event["exit"])
    if event.get("orphan"):  # a grandchild that outlives its parent: pid 1 must reap it
        if os.fork() == 0:
            if os.fork() == 0:
                time.sleep(0.05)
            os._exit(0)
        os.waitpid(-1, 0)
        time.sleep(0.3)
    return {
        "token": INIT_TOKEN,
        "pid": os.getpid(),
        "random": random.random(),
        "tmp": sorted(n for n in os.listdir("/tmp") if n.startswith("mark-")),
        "request_id": context.aws_request_id,
        "stream": context.log_stream_name,
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "hooks": HOOKS,
        "proc": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "uid": os.getuid(),
        "no_new_privs": _status("NoNewPrivs"),
        "seccomp": _status("Seccomp"),
        "cap_eff": _status("CapEff"),
        "zombies": _zombies(),
        "init": _read("/proc/1/comm"),
    }


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _zombies():
    out = []
    for p in os.listdir("/proc"):
        stat = _read(f"/proc/{p}/stat") if p.isdigit() else None
        if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
            out.append(int(p))
    return out


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return None

"""Fails in the way the event asks."""

import os
import signal
import sys


def handler(event, context):
    how = event.get("how")
    print("failing:", how)
    if how == "raise":
        raise ValueError("something broke")
    if how == "sys_exit":
        sys.exit(3)
    if how == "os_exit":
        os._exit(4)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "big":
        return "x" * (6 * 1024 * 1024 + 200)
    return {"pid": os.getpid(), "stream": context.log_stream_name}

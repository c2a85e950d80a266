"""Returns the event and what the context says."""

import os

CALLS = 0


def handler(event, context):
    global CALLS
    CALLS += 1
    print("echo", context.aws_request_id)
    return {
        "event": event,
        "calls": CALLS,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {k: v for k, v in os.environ.items() if not k.startswith("AWS_SECRET")},
    }

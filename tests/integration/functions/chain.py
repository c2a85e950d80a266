"""Invokes another function through boto3, as a function on Lambda does: no endpoint, no
credentials, no region given; the runtime's environment supplies them."""

import json
import os
import sys

FIRST_MODULES = set(sys.modules)


def handler(event, context):
    import boto3

    client = boto3.client("lambda")
    resp = client.invoke(FunctionName=event["target"], Payload=json.dumps(event["payload"]))
    return {
        "status": resp["StatusCode"],
        "function_error": resp.get("FunctionError"),
        "payload": json.loads(resp["Payload"].read()),
        "boto3_file": boto3.__file__,
        "boto3_loaded_at_init": "boto3" in FIRST_MODULES,
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "region": client.meta.region_name,
        "sys_path": sys.path,
    }

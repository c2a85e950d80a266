"""A function behind a function URL: what it answers depends on the request path."""

import base64
import hashlib
import json


def handler(event, context):
    path = event["rawPath"]
    if path.startswith("/echo"):
        return {"statusCode": 200, "body": json.dumps(event)}
    if path == "/context":
        return {
            "version": context.function_version,
            "arn": context.invoked_function_arn,
            "request_id": context.aws_request_id,
        }
    if path == "/binary":
        data = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else b""
        return {
            "statusCode": 201,
            "headers": {
                "content-type": "application/octet-stream",
                "x-sha256": hashlib.sha256(data).hexdigest(),
            },
            "body": base64.b64encode(data[::-1]).decode(),
            "isBase64Encoded": True,
        }
    if path == "/cookies":
        return {
            "statusCode": 200,
            "headers": {"content-type": "text/plain"},
            "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
            "multiValueHeaders": {"x-multi": ["one", "two"]},
            "body": ";".join(event.get("cookies", [])),
        }
    if path == "/teapot":
        return {"statusCode": "418", "body": "short and stout"}
    if path == "/dict":
        return {"hello": "world", "n": 3}
    if path == "/list":
        return ["hello", 3, True]
    if path == "/string":
        return "hello"
    if path == "/number":
        return 3.1
    if path == "/none":
        return None
    if path == "/cors-override":
        return {
            "statusCode": 200,
            "headers": {"access-control-allow-origin": "https://evil.example"},
            "body": "ok",
        }
    if path == "/fail":
        raise RuntimeError("asked to fail")
    if path == "/big":
        return "x" * (7 * 1024 * 1024)
    return {
        "statusCode": 404,
        "headers": {"content-type": "text/plain"},
        "body": "no route " + path,
    }

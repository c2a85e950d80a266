"""How CLI commands reach the server: boto3 against the endpoint, errors as one clear line."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lamina.config import DEFAULT_PORT

F = TypeVar("F", bound=Callable[..., Any])

endpoint_option = click.option(
    "--endpoint",
    envvar="LAMINA_ENDPOINT",
    default=f"http://127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    help="The Lamina server's URL (or LAMINA_ENDPOINT).",
)


def client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "lamina"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "lamina"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        region_name=os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
    )
    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 0}, read_timeout=905, connect_timeout=5),
    )


def api_errors(fn: F) -> F:
    """Turn client errors into `lamina: <message>` and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn(*args, **kwargs)
        except EndpointConnectionError as exc:
            raise click.ClickException(
                f"cannot reach Lamina at {exc.kwargs.get('endpoint_url')} (is `lamina server` running?)"
            ) from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise click.ClickException(f"{err.get('Code')}: {err.get('Message')}") from exc
        except BotoCoreError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def lamina_request(endpoint: str, method: str, path: str, body: Any = None) -> Any:
    """Call one of Lamina's own REST routes (not an AWS API): JSON in, JSON out."""
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        endpoint.rstrip("/") + quote(path),
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        kind = exc.headers.get("x-amzn-ErrorType", f"HTTP {exc.code}")
        try:
            error = json.loads(exc.read())
            message = error.get("message") or error.get("Message") or ""
        except ValueError:
            message = exc.reason
        raise click.ClickException(f"{kind}: {message}") from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach Lamina at {endpoint} (is `lamina server` running?)"
        ) from exc
    return json.loads(raw) if raw else None

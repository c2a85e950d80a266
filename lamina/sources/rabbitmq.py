"""RabbitMQ queues as an event source, in the event shape Lambda uses for Amazon MQ for RabbitMQ.

A mapping names its broker in one of two ways (see docs/event-sources.md):
- self-managed: SelfManagedEventSource.Endpoints {"RABBITMQ_BROKERS": ["amqp://host:5672", ...]};
- an Amazon MQ broker ARN, arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID, which Lamina maps to an
  endpoint through LAMINA_MQ_BROKERS ("NAME=amqp://host:5672,OTHER=amqps://...") or, for a
  name it does not list, amqp://127.0.0.1:5672;
with Queues [NAME], SourceAccessConfigurations BASIC_AUTH (a secret ARN, read by the Secrets of
the context) and optionally VIRTUAL_HOST (default "/").

Consumption uses manual acknowledgements with a prefetch window: a message is acked only after
the function succeeded (or the filters dropped it), nacked with requeue when it failed, and a
message delivered but not acked when the connection or Lamina dies is redelivered by the broker
(`redelivered: true`): nothing is lost, a record may arrive twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import aio_pika
import aio_pika.abc
import aiormq
import aiormq.exceptions

from lamina.errors import InvalidParameterValueException
from lamina.sources.base import (
    CreateRequest,
    MappingConfig,
    Record,
    Source,
    SourceContext,
    SourceKind,
    SourceUnavailable,
    arn_service,
)
from lamina.sources.filters import json_view
from lamina.sources.secrets import secret_name

log = logging.getLogger(__name__)

ENDPOINT_KEY = "RABBITMQ_BROKERS"
DEFAULT_BROKER = "amqp://127.0.0.1:5672"
CONNECT_TIMEOUT_S = 10.0
LONG_POLL_S = 20.0
PREFETCH_MAX = 65_535
WORKERS = 5  # batches in flight per mapping (the poller's default)


def parse_brokers(text: str) -> dict[str, str]:
    """LAMINA_MQ_BROKERS: "NAME=URL,NAME=URL" -> {NAME: URL}."""
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, url = item.strip().partition("=")
        if sep and name.strip() and url.strip():
            out[name.strip()] = url.strip()
    return out


def broker_name(arn: str) -> str | None:
    """NAME of arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[2] == "mq" and parts[5] == "broker":
        return parts[6]
    return None


def rabbitmq_kind(brokers: Mapping[str, str]) -> SourceKind:
    """The RabbitMQ kind; `brokers` maps Amazon MQ broker names to AMQP URLs."""

    def claims(request: CreateRequest) -> bool:
        if request.endpoints and ENDPOINT_KEY in request.endpoints:
            return True
        return arn_service(request.event_source_arn) == "mq"

    async def check(mapping: MappingConfig, ctx: SourceContext) -> MappingConfig:
        if mapping.event_source_arn and broker_name(mapping.event_source_arn) is None:
            raise InvalidParameterValueException(
                "Unrecognized event source, must be an Amazon MQ broker ARN "
                "(arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID)."
            )
        if mapping.endpoints is not None:
            if set(mapping.endpoints) != {ENDPOINT_KEY}:
                raise InvalidParameterValueException(
                    f"Unsupported SelfManagedEventSource endpoint type; use {ENDPOINT_KEY}."
                )
            for url in mapping.endpoints[ENDPOINT_KEY]:
                parts = urlsplit(url)
                if parts.scheme not in ("amqp", "amqps") or not parts.hostname or parts.password:
                    raise InvalidParameterValueException(
                        f"Invalid broker endpoint {url}: use amqp://HOST:PORT or amqps://HOST:PORT "
                        "(credentials go in a BASIC_AUTH secret)."
                    )
            if mapping.event_source_arn:
                raise InvalidParameterValueException(
                    "Specify either EventSourceArn or SelfManagedEventSource, not both."
                )
        if len(mapping.queues) != 1:
            raise InvalidParameterValueException(
                "Queues must name exactly one queue for a RabbitMQ event source."
            )
        auth = mapping.access("BASIC_AUTH")
        if auth is None:
            raise InvalidParameterValueException(
                "SourceAccessConfigurations must contain a BASIC_AUTH secret for a RabbitMQ "
                "event source."
            )
        if secret_name(auth) is None:
            raise InvalidParameterValueException(
                f"Invalid BASIC_AUTH URI {auth}: it must be a Secrets Manager secret ARN."
            )
        for item in mapping.source_access:
            if item.get("Type") not in ("BASIC_AUTH", "VIRTUAL_HOST"):
                raise InvalidParameterValueException(
                    f"Unsupported SourceAccessConfiguration type {item.get('Type')} for a "
                    "RabbitMQ event source."
                )
        return mapping

    async def open_sources(mapping: MappingConfig, ctx: SourceContext) -> list[Source]:
        if mapping.endpoints is not None:
            urls = list(mapping.endpoints[ENDPOINT_KEY])
        else:
            name = broker_name(mapping.event_source_arn or "") or ""
            urls = [brokers.get(name, DEFAULT_BROKER)]
        return [RabbitSource(mapping, urls, ctx)]

    return SourceKind(
        name="rmq",
        event_source="aws:rmq",
        ordered=False,
        default_batch_size=100,
        max_batch_size=10_000,
        claims=claims,
        open=open_sources,
        check=check,
        output_members=frozenset(
            {"FilterCriteria", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource"}
        ),
        describe=_describe,
    )


def _describe(mapping: MappingConfig) -> str:
    where = mapping.event_source_arn or ",".join((mapping.endpoints or {}).get(ENDPOINT_KEY, ()))
    queue = mapping.queues[0] if mapping.queues else ""
    return f'RabbitMQ broker (" {where} ") and queue (" {queue} ")'


class RabbitSource:
    """One queue of one broker, consumed with manual acks into a local buffer."""

    def __init__(self, mapping: MappingConfig, urls: list[str], ctx: SourceContext) -> None:
        self.mapping = mapping
        self.urls = urls
        self.ctx = ctx
        self.queue_name = mapping.queues[0]
        self.vhost = mapping.access("VIRTUAL_HOST") or "/"
        self.source_arn = mapping.event_source_arn or urls[0]
        self.group = f"{self.queue_name}::{self.vhost}"
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._buffer: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage | None] = asyncio.Queue()
        self._lost: str | None = None

    async def connect(self) -> None:
        secret = self.ctx.secrets.read(self.mapping.access("BASIC_AUTH") or "")
        user, password = secret.get("username"), secret.get("password")
        if not user or password is None:
            raise SourceUnavailable(
                "Unable to parse the BASIC_AUTH secret: it needs username and password",
                permanent=True,
            )
        problems = []
        for url in self.urls:
            try:
                await self._connect_to(url, user, password)
                return
            except SourceUnavailable:
                raise
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
                problems.append(f"{url}: {_why(exc)}")
        raise SourceUnavailable(
            "Connection error. Lamina could not connect to the broker (" + "; ".join(problems) + ")"
        )

    async def _connect_to(self, url: str, user: str, password: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (5671 if scheme == "amqps" else 5672)
        full = (
            f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{port}/"
            f"{quote(self.vhost, safe='')}"
        )
        try:
            connection = await aio_pika.connect(full, timeout=CONNECT_TIMEOUT_S)
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            raise SourceUnavailable(
                f"Invalid credentials: the broker at {url} refused the login of {user!r}",
                permanent=True,
            ) from exc
        self._connection = connection
        connection.close_callbacks.add(self._on_close)
        try:
            channel = await connection.channel()
            channel.close_callbacks.add(self._on_close)
            workers = self.mapping.max_concurrency or WORKERS
            await channel.set_qos(
                prefetch_count=min(PREFETCH_MAX, self.mapping.batch_size * workers)
            )
            queue = await channel.declare_queue(self.queue_name, passive=True)
            await queue.consume(self._on_message, no_ack=False)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise SourceUnavailable(
                f"The queue {self.queue_name!r} does not exist in virtual host {self.vhost!r} "
                f"of the broker at {url}"
            ) from exc
        except aiormq.exceptions.ChannelAccessRefused as exc:
            raise SourceUnavailable(
                f"Access to the queue {self.queue_name!r} in virtual host {self.vhost!r} was refused",
                permanent=True,
            ) from exc

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await self._buffer.put(message)

    def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._lost is None:
            self._lost = f"Connection error. The connection to the broker was lost ({_why(exc)})"
        self._buffer.put_nowait(None)  # wake a waiting fetch

    def _check(self) -> None:
        if self._lost is not None:
            raise SourceUnavailable(self._lost)

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        self._check()
        out: list[aio_pika.abc.AbstractIncomingMessage] = []
        try:
            first = await asyncio.wait_for(self._buffer.get(), LONG_POLL_S)
        except TimeoutError:
            return []
        if first is None:
            self._buffer.put_nowait(None)  # for the other workers
            self._check()
            return []
        out.append(first)
        deadline = time.monotonic() + window_s
        while len(out) < max_records:
            try:
                item = self._buffer.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._buffer.get(), left)
                except TimeoutError:
                    break
            if item is None:
                self._buffer.put_nowait(None)
                break
            out.append(item)
        return [self._record(m) for m in out]

    def _record(self, message: aio_pika.abc.AbstractIncomingMessage) -> Record:
        body = message.body
        payload: dict[str, Any] = {
            "basicProperties": _properties(message),
            "redelivered": bool(message.redelivered),
            "data": base64.b64encode(body).decode(),
        }
        text = body.decode("utf-8", "replace")
        arrived = message.timestamp.timestamp() if message.timestamp else time.time()
        return Record(
            id=message.message_id or f"delivery-{message.delivery_tag}",
            payload=payload,
            handle=message,
            size=len(payload["data"]) + 512,
            arrived_s=arrived,
            filter_view={**payload, "data": json_view(text)},
        )

    async def acknowledge(self, records: Sequence[Record]) -> None:
        for record in records:
            await self._settle(record, ack=True)

    async def release(self, records: Sequence[Record]) -> None:
        for record in records:
            await self._settle(record, ack=False)

    async def _settle(self, record: Record, *, ack: bool) -> None:
        message: aio_pika.abc.AbstractIncomingMessage = record.handle
        try:
            if ack:
                await message.ack()
            else:
                await message.nack(requeue=True)
        except (aiormq.exceptions.AMQPError, RuntimeError, OSError) as exc:
            # The channel is gone: the broker requeues what was not acked.
            raise SourceUnavailable(
                f"Connection error. The connection to the broker was lost ({_why(exc)})"
            ) from exc

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        return {
            "eventSource": "aws:rmq",
            "eventSourceArn": self.source_arn,
            "rmqMessagesByQueue": {self.group: [r.payload for r in records]},
        }

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close_callbacks.discard(self._on_close)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)


def _why(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    text = str(exc) or type(exc).__name__
    return text[:300]


def _properties(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    """basicProperties as Lambda's RabbitMQ records show them (Java's casing and formats)."""
    stamp = message.timestamp
    return {
        "contentType": message.content_type,
        "contentEncoding": message.content_encoding,
        "headers": {k: _header(v) for k, v in (message.headers or {}).items()},
        "deliveryMode": int(message.delivery_mode) if message.delivery_mode else None,
        "priority": message.priority,
        "correlationId": message.correlation_id,
        "replyTo": message.reply_to,
        "expiration": str(message.expiration * 1000).removesuffix(".0")
        if isinstance(message.expiration, int | float)
        else message.expiration,
        "messageId": message.message_id,
        "timestamp": _java_time(stamp) if stamp else None,
        "type": message.type,
        "userId": message.user_id,
        "appId": message.app_id,
        "clusterId": message.cluster_id,
        "bodySize": len(message.body),
    }


def _header(value: Any) -> Any:
    """Header values: strings and bytes as {"bytes": [...]} (Java's LongString), others as JSON."""
    if isinstance(value, str):
        return {"bytes": list(value.encode())}
    if isinstance(value, bytes | bytearray):
        return {"bytes": list(value)}
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _header(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_header(v) for v in value]
    return str(value)


def _java_time(stamp: _dt.datetime) -> str:
    """The timestamp as Lambda shows it: "Jan 1, 1970, 12:33:41 AM" (UTC)."""
    t = stamp.astimezone(_dt.UTC) if stamp.tzinfo else stamp
    hour = t.hour % 12 or 12
    return f"{t:%b} {t.day}, {t.year}, {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"

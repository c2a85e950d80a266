"""Queues and their messages in the shared database (SQLAlchemy Core; runs on the DB thread).

A message is one row. `visible_ms` is when it may next be received: in the future it is delayed
(never received) or in flight (received, not deleted); `receipt` is the nonce of its latest
receipt handle, so only the newest handle deletes it or changes its visibility.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lamina.db import Database
from lamina.queues.errors import (
    InvalidMessageContents,
    MessageNotInflight,
    QueueError,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)
from lamina.queues.model import (
    INT_ATTRIBUTES,
    Queue,
    md5_hex,
    md5_of_attributes,
    parse_queue_arn,
)

metadata = sa.MetaData()

queues = sa.Table(
    "sqs_queues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("created_s", sa.BigInteger, nullable=False),
    sa.Column("modified_s", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("region", "name", name="uq_sqs_queues_region_name"),
)

messages = sa.Table(
    "sqs_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("queue_id", sa.Integer, nullable=False),
    sa.Column("message_id", sa.String(36), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=True),
    sa.Column("md5_body", sa.String(32), nullable=False),
    sa.Column("md5_attributes", sa.String(32), nullable=True),
    sa.Column("sent_ms", sa.BigInteger, nullable=False),
    sa.Column("visible_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("receive_count", sa.Integer, nullable=False, default=0),
    sa.Column("first_receive_ms", sa.BigInteger, nullable=True),
    sa.Column("receipt", sa.String(32), nullable=True),
    sa.Index("ix_sqs_messages_queue_visible", "queue_id", "visible_ms"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class NewMessage:
    body: str
    attributes: Mapping[str, Mapping[str, str]]
    delay_s: int | None = None  # None: the queue's DelaySeconds


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    md5_body: str
    md5_attributes: str | None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    md5_body: str
    md5_attributes: str | None
    attributes: dict[str, dict[str, str]]
    sent_ms: int
    receive_count: int
    first_receive_ms: int


@dataclass(frozen=True, slots=True)
class Received:
    messages: list[ReceivedMessage]
    moved_to: set[int]  # queues that got messages by redrive
    next_visible_ms: int | None  # when a message of this queue becomes receivable next


def _valid_body(body: str) -> bool:
    for ch in body:
        c = ord(ch)
        if not (
            c in (0x9, 0xA, 0xD) or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD or c >= 0x10000
        ):
            return False
    return True


def _row_queue(row: Any) -> Queue:
    return Queue(
        id=row.id,
        region=row.region,
        account_id=row.account_id,
        name=row.name,
        attributes=json.loads(row.attributes),
        created_s=row.created_s,
        modified_s=row.modified_s,
    )


def encode_receipt(message_id: str, row_id: int, nonce: str) -> str:
    return base64.urlsafe_b64encode(f"{message_id}:{row_id}:{nonce}".encode()).decode()


def decode_receipt(handle: str) -> tuple[int, str]:
    try:
        _mid, row_id, nonce = base64.urlsafe_b64decode(handle.encode()).decode().split(":")
        return int(row_id), nonce
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.'
        ) from exc


class QueueStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(metadata)

    # -- queues ----------------------------------------------------------------------------------

    def load_all(self) -> list[Queue]:
        with self.db.engine.connect() as conn:
            return [_row_queue(r) for r in conn.execute(sa.select(queues))]

    def create(self, region: str, account_id: str, name: str, attributes: dict[str, str]) -> Queue:
        now = int(time.time())
        with self.db.engine.begin() as conn:
            row = conn.execute(
                sa.select(queues).where(queues.c.region == region, queues.c.name == name)
            ).first()
            if row is not None:
                existing = _row_queue(row)
                for key, value in attributes.items():
                    if _effective(existing.attributes, key) != value:
                        raise QueueNameExists(
                            "A queue already exists with the same name and a different value for "
                            f"attribute {key}"
                        )
                return existing
            pk = conn.execute(
                queues.insert().values(
                    region=region,
                    account_id=account_id,
                    name=name,
                    attributes=json.dumps(attributes),
                    created_s=now,
                    modified_s=now,
                )
            ).inserted_primary_key
        assert pk is not None
        return Queue(
            id=int(pk[0]),
            region=region,
            account_id=account_id,
            name=name,
            attributes=attributes,
            created_s=now,
            modified_s=now,
        )

    def set_attributes(self, queue: Queue, attributes: dict[str, str]) -> Queue:
        merged = {**queue.attributes, **attributes}
        merged = {k: v for k, v in merged.items() if v != ""}
        now = int(time.time())
        with self.db.engine.begin() as conn:
            conn.execute(
                queues.update()
                .where(queues.c.id == queue.id)
                .values(attributes=json.dumps(merged), modified_s=now)
            )
        return Queue(
            id=queue.id,
            region=queue.region,
            account_id=queue.account_id,
            name=queue.name,
            attributes=merged,
            created_s=queue.created_s,
            modified_s=now,
        )

    def delete(self, queue: Queue) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(messages.delete().where(messages.c.queue_id == queue.id))
            conn.execute(queues.delete().where(queues.c.id == queue.id))

    def purge(self, queue: Queue) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(messages.delete().where(messages.c.queue_id == queue.id))

    def counts(self, queue: Queue) -> dict[str, int]:
        now = now_ms()
        m = messages.c
        live = sa.and_(m.queue_id == queue.id, m.expires_ms > now)
        with self.db.engine.connect() as conn:
            visible = conn.execute(
                sa.select(sa.func.count()).where(live, m.visible_ms <= now)
            ).scalar_one()
            in_flight = conn.execute(
                sa.select(sa.func.count()).where(live, m.visible_ms > now, m.receipt.is_not(None))
            ).scalar_one()
            delayed = conn.execute(
                sa.select(sa.func.count()).where(live, m.visible_ms > now, m.receipt.is_(None))
            ).scalar_one()
        return {
            "ApproximateNumberOfMessages": int(visible),
            "ApproximateNumberOfMessagesNotVisible": int(in_flight),
            "ApproximateNumberOfMessagesDelayed": int(delayed),
        }

    def sweep_expired(self) -> int:
        with self.db.engine.begin() as conn:
            return int(
                conn.execute(messages.delete().where(messages.c.expires_ms <= now_ms())).rowcount
            )

    # -- messages --------------------------------------------------------------------------------

    def send(self, queue: Queue, batch: list[NewMessage]) -> list[SentMessage]:
        with self.db.engine.begin() as conn:
            return send_in(conn, queue, batch)

    def receive(self, queue: Queue, max_messages: int, visibility_s: int | None) -> Received:
        now = now_ms()
        m = messages.c
        redrive = queue.redrive
        out: list[ReceivedMessage] = []
        moved: set[int] = set()
        vis_ms = 1000 * (
            queue.int_attr("VisibilityTimeout") if visibility_s is None else visibility_s
        )
        with self.db.engine.begin() as conn:
            dlq = lookup_arn_in(conn, redrive.dead_letter_arn) if redrive is not None else None
            while len(out) < max_messages:
                rows = conn.execute(
                    sa.select(messages)
                    .where(m.queue_id == queue.id, m.visible_ms <= now, m.expires_ms > now)
                    .order_by(m.visible_ms, m.id)
                    .limit(max_messages - len(out))
                ).all()
                if not rows:
                    break
                for row in rows:
                    if (
                        redrive is not None
                        and dlq is not None
                        and row.receive_count >= redrive.max_receive_count
                    ):
                        conn.execute(
                            messages.update()
                            .where(m.id == row.id)
                            .values(
                                queue_id=dlq.id,
                                receive_count=0,
                                first_receive_ms=None,
                                receipt=None,
                                visible_ms=now,
                                expires_ms=row.sent_ms
                                + 1000 * dlq.int_attr("MessageRetentionPeriod"),
                            )
                        )
                        moved.add(dlq.id)
                        continue
                    nonce = secrets.token_hex(8)
                    first = row.first_receive_ms or now
                    conn.execute(
                        messages.update()
                        .where(m.id == row.id)
                        .values(
                            receive_count=row.receive_count + 1,
                            first_receive_ms=first,
                            receipt=nonce,
                            visible_ms=now + vis_ms,
                        )
                    )
                    out.append(
                        ReceivedMessage(
                            message_id=row.message_id,
                            receipt_handle=encode_receipt(row.message_id, row.id, nonce),
                            body=row.body,
                            md5_body=row.md5_body,
                            md5_attributes=row.md5_attributes,
                            attributes=json.loads(row.attributes) if row.attributes else {},
                            sent_ms=row.sent_ms,
                            receive_count=row.receive_count + 1,
                            first_receive_ms=first,
                        )
                    )
            next_visible = None
            if not out:
                next_visible = conn.execute(
                    sa.select(sa.func.min(m.visible_ms)).where(
                        m.queue_id == queue.id, m.visible_ms > now
                    )
                ).scalar_one_or_none()
        return Received(out, moved, int(next_visible) if next_visible is not None else None)

    def delete_message(self, queue: Queue, handle: str) -> None:
        row_id, nonce = decode_receipt(handle)
        with self.db.engine.begin() as conn:
            conn.execute(
                messages.delete().where(
                    messages.c.id == row_id,
                    messages.c.queue_id == queue.id,
                    messages.c.receipt == nonce,
                )
            )

    def delete_messages(self, queue: Queue, handles: list[str]) -> list[QueueError | None]:
        """DeleteMessageBatch: every valid handle's message deleted in one transaction (one
        commit instead of one per message). Per handle: None, or the error (an invalid handle);
        a stale handle is not an error, as for delete_message."""
        outcome: list[QueueError | None] = []
        rows: list[dict[str, Any]] = []
        for handle in handles:
            try:
                row_id, nonce = decode_receipt(handle)
            except QueueError as exc:
                outcome.append(exc)
                continue
            outcome.append(None)
            rows.append({"row_id": row_id, "nonce": nonce})
        if rows:
            m = messages.c
            with self.db.engine.begin() as conn:
                conn.execute(
                    messages.delete().where(
                        m.id == sa.bindparam("row_id"),
                        m.queue_id == queue.id,
                        m.receipt == sa.bindparam("nonce"),
                    ),
                    rows,
                )
        return outcome

    def change_visibility(self, queue: Queue, handle: str, timeout_s: int) -> None:
        row_id, nonce = decode_receipt(handle)
        now = now_ms()
        m = messages.c
        with self.db.engine.begin() as conn:
            row = conn.execute(
                sa.select(m.receipt, m.visible_ms).where(m.id == row_id, m.queue_id == queue.id)
            ).first()
            if row is None:
                raise ReceiptHandleIsInvalid(
                    f'The input receipt handle "{handle}" is not a valid receipt handle.'
                )
            if row.receipt != nonce or row.visible_ms <= now:
                raise MessageNotInflight(
                    "Message does not exist or is not available for visibility timeout change."
                )
            conn.execute(
                messages.update().where(m.id == row_id).values(visible_ms=now + 1000 * timeout_s)
            )


def _effective(attributes: Mapping[str, str], key: str) -> str:
    if key in attributes:
        return attributes[key]
    if key in INT_ATTRIBUTES:
        return str(INT_ATTRIBUTES[key][2])
    return ""


def lookup_arn_in(conn: Connection, arn: str) -> Queue | None:
    parsed = parse_queue_arn(arn)
    if parsed is None:
        return None
    region, account_id, name = parsed
    row = conn.execute(
        sa.select(queues).where(
            queues.c.region == region, queues.c.name == name, queues.c.account_id == account_id
        )
    ).first()
    return _row_queue(row) if row is not None else None


def send_in(conn: Connection, queue: Queue, batch: list[NewMessage]) -> list[SentMessage]:
    """Insert messages inside the caller's transaction (the async queue uses it for DLQs and
    destinations, so that a record is written exactly when the event leaves its queue)."""
    now = now_ms()
    limit = queue.int_attr("MaximumMessageSize")
    retention_ms = 1000 * queue.int_attr("MessageRetentionPeriod")
    rows: list[dict[str, Any]] = []
    sent: list[SentMessage] = []
    for msg in batch:
        size = len(msg.body.encode()) + sum(
            len(k) + sum(len(v) for v in value.values()) for k, value in msg.attributes.items()
        )
        if size > limit:
            raise InvalidMessageContents(
                f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
            )
        if not msg.body:
            raise InvalidMessageContents("The message body must not be empty.")
        if not _valid_body(msg.body):
            raise InvalidMessageContents(
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | "
                "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
            )
        delay = queue.int_attr("DelaySeconds") if msg.delay_s is None else msg.delay_s
        mid = str(uuid.uuid4())
        md5_body = md5_hex(msg.body)
        md5_attrs = md5_of_attributes(msg.attributes)
        rows.append(
            {
                "queue_id": queue.id,
                "message_id": mid,
                "body": msg.body,
                "attributes": json.dumps(msg.attributes) if msg.attributes else None,
                "md5_body": md5_body,
                "md5_attributes": md5_attrs,
                "sent_ms": now,
                "visible_ms": now + 1000 * delay,
                "expires_ms": now + retention_ms,
                "receive_count": 0,
            }
        )
        sent.append(SentMessage(mid, md5_body, md5_attrs))
    if rows:
        conn.execute(messages.insert(), rows)
    return sent

"""The stream sources against the real brokers, below the poller: what a Source promises about
positions (read after the checkpoint, rewind, resume in a new process), and what the brokers do
under it (Redis pending lists, PostgreSQL commit order between concurrent writers)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lamina.sources.base import MappingConfig, Record
from lamina.sources.postgres_changes import PostgresChanges, parse_arn
from lamina.sources.redis_streams import RedisStream, stream_key
from tests.integration.stream_brokers import (
    POSTGRES_URL,
    REDIS_URL,
    PostgresBroker,
    RedisBroker,
    postgres_or_skip,
    redis_or_skip,
)


def config(arn: str, endpoints: dict[str, tuple[str, ...]], **changes: Any) -> MappingConfig:
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "region": "us-east-1",
        "account_id": "000000000000",
        "kind": "test",
        "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "event_source_arn": arn,
        "batch_size": 100,
        "starting_position": "TRIM_HORIZON",
        "endpoints": endpoints,
    }
    values.update(changes)
    return MappingConfig(**values)


def ns_of(records: list[Record]) -> list[int]:
    out = []
    for record in records:
        if "kinesis" in record.payload:
            import base64
            import json

            out.append(json.loads(base64.b64decode(record.payload["kinesis"]["data"]))["n"])
        else:
            out.append(int(record.payload["dynamodb"]["NewImage"]["n"]["N"]))
    return out


@pytest.fixture
def redis_broker() -> Iterator[RedisBroker]:
    broker = RedisBroker(redis_or_skip())
    yield broker
    broker.close()


@pytest.fixture
def pg_broker() -> Iterator[PostgresBroker]:
    broker = PostgresBroker(postgres_or_skip())
    yield broker
    broker.close()


def redis_source(broker: RedisBroker, **changes: Any) -> RedisStream:
    mapping = config(broker.arn, {"REDIS_URL": (REDIS_URL,)}, **changes)
    key = stream_key(broker.arn)
    assert key is not None
    return RedisStream(mapping, key, {})


def pg_source(broker: PostgresBroker, **changes: Any) -> PostgresChanges:
    mapping = config(broker.arn, {"POSTGRES_URL": (POSTGRES_URL,)}, **changes)
    stream = parse_arn(broker.arn)
    assert stream is not None
    return PostgresChanges(mapping, stream, {})


async def read_all(source: Any, expected: int, max_records: int = 100) -> list[Record]:
    got: list[Record] = []
    deadline = time.monotonic() + 30
    while len(got) < expected and time.monotonic() < deadline:
        got += await source.fetch(max_records, 0)
    return got


def test_redis_unacknowledged_entries_come_back_first_in_a_new_process(
    redis_broker: RedisBroker,
) -> None:
    async def scenario() -> None:
        first = redis_source(redis_broker)
        await first.connect()
        redis_broker.produce([{"n": n} for n in range(10)])
        got = await read_all(first, 10, max_records=4)
        assert ns_of(got) == list(range(10))
        await first.acknowledge(got[:3])  # 0..2 done; 3..9 were read, never acknowledged
        await first.close()  # as a crash: nothing given back
        redis_broker.produce([{"n": n} for n in range(10, 12)])
        again = RedisStream(first.mapping, first.key, {})  # a restarted Lamina
        await again.connect()
        resumed = await read_all(again, 9)
        assert ns_of(resumed) == list(range(3, 12))
        await again.acknowledge(resumed)
        assert await again.fetch(10, 0) == []
        await again.close()

    asyncio.run(scenario())


def test_redis_release_rewinds_to_the_checkpoint(redis_broker: RedisBroker) -> None:
    async def scenario() -> None:
        source = redis_source(redis_broker)
        await source.connect()
        redis_broker.produce([{"n": n} for n in range(6)])
        got = await read_all(source, 6)
        await source.acknowledge(got[:2])
        await source.release(got[2:])
        assert ns_of(await read_all(source, 4)) == [2, 3, 4, 5]
        await source.close()

    asyncio.run(scenario())


def test_redis_at_timestamp_starts_at_the_first_entry_from_then(
    redis_broker: RedisBroker,
) -> None:
    async def scenario() -> None:
        redis_broker.produce([{"n": n} for n in range(3)])
        await asyncio.sleep(0.01)
        stamp = time.time()
        await asyncio.sleep(0.01)
        redis_broker.produce([{"n": n} for n in range(3, 5)])
        source = redis_source(
            redis_broker, starting_position="AT_TIMESTAMP", starting_position_timestamp=stamp
        )
        await source.connect()
        assert ns_of(await read_all(source, 2)) == [3, 4]
        await source.close()

    asyncio.run(scenario())


def test_redis_a_deleted_stream_is_taken_up_again_after_the_checkpoint(
    redis_broker: RedisBroker,
) -> None:
    async def scenario() -> None:
        source = redis_source(redis_broker)
        await source.connect()
        redis_broker.produce([{"n": n} for n in range(3)])
        got = await read_all(source, 3)
        await source.acknowledge(got)
        redis_broker.client.delete(redis_broker.key)  # the stream and its groups are gone
        with pytest.raises(Exception, match="not found"):
            await source.fetch(10, 0)
        redis_broker.produce([{"n": n} for n in range(3, 5)])
        await source.connect()
        assert ns_of(await read_all(source, 2)) == [3, 4]
        await source.close()

    asyncio.run(scenario())


def test_postgres_position_survives_a_new_process_and_release_rewinds(
    pg_broker: PostgresBroker,
) -> None:
    async def scenario() -> None:
        first = pg_source(pg_broker)
        await first.connect()
        pg_broker.produce([{"n": n} for n in range(8)])
        got = await read_all(first, 8)
        assert ns_of(got) == list(range(8))
        await first.acknowledge(got[:5])
        await first.release(got[5:])
        assert ns_of(await read_all(first, 3)) == [5, 6, 7]
        await first.close()
        again = PostgresChanges(first.mapping, first.stream, {})
        await again.connect()
        assert ns_of(await read_all(again, 3)) == [5, 6, 7]
        await again.close()

    asyncio.run(scenario())


def test_postgres_sequence_follows_commit_order_between_concurrent_writers(
    pg_broker: PostgresBroker,
) -> None:
    """A writer that starts first but commits last must not be skipped: the reader only ever
    sees sequence numbers in commit order."""
    psycopg = pytest.importorskip("psycopg")

    async def scenario() -> None:
        source = pg_source(pg_broker)
        await source.connect()  # installs the capture
        early = psycopg.connect(POSTGRES_URL)  # a transaction left open
        early.execute(f"INSERT INTO {pg_broker.table} (n) VALUES (1)")
        late_done = threading.Event()

        def late_writer() -> None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f"INSERT INTO {pg_broker.table} (n) VALUES (2)")
            late_done.set()

        thread = threading.Thread(target=late_writer)
        thread.start()
        # The later writer waits for the earlier one (same table): nothing is visible yet.
        assert not late_done.wait(1.0)
        assert await source.fetch(10, 0) == []
        early.commit()
        early.close()
        thread.join(10)
        got = await read_all(source, 2)
        assert ns_of(got) == [1, 2]
        assert int(got[0].id) < int(got[1].id)
        await source.close()

    asyncio.run(scenario())


def test_postgres_view_types_and_operations(pg_broker: PostgresBroker) -> None:
    async def scenario() -> None:
        keys_only = pg_source(pg_broker)
        keys_only.stream = type(keys_only.stream)(
            keys_only.stream.schema, keys_only.stream.table, "KEYS_ONLY"
        )
        old_only = pg_source(pg_broker)
        old_only.stream = type(old_only.stream)(
            old_only.stream.schema, old_only.stream.table, "OLD_IMAGE"
        )
        for source in (keys_only, old_only):
            await source.connect()
        pg_broker.conn.execute(f"INSERT INTO {pg_broker.table} (id, n) VALUES (1, 10)")
        pg_broker.conn.execute(f"UPDATE {pg_broker.table} SET n = 11 WHERE id = 1")
        pg_broker.conn.execute(f"UPDATE {pg_broker.table} SET n = 11 WHERE id = 1")  # no change
        pg_broker.conn.execute(f"DELETE FROM {pg_broker.table} WHERE id = 1")
        k = await read_all(keys_only, 3)
        o = await read_all(old_only, 3)
        assert [r.payload["eventName"] for r in k] == ["INSERT", "MODIFY", "REMOVE"]
        assert all(set(r.payload["dynamodb"]) >= {"Keys", "SequenceNumber"} for r in k)
        assert not any("NewImage" in r.payload["dynamodb"] for r in k + o)
        assert not any("OldImage" in r.payload["dynamodb"] for r in k)
        assert [r.payload["dynamodb"].get("OldImage", {}).get("n") for r in o] == [
            None,
            {"N": "10"},
            {"N": "11"},
        ]
        assert all(r.payload["dynamodb"]["Keys"] == {"id": {"N": "1"}} for r in k + o)
        for source in (keys_only, old_only):
            await source.close()

    asyncio.run(scenario())

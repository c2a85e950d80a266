"""Object events: files created or deleted in a bucket's folder become S3 event records, sent
asynchronously (through the durable async queue) to the functions its notifications name.

Only complete files count. A changed path is watched (watchfiles: inotify on Linux) until its
size and modification time have stayed the same for `settle_s`, and a file modified less than
`settle_s` ago is not taken yet, so a file written in several steps gives one event once the
writes stop, and a file renamed into place gives one event under its final name. Hidden names
(a path part starting with `.`) and temporary ones (`~`, `.tmp`, `.part`, `.partial`, `.swp`,
`.crdownload` at the end) are not objects.

What the functions were last told is kept per bucket (`bucket_objects`: key, size, mtime, MD5).
Each settled change is compared with it; the new state and the events go into one transaction,
so an event is neither lost nor sent twice across a crash. At start every bucket is scanned and
compared: files created, changed or deleted while Lamina was down produce their events then.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from watchfiles import awatch

from lamina.control.names import parse_function_ref
from lamina.errors import LambdaError
from lamina.invoke.async_queue import AsyncQueue, NewEvent
from lamina.invoke.async_worker import new_event
from lamina.triggers.buckets import Bucket, Buckets, Resolve, bucket_objects, buckets_table

log = logging.getLogger(__name__)

TEMPORARY_SUFFIXES = ("~", ".tmp", ".part", ".partial", ".swp", ".crdownload")
TICK_MS = 100  # how often pending paths are looked at when nothing happens
RETRY_S = 2.0
RETRY_MAX_S = 60.0
READY_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ObjectState:
    size: int
    mtime_ns: int
    etag: str


def is_object_key(key: str) -> bool:
    parts = key.split("/")
    return (
        bool(key)
        and not any(p.startswith(".") for p in parts)
        and not key.endswith(TEMPORARY_SUFFIXES)
    )


def encode_key(key: str) -> str:
    """S3 URL-encodes the key in event records (a space becomes `+`; `/` stays)."""
    return quote_plus(key, safe="/")


def event_time(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def s3_record(
    *,
    bucket: Bucket,
    key: str,
    event_name: str,
    state: ObjectState | None,
    sequencer: int,
    configuration_id: str,
    time_ms: int,
) -> dict[str, Any]:
    """One S3 event record, as S3 sends it to Lambda (eventVersion 2.1)."""
    obj: dict[str, Any] = {"key": encode_key(key)}
    if state is not None:
        obj.update(size=state.size, eTag=state.etag)
    obj["sequencer"] = f"{sequencer:016X}"
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": bucket.region,
        "eventTime": event_time(time_ms),
        "eventName": event_name,
        "userIdentity": {"principalId": "LAMINA"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": uuid.uuid4().hex},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket.name,
                "ownerIdentity": {"principalId": "LAMINA"},
                "arn": bucket.arn,
            },
            "object": obj,
        },
    }


def _md5(path: Path) -> str | None:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


Signature = tuple[Any, ...] | None


def _signature(path: Path) -> Signature:
    try:
        st = path.stat()
    except OSError:
        return None
    if path.is_dir():
        return ("dir", st.st_mtime_ns)
    return ("file", st.st_size, st.st_mtime_ns)


class ObjectEvents:
    """Runs one watcher per bucket; started and stopped by server.py, told of new buckets."""

    def __init__(
        self,
        buckets: Buckets,
        queue: AsyncQueue,
        resolve: Resolve,
        *,
        settle_s: float,
        clock_ms: Callable[[], int],
    ) -> None:
        self.buckets = buckets
        self.queue = queue
        self.resolve = resolve
        self.settle_s = settle_s
        self.clock_ms = clock_ms
        self._watchers: dict[str, BucketWatcher] = {}
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # not a line per change
        buckets.on_created.append(self._created)
        buckets.on_deleted.append(self._deleted)

    async def start(self) -> None:
        for bucket in self.buckets.all():
            self._watch(bucket, baseline=False)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._watchers.values()))
        self._watchers.clear()

    async def written(
        self, name: str, key: str, event_name: str, state: ObjectState | None
    ) -> None:
        """Lamina's S3 API wrote (`state`: what it wrote) or removed `key` completely: tell it
        now, under its own event name, rather than after the settle time. The watcher sees the
        same change later and finds it already told, so each change is told once."""
        watcher = self._watchers.get(name)
        if watcher is not None and watcher.ready.is_set():
            await watcher.written(key, event_name, state)

    def watching(self, name: str) -> bool:
        watcher = self._watchers.get(name)
        return watcher is not None and watcher.ready.is_set()

    async def _created(self, bucket: Bucket) -> None:
        """A new bucket: its files so far are not events; what comes after the answer is."""
        watcher = self._watch(bucket, baseline=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher.ready.wait(), READY_TIMEOUT_S)

    async def _deleted(self, bucket: Bucket) -> None:
        watcher = self._watchers.pop(bucket.name, None)
        if watcher is not None:
            await watcher.stop()

    def _watch(self, bucket: Bucket, *, baseline: bool) -> BucketWatcher:
        watcher = BucketWatcher(self, bucket.name, Path(bucket.path), baseline=baseline)
        self._watchers[bucket.name] = watcher
        watcher.start()
        return watcher


class BucketWatcher:
    def __init__(self, owner: ObjectEvents, name: str, root: Path, *, baseline: bool) -> None:
        self.owner = owner
        self.name = name
        self.root = root
        self.baseline = baseline  # a new bucket: files already there are not events
        self.known: dict[str, ObjectState] = {}
        self.sequencer = 0
        self.pending: dict[str, tuple[Signature | str, float]] = {}
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()  # one comparison at a time: a change is told once
        self._silent = baseline
        self._failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        db = self.owner.buckets.db
        self.known, self.sequencer = await db.run(self._load)
        self._silent = self.baseline
        while not self._stop.is_set():
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A folder that went away (or a watch limit reached): back off up to a minute,
                # and say so at the first failure and then rarely.
                self._failures += 1
                if self._failures == 1 and isinstance(exc, FileNotFoundError):
                    log.warning("bucket %s: %s; watching again when it is back", self.name, exc)
                elif self._failures == 1:
                    log.exception("watching bucket %s (%s) failed; retrying", self.name, self.root)
                elif self._failures & (self._failures - 1) == 0:
                    log.warning(
                        "watching bucket %s (%s) still fails (%d times): %s",
                        self.name,
                        self.root,
                        self._failures,
                        exc,
                    )
                delay_s = min(RETRY_S * 2 ** (self._failures - 1), RETRY_MAX_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay_s)

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = self.root.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    async def _watch(self) -> None:
        scanned = False
        identity = self._identity()
        if identity is None:
            raise FileNotFoundError(f"the folder {self.root} does not exist")
        async for changes in awatch(
            self.root,
            watch_filter=None,
            debounce=TICK_MS,
            step=20,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
        ):
            if not scanned:
                # The watch is live (this is its first turn): now compare the folder with what
                # was last told, so that no change falls between the scan and the watch.
                await self.reconcile([""], silent=self._silent)
                scanned = True
                self._silent = False
                self._failures = 0
                self.ready.set()
            if self._identity() != identity:
                # The folder was removed (or replaced): inotify does not follow it, so start
                # again on whatever is there now.
                raise FileNotFoundError(f"the folder {self.root} was removed or replaced")
            now = time.monotonic()
            for _change, path in changes:
                key = self._key(path)
                if key is not None:
                    self.pending[key] = ("new", now)
            if self.pending:
                await self._settle()

    def _key(self, path: str) -> str | None:
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            return None
        key = rel.as_posix()
        return key if key != "." and is_object_key(key) else None

    async def _settle(self) -> None:
        keys = list(self.pending)
        signatures = await asyncio.to_thread(lambda: [_signature(self.root / k) for k in keys])
        now = time.monotonic()
        ready = []
        for key, signature in zip(keys, signatures, strict=True):
            seen, since = self.pending[key]
            if signature != seen:
                self.pending[key] = (signature, now)
            elif now - since >= self.owner.settle_s:
                ready.append(key)
                del self.pending[key]
        if ready:
            await self.reconcile(ready)

    # -- comparing and recording ------------------------------------------------------------------

    def _scan(self, keys: list[str]) -> dict[str, tuple[int, int]]:
        """The files (size, mtime) at or under `keys` ("" is the whole bucket)."""
        found: dict[str, tuple[int, int]] = {}
        for key in keys:
            top = self.root / key if key else self.root
            if top.is_file():
                with contextlib.suppress(OSError):
                    st = top.stat()
                    found[key] = (st.st_size, st.st_mtime_ns)
                continue
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for filename in filenames:
                    full = Path(dirpath) / filename
                    rel = full.relative_to(self.root).as_posix()
                    if not is_object_key(rel):
                        continue
                    with contextlib.suppress(OSError):
                        if full.is_file():
                            st = full.stat()
                            found[rel] = (st.st_size, st.st_mtime_ns)
        return found

    async def written(self, key: str, event_name: str, wrote: ObjectState | None) -> int:
        """Record the S3 API's complete write (`wrote`) or removal (None) of `key` at once,
        unless the file changed again meanwhile: that later change is told by its own writer
        (another S3 request) or by the watcher (any other writer), never mislabelled."""
        async with self.lock:
            try:
                st = await asyncio.to_thread((self.root / key).stat)
                now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
            except OSError:
                now = None
            old = self.known.get(key)
            if wrote is None:
                if now is not None or old is None:
                    return 0
                return await self._record([("ObjectRemoved:Delete", key, None)], silent=False)
            if now != (wrote.size, wrote.mtime_ns):
                return 0
            if old is not None and (old.size, old.mtime_ns) == now:
                return 0
            return await self._record([(event_name, key, wrote)], silent=False)

    async def reconcile(self, keys: list[str], *, silent: bool = False) -> int:
        """Compare the files at `keys` with what was last told; record and send the changes."""
        async with self.lock:
            return await self._reconcile(keys, silent=silent)

    async def _reconcile(self, keys: list[str], *, silent: bool) -> int:
        found = await asyncio.to_thread(self._scan, keys)
        settle_ns = int(self.owner.settle_s * 1e9)
        now_ns = time.time_ns()
        created: dict[str, tuple[int, int]] = {}
        for key, (size, mtime_ns) in found.items():
            old = self.known.get(key)
            if old is not None and (old.size, old.mtime_ns) == (size, mtime_ns):
                continue
            if not silent and now_ns - mtime_ns < settle_ns:
                self.pending[key] = ("new", time.monotonic())  # still being written, maybe
                continue
            created[key] = (size, mtime_ns)
        removed = [
            k
            for k in self.known
            if k not in found and any(not p or k == p or k.startswith(p + "/") for p in keys)
        ]
        if not created and not removed:
            return 0
        etags = await asyncio.to_thread(lambda: {k: _md5(self.root / k) for k in created})
        states = {
            k: ObjectState(size, mtime_ns, etag)
            for k, (size, mtime_ns) in created.items()
            if (etag := etags[k]) is not None
        }
        changes: list[tuple[str, str, ObjectState | None]] = [
            *(("ObjectCreated:Put", k, s) for k, s in sorted(states.items())),
            *(("ObjectRemoved:Delete", k, None) for k in sorted(removed)),
        ]
        return await self._record(changes, silent=silent)

    async def _record(
        self, changes: list[tuple[str, str, ObjectState | None]], *, silent: bool
    ) -> int:
        bucket = self.owner.buckets.find(self.name)
        if bucket is None:
            return 0
        time_ms = self.owner.clock_ms()
        sequencer = self.sequencer
        events: list[NewEvent] = []
        for event_name, key, state in changes:
            sequencer += 1
            if silent:
                continue
            for config in bucket.notifications:
                if not config.matches(event_name, key):
                    continue
                record = s3_record(
                    bucket=bucket,
                    key=key,
                    event_name=event_name,
                    state=state,
                    sequencer=sequencer,
                    configuration_id=config.id,
                    time_ms=time_ms,
                )
                found = self._event(bucket, config.function_arn, {"Records": [record]})
                if found is not None:
                    events.append(found)
        name = self.name

        def write(conn: Connection) -> list[NewEvent] | None:
            o = bucket_objects.c
            exists = conn.execute(
                sa.select(buckets_table.c.name).where(buckets_table.c.name == name)
            ).first()
            if exists is None:
                return None  # deleted meanwhile
            for _event_name, key, state in changes:
                conn.execute(bucket_objects.delete().where(o.bucket == name, o.key == key))
                if state is not None:
                    conn.execute(
                        bucket_objects.insert().values(
                            bucket=name,
                            key=key,
                            size=state.size,
                            mtime_ns=state.mtime_ns,
                            etag=state.etag,
                        )
                    )
            conn.execute(
                buckets_table.update()
                .where(buckets_table.c.name == name)
                .values(sequencer=sequencer)
            )
            return events

        if await self.owner.queue.enqueue_with(write) is None:
            return 0
        self.sequencer = sequencer
        for _event_name, key, state in changes:
            if state is None:
                self.known.pop(key, None)
            else:
                self.known[key] = state
        if not silent:
            log.info(
                "bucket %s: %d object event(s), %d invocation(s) queued",
                self.name,
                len(changes),
                len(events),
            )
        return len(events)

    def _event(self, bucket: Bucket, arn: str, payload: dict[str, Any]) -> NewEvent | None:
        try:
            ref = parse_function_ref(arn)
            cfg = self.owner.resolve(bucket.region, ref, None)
        except LambdaError as exc:
            log.warning("bucket %s: %s not invoked: %s", bucket.name, arn, exc)
            return None
        body = json.dumps(payload).encode()
        return new_event(cfg, ref.qualifier, body, request_id=str(uuid.uuid4()))

    def _load(self) -> tuple[dict[str, ObjectState], int]:
        with self.owner.buckets.db.engine.connect() as conn:
            o = bucket_objects.c
            known = {
                r.key: ObjectState(r.size, r.mtime_ns, r.etag)
                for r in conn.execute(sa.select(bucket_objects).where(o.bucket == self.name))
            }
            seq = conn.execute(
                sa.select(buckets_table.c.sequencer).where(buckets_table.c.name == self.name)
            ).scalar_one_or_none()
        return known, int(seq or 0)

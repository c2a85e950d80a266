"""S3 objects over bucket folders: the storage side of Lamina's S3 API (api/s3.py is the wire).

An object is a file of the bucket's folder; its key is the path relative to the folder, with `/`.
Only keys the folder can hold are taken: no empty, `.` or `..` segment, no leading `/`, none
that the object watcher would skip (hidden or temporary names), and a resolved path must stay
inside the folder (a symbolic link pointing out is refused), so no key reaches outside it.

Writes go to a hidden temporary file in the target's folder and are renamed into place, so a
reader or the watcher only ever sees complete objects; the watcher is then told at once
(`ObjectEvents.written`), so an S3 write is one object event, under S3's event name.

What S3 keeps beside the bytes (Content-Type, user metadata, the ETag of a multipart upload) is
kept in `s3_objects` with the file's size and mtime; a file changed behind the API's back no
longer matches and is described from the file itself (MD5, a type guessed from its name).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import mimetypes
import os
import shutil
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from lamina.db import Database
from lamina.errors import LambdaError
from lamina.triggers.buckets import Bucket, Buckets, bucket_objects, valid_bucket_name
from lamina.triggers.object_events import ObjectState, is_object_key
from lamina.triggers.s3_errors import (
    BadDigest,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)

MAX_KEY_BYTES = 1024
MAX_NAME_BYTES = 255  # a file name on Linux file systems
MAX_OBJECT_BYTES = 5 * 1024**3  # a single PUT, as on S3
MIN_PART_BYTES = 5 * 1024**2  # every part of a multipart upload but the last, as on S3
MAX_PART_NUMBER = 10_000
WRITE_BUFFER = 1 << 20
DEFAULT_TYPE = "binary/octet-stream"  # S3's type for an object stored without one

metadata = sa.MetaData()

s3_objects = sa.Table(
    "s3_objects",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(48), nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("extra", sa.Text, nullable=False),  # JSON: {"meta": {...}, "headers": {...}}
)


class Events(Protocol):
    async def written(
        self, name: str, key: str, event_name: str, state: ObjectState | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    mtime_ns: int
    etag: str  # without quotes: the MD5 in hex, or "<md5 of part MD5s>-<parts>"
    content_type: str = DEFAULT_TYPE
    meta: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* (names lower-cased)
    headers: dict[str, str] = field(default_factory=dict)  # Content-Disposition and the like

    @property
    def last_modified(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9, dt.UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Listing:
    objects: list[ObjectInfo]
    prefixes: list[str]
    truncated: bool
    last: str | None  # the last key or common prefix returned (the next page starts after it)


@dataclass(slots=True)
class Written:
    """A body being written: hashes as it streams, checked before the rename."""

    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    checks: dict[str, Any] = field(default_factory=dict)
    size: int = 0

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        for check in self.checks.values():
            check.update(chunk)
        self.size += len(chunk)


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, chunk: bytes) -> None:
        self.value = zlib.crc32(chunk, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


_CHECKSUMS: dict[str, Callable[[], Any]] = {
    "crc32": _Crc32,
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}


def check_key(key: str) -> None:
    """Refuse keys a folder cannot hold as a file of its own, or that would leave the folder."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long", resource=key)
    parts = key.split("/")
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
        raise KeyTooLongError(
            f"Each '/'-separated part of a key is a file or folder name here: at most "
            f"{MAX_NAME_BYTES} bytes.",
            resource=key,
        )
    if (
        not key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
        or not is_object_key(key)
    ):
        raise InvalidArgument(
            "Lamina keeps objects as files of the bucket's folder: a key may not be empty, start "
            "or end with '/', contain '//', '.' or '..' segments, or name a hidden or temporary "
            f"file (a segment starting with '.', or ending in ~ .tmp .part .partial .swp "
            f".crdownload): {key!r}",
            resource=key,
        )


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _etag_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(WRITE_BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


def guess_type(key: str) -> str:
    guessed: str | None = mimetypes.guess_type(key, strict=False)[0]
    return guessed or DEFAULT_TYPE


class ObjectStore:
    def __init__(
        self, buckets: Buckets, db: Database, *, uploads_dir: Path, events: Events | None
    ) -> None:
        self.buckets = buckets
        self.db = db
        self.uploads_dir = uploads_dir
        self.events = events
        db.create(metadata)
        # (bucket, key) -> (size, mtime_ns, etag): MD5s of files not written through the API.
        self._etags: dict[tuple[str, str], tuple[int, int, str]] = {}

    # -- buckets ---------------------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket:
        found = self.buckets.find(name)
        if found is None:
            raise NoSuchBucket("The specified bucket does not exist", resource=name)
        return found

    async def create_bucket(self, name: str, region: str) -> Bucket:
        if not valid_bucket_name(name):
            raise InvalidBucketName("The specified bucket is not valid.", resource=name)
        if self.buckets.find(name) is not None:
            raise BucketAlreadyOwnedByYou(
                "Your previous request to create the named bucket succeeded and you already own "
                "it.",
                resource=name,
            )
        try:
            bucket, created = await self.buckets.create_managed(name, region)
        except LambdaError as exc:
            raise InvalidArgument(exc.message, resource=name) from exc
        if not created:
            raise BucketAlreadyOwnedByYou("You already own this bucket.", resource=name)
        return bucket

    async def delete_bucket(self, name: str) -> None:
        bucket = self.bucket(name)
        if await asyncio.to_thread(_keys, Path(bucket.path), ""):  # names only: no hashing
            raise BucketNotEmpty("The bucket you tried to delete is not empty", resource=name)
        await self.buckets.delete(name)
        await self.db.run(self._forget_bucket, name)
        self._etags = {k: v for k, v in self._etags.items() if k[0] != name}
        if self.buckets.is_managed(bucket):
            # Lamina's own folder: nothing in it is an object (hidden leftovers at most).
            await asyncio.to_thread(shutil.rmtree, bucket.path, True)

    # -- paths -----------------------------------------------------------------------------------

    def _existing(self, bucket: Bucket, key: str) -> Path:
        """The file of an existing object, or NoSuchKey (a key that cannot be is not there)."""
        try:
            check_key(key)
        except (InvalidArgument, KeyTooLongError):
            raise NoSuchKey("The specified key does not exist.", resource=key) from None
        path = Path(bucket.path, key)
        real = os.path.realpath(path)
        if not _inside(bucket.path, real) or not os.path.isfile(real):
            raise NoSuchKey("The specified key does not exist.", resource=key)
        return path

    def _writable(self, bucket: Bucket, key: str) -> Path:
        """The file a write of `key` goes to, its folders made; refused if it would leave the
        bucket's folder or collide with a folder or file of another key."""
        check_key(key)
        root = Path(bucket.path)
        if not root.is_dir():
            raise NoSuchBucket(
                f"The bucket's folder {bucket.path} is missing", resource=bucket.name
            )
        path = root / key
        parent = root
        for part in key.split("/")[:-1]:
            parent = parent / part
            if not parent.exists() and not parent.is_symlink():
                with contextlib.suppress(FileExistsError):
                    parent.mkdir()
            if not parent.is_dir() or not _inside(bucket.path, os.path.realpath(parent)):
                raise InvalidArgument(
                    f"The key {key!r} needs a folder where the bucket's folder has a file, or "
                    "a link out of the bucket.",
                    resource=key,
                )
        if path.is_dir():
            raise InvalidArgument(
                f"The key {key!r} names a folder of the bucket's folder.", resource=key
            )
        return path

    # -- objects ---------------------------------------------------------------------------------

    async def head(self, name: str, key: str) -> tuple[ObjectInfo, Path]:
        bucket = self.bucket(name)
        path = self._existing(bucket, key)
        try:
            st = await asyncio.to_thread(path.stat)
        except OSError:
            raise NoSuchKey("The specified key does not exist.", resource=key) from None
        return await self._describe(name, key, path, st.st_size, st.st_mtime_ns), path

    async def read(self, name: str, key: str, limit: int) -> bytes:
        """A whole object's bytes, for Lambda's `S3Bucket`/`S3Key` code locations."""
        info, path = await self.head(name, key)
        if info.size > limit:
            raise EntityTooLarge(f"The object is larger than {limit} bytes.", resource=key)
        return await asyncio.to_thread(path.read_bytes)

    async def _describe(
        self, name: str, key: str, path: Path, size: int, mtime_ns: int
    ) -> ObjectInfo:
        row = await self.db.run(self._meta_row, name, key)
        if row is not None and (row.size, row.mtime_ns) == (size, mtime_ns):
            extra = json.loads(row.extra)
            return ObjectInfo(
                key, size, mtime_ns, row.etag, row.content_type, extra["meta"], extra["headers"]
            )
        cached = self._etags.get((name, key))
        if cached is not None and cached[:2] == (size, mtime_ns):
            etag = cached[2]
        else:
            etag = await asyncio.to_thread(_etag_of, path)
            self._remember(name, key, size, mtime_ns, etag)
        return ObjectInfo(key, size, mtime_ns, etag, guess_type(key))

    def _remember(self, name: str, key: str, size: int, mtime_ns: int, etag: str) -> None:
        if len(self._etags) > 100_000:
            self._etags.clear()
        self._etags[(name, key)] = (size, mtime_ns, etag)

    @contextlib.asynccontextmanager
    async def _staging(self, bucket: Bucket, key: str) -> AsyncIterator[tuple[Path, Path]]:
        """The file a write of `key` goes to and a hidden temporary file beside it, for the
        write to fill and `_publish` to rename into place; removed if it was not."""
        path = await asyncio.to_thread(self._writable, bucket, key)
        tmp = path.parent / f".lamina-{uuid.uuid4().hex}.tmp"
        try:
            yield path, tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    async def put(
        self,
        name: str,
        key: str,
        body: AsyncIterator[bytes],
        *,
        content_md5: str | None = None,
        checksums: dict[str, str] | None = None,
        trailing: tuple[str, ...] = (),
        content_type: str | None = None,
        meta: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        """PutObject: stream `body` to a hidden temporary file, check it, rename it into place.
        `checksums` (algorithm -> base64) may gain the body's trailing ones (`trailing` names
        their algorithms) while it streams."""
        bucket = self.bucket(name)
        expected_md5 = _decode_md5(content_md5)
        written = Written()
        checksums = {} if checksums is None else checksums
        for algorithm in {*checksums, *trailing}:
            if algorithm in _CHECKSUMS:
                written.checks[algorithm] = _CHECKSUMS[algorithm]()
        async with self._staging(bucket, key) as (path, tmp):
            await _stream_to(tmp, body, written, MAX_OBJECT_BYTES)
            if expected_md5 is not None and written.md5.digest() != expected_md5:
                raise BadDigest("The Content-MD5 you specified did not match what we received.")
            for algorithm, value in checksums.items():  # trailing ones are in by now
                if algorithm not in written.checks:
                    continue  # crc32c, crc64nvme: not computed here
                if written.checks[algorithm].digest() != _b64(value, algorithm):
                    raise BadDigest(
                        f"The {algorithm.upper()} you specified did not match the calculated "
                        "checksum."
                    )
            etag = written.md5.hexdigest()
            return await self._publish(
                name,
                key,
                tmp,
                path,
                etag,
                content_type or guess_type(key),
                meta or {},
                headers or {},
                if_none_match=if_none_match,
                event_name="ObjectCreated:Put",
            )

    async def _publish(
        self,
        name: str,
        key: str,
        tmp: Path,
        path: Path,
        etag: str,
        content_type: str,
        meta: dict[str, str],
        headers: dict[str, str],
        *,
        if_none_match: bool,
        event_name: str,
    ) -> ObjectInfo:
        def rename() -> os.stat_result:
            if if_none_match and path.exists():
                raise PreconditionFailed(
                    "At least one of the pre-conditions you specified did not hold",
                    resource=key,
                )
            # The state of what this request wrote: taken before the rename (which keeps size
            # and mtime), since another writer may replace the file right after it.
            st = tmp.stat()
            os.replace(tmp, path)
            return st

        st = await asyncio.to_thread(rename)
        info = ObjectInfo(key, st.st_size, st.st_mtime_ns, etag, content_type, meta, headers)
        await self.db.run(self._write_meta, name, info)
        if self.events is not None:
            state = ObjectState(info.size, info.mtime_ns, etag)
            await self.events.written(name, key, event_name, state)
        return info

    async def copy(
        self,
        source_bucket: str,
        source_key: str,
        name: str,
        key: str,
        *,
        replace_meta: bool,
        content_type: str | None,
        meta: dict[str, str],
        headers: dict[str, str],
    ) -> ObjectInfo:
        source, source_path = await self.head(source_bucket, source_key)
        bucket = self.bucket(name)
        if (source_bucket, source_key) == (name, key) and not replace_meta:
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes."
            )
        async with self._staging(bucket, key) as (path, tmp):
            await asyncio.to_thread(shutil.copyfile, source_path, tmp)
            etag = source.etag if "-" not in source.etag else await asyncio.to_thread(_etag_of, tmp)
            if replace_meta:
                ctype, m, h = content_type or guess_type(key), meta, headers
            else:
                ctype, m, h = source.content_type, source.meta, source.headers
            return await self._publish(
                name, key, tmp, path, etag, ctype, m, h,
                if_none_match=False, event_name="ObjectCreated:Copy",
            )  # fmt: skip

    async def delete(self, name: str, key: str) -> None:
        """DeleteObject: removing a key that is not there succeeds, as on S3."""
        bucket = self.bucket(name)
        try:
            path = self._existing(bucket, key)
        except NoSuchKey:
            return

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            if self.buckets.is_managed(bucket):
                # Lamina's own folder: folders exist only for the keys in them.
                parent = path.parent
                root = Path(bucket.path)
                while parent != root:
                    try:
                        parent.rmdir()
                    except OSError:
                        break
                    parent = parent.parent
            return True

        if not await asyncio.to_thread(remove):
            return
        await self.db.run(self._forget, name, key)
        self._etags.pop((name, key), None)
        if self.events is not None:
            await self.events.written(name, key, "ObjectRemoved:Delete", None)

    # -- listing ---------------------------------------------------------------------------------

    async def list_objects(
        self,
        name: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        after_prefix: bool = False,
        max_keys: int = 1000,
    ) -> Listing:
        """Keys in UTF-8 order, after `after` (a key, or a common prefix when `after_prefix`),
        grouped by `delimiter` into common prefixes; at most `max_keys` entries."""
        bucket = self.bucket(name)
        root = Path(bucket.path)
        found = await asyncio.to_thread(_keys, root, prefix)
        selected: list[str] = []
        prefixes: list[str] = []
        truncated = False
        last: str | None = None
        for key in found:
            if after and (key <= after or (after_prefix and key.startswith(after))):
                continue
            entry = key
            if delimiter:
                at = key.find(delimiter, len(prefix))
                if at >= 0:
                    entry = key[: at + len(delimiter)]
                    if prefixes and prefixes[-1] == entry:
                        continue
            if len(selected) + len(prefixes) >= max_keys:
                truncated = True
                break
            if entry == key:
                selected.append(key)
            else:
                prefixes.append(entry)
            last = entry
        # Only the page's objects are looked at closely (a stat each, an MD5 when unknown).
        objects = await asyncio.to_thread(_stats, root, selected)
        known = await self.db.run(self._known_etags, name, [k for k, _s, _m in objects])
        infos = []
        for key, size, mtime_ns in objects:
            hit = known.get(key) or self._etags.get((name, key))
            if hit is not None and hit[:2] == (size, mtime_ns):
                etag = hit[2]
            else:
                try:
                    etag = await asyncio.to_thread(_etag_of, Path(bucket.path, key))
                except OSError:
                    continue  # removed meanwhile
                self._remember(name, key, size, mtime_ns, etag)
            infos.append(ObjectInfo(key, size, mtime_ns, etag))
        return Listing(infos, prefixes, truncated, last)

    # -- multipart uploads -----------------------------------------------------------------------

    def _upload_dir(self, upload_id: str, name: str, key: str) -> Path:
        if not upload_id.isalnum():
            raise NoSuchUpload("The specified upload does not exist.", resource=upload_id)
        folder = self.uploads_dir / upload_id
        try:
            info = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError):
            raise NoSuchUpload(
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
                resource=upload_id,
            ) from None
        if (info["bucket"], info["key"]) != (name, key):
            raise NoSuchUpload("The specified upload does not exist.", resource=upload_id)
        return folder

    async def create_upload(
        self,
        name: str,
        key: str,
        *,
        content_type: str | None,
        meta: dict[str, str],
        headers: dict[str, str],
    ) -> str:
        self.bucket(name)
        check_key(key)
        upload_id = uuid.uuid4().hex
        folder = self.uploads_dir / upload_id
        info = {
            "bucket": name,
            "key": key,
            "content_type": content_type or guess_type(key),
            "meta": meta,
            "headers": headers,
        }

        def make() -> None:
            folder.mkdir(parents=True)
            (folder / "upload.json").write_text(json.dumps(info))

        await asyncio.to_thread(make)
        return upload_id

    async def upload_part(
        self,
        name: str,
        key: str,
        upload_id: str,
        number: int,
        body: AsyncIterator[bytes],
        *,
        content_md5: str | None = None,
    ) -> str:
        self.bucket(name)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise InvalidArgument(
                f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
            )
        expected = _decode_md5(content_md5)
        folder = await asyncio.to_thread(self._upload_dir, upload_id, name, key)
        written = Written()
        tmp = folder / f".part-{number:05d}-{uuid.uuid4().hex}"
        try:
            await _stream_to(tmp, body, written, MAX_OBJECT_BYTES)
            if expected is not None and written.md5.digest() != expected:
                raise BadDigest("The Content-MD5 you specified did not match what we received.")
            etag: str = written.md5.hexdigest()
            await asyncio.to_thread(os.replace, tmp, folder / f"part-{number:05d}-{etag}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return etag

    async def complete_upload(
        self, name: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        bucket = self.bucket(name)
        folder = await asyncio.to_thread(self._upload_dir, upload_id, name, key)
        if not parts:
            raise MalformedXML("The XML you provided was not well-formed or did not validate.")
        numbers = [n for n, _e in parts]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise InvalidPartOrder("The list of parts was not in ascending order.")
        files: list[Path] = []
        digests = b""
        for i, (number, etag) in enumerate(parts):
            etag = etag.strip('"')
            part = folder / f"part-{number:05d}-{etag}"
            try:
                size = part.stat().st_size
            except OSError:
                raise InvalidPart(
                    "One or more of the specified parts could not be found. The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.",
                    resource=f"{number}",
                ) from None
            if i < len(parts) - 1 and size < MIN_PART_BYTES:
                raise EntityTooSmall(
                    "Your proposed upload is smaller than the minimum allowed size"
                )
            files.append(part)
            digests += bytes.fromhex(etag)
        info = json.loads((folder / "upload.json").read_text())

        def join(tmp: Path) -> None:
            with tmp.open("wb") as out:
                for part in files:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out, WRITE_BUFFER)

        async with self._staging(bucket, key) as (path, tmp):
            await asyncio.to_thread(join, tmp)
            etag = hashlib.md5(digests, usedforsecurity=False).hexdigest() + f"-{len(parts)}"
            done = await self._publish(
                name, key, tmp, path, etag, info["content_type"], info["meta"], info["headers"],
                if_none_match=False, event_name="ObjectCreated:CompleteMultipartUpload",
            )  # fmt: skip
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return done

    async def abort_upload(self, name: str, key: str, upload_id: str) -> None:
        self.bucket(name)
        folder = await asyncio.to_thread(self._upload_dir, upload_id, name, key)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    # -- the database thread ---------------------------------------------------------------------

    def _meta_row(self, name: str, key: str) -> Any:
        with self.db.engine.connect() as conn:
            c = s3_objects.c
            return conn.execute(sa.select(s3_objects).where(c.bucket == name, c.key == key)).first()

    def _known_etags(self, name: str, keys: list[str]) -> dict[str, tuple[int, int, str]]:
        """ETags known for `keys`: written through the API, or hashed by the watcher."""
        out: dict[str, tuple[int, int, str]] = {}
        if not keys:
            return out
        with self.db.engine.connect() as conn:
            for table in (bucket_objects, s3_objects):
                c = table.c
                for start in range(0, len(keys), 500):
                    rows = conn.execute(
                        sa.select(c.key, c.size, c.mtime_ns, c.etag).where(
                            c.bucket == name, c.key.in_(keys[start : start + 500])
                        )
                    )
                    for r in rows:
                        out[r.key] = (r.size, r.mtime_ns, r.etag)
        return out

    def _write_meta(self, name: str, info: ObjectInfo) -> None:
        with self.db.engine.begin() as conn:
            c = s3_objects.c
            conn.execute(s3_objects.delete().where(c.bucket == name, c.key == info.key))
            conn.execute(
                s3_objects.insert().values(
                    bucket=name,
                    key=info.key,
                    size=info.size,
                    mtime_ns=info.mtime_ns,
                    etag=info.etag,
                    content_type=info.content_type,
                    extra=json.dumps({"meta": info.meta, "headers": info.headers}),
                )
            )

    def _forget(self, name: str, key: str) -> None:
        with self.db.engine.begin() as conn:
            c = s3_objects.c
            conn.execute(s3_objects.delete().where(c.bucket == name, c.key == key))

    def _forget_bucket(self, name: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(s3_objects.delete().where(s3_objects.c.bucket == name))


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InvalidArgument(f"Value for x-amz-checksum-{what} header is invalid.") from None


def _decode_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except ValueError:
        digest = b""
    if len(digest) != 16:
        raise InvalidDigest("The Content-MD5 you specified was invalid.")
    return digest


async def _stream_to(path: Path, body: AsyncIterator[bytes], written: Written, limit: int) -> None:
    f = await asyncio.to_thread(path.open, "wb")
    try:
        buffered: list[bytes] = []
        size = 0
        async for chunk in body:
            written.update(chunk)
            if written.size > limit:
                raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
            buffered.append(chunk)
            size += len(chunk)
            if size >= WRITE_BUFFER:
                await asyncio.to_thread(f.write, b"".join(buffered))
                buffered, size = [], 0
        if buffered:
            await asyncio.to_thread(f.write, b"".join(buffered))
    finally:
        await asyncio.to_thread(f.close)


def _keys(root: Path, prefix: str) -> list[str]:
    """The keys of a folder's objects that start with `prefix`, sorted as S3 sorts keys (by
    UTF-8 bytes, which is code point order). Names only (directory entries' types, no stat per
    file), from the prefix's deepest folder down; links count only if they stay inside."""
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    top = root / base if base else root
    real_root = os.path.realpath(root)
    if not _inside(real_root, os.path.realpath(top)) or not top.is_dir():
        return []
    found: list[str] = []
    stack = [(str(top), base + "/" if base else "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                key = rel + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if key.startswith(prefix) or prefix.startswith(key + "/"):
                            stack.append((entry.path, key + "/"))
                        continue
                    if entry.is_symlink():
                        if not entry.is_file() or not _inside(
                            real_root, os.path.realpath(entry.path)
                        ):
                            continue  # a link out of the bucket is not an object of it
                    elif not entry.is_file(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                if key.startswith(prefix) and is_object_key(key):
                    found.append(key)
    found.sort()
    return found


def _stats(root: Path, keys: list[str]) -> list[tuple[str, int, int]]:
    """(key, size, mtime_ns) of `keys`; a key removed meanwhile is left out."""
    out = []
    for key in keys:
        try:
            st = os.stat(root / key)
        except OSError:
            continue
        out.append((key, st.st_size, st.st_mtime_ns))
    return out

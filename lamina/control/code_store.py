"""Deployment packages on disk, content-addressed by the SHA-256 of the zip, unpacked once.

Layout under the data dir: `code/<hex>.zip` (the package as uploaded, served back by GetFunction)
and `code/<hex>/` (the unpacked tree an environment mounts as its task root, read-only).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from lamina.control.model import CodeRef
from lamina.errors import InvalidParameterValueException, RequestTooLargeException

MAX_ZIPPED_BYTES = 52_428_800  # direct upload, as Lambda
MAX_UNZIPPED_BYTES = 262_144_000  # function + layers, as Lambda


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def zip_path(self, sha256_hex: str) -> Path:
        return self.root / f"{sha256_hex}.zip"

    def tree_path(self, sha256_hex: str) -> Path:
        return self.root / sha256_hex

    def put(self, data: bytes) -> CodeRef:
        """Validate and unpack a zip (idempotent for the same bytes). Blocking: call off the loop."""
        if len(data) > MAX_ZIPPED_BYTES:
            raise RequestTooLargeException(
                f"Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes"
            )
        digest = hashlib.sha256(data).digest()
        hex_ = digest.hex()
        unzipped = self._unpack(data, self.tree_path(hex_))
        zip_path = self.zip_path(hex_)
        if not zip_path.exists():
            _atomic_write(zip_path, data)
        return CodeRef(
            sha256_b64=base64.b64encode(digest).decode(),
            sha256_hex=hex_,
            size=len(data),
            unzipped_size=unzipped,
        )

    def has(self, sha256_hex: str) -> bool:
        return self.tree_path(sha256_hex).is_dir()

    def remove(self, sha256_hex: str) -> None:
        tree = self.tree_path(sha256_hex)
        if tree.exists():
            _make_writable(tree)
            shutil.rmtree(tree, ignore_errors=True)
        self.zip_path(sha256_hex).unlink(missing_ok=True)

    def _unpack(self, data: bytes, dest: Path) -> int:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError) as exc:
            raise InvalidParameterValueException(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from exc
        with archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_UNZIPPED_BYTES:
                raise InvalidParameterValueException(
                    f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
                )
            for info in infos:
                _check_member(info)
            if dest.is_dir():
                return total
            tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=self.root))
            try:
                for info in infos:
                    _extract(archive, info, tmp)
                _make_read_only(tmp)
                try:
                    os.rename(tmp, dest)
                except OSError:
                    if not dest.is_dir():  # lost a race with an identical upload otherwise
                        raise
            finally:
                if tmp.exists():
                    _make_writable(tmp)
                    shutil.rmtree(tmp, ignore_errors=True)
        return total


def _check_member(info: zipfile.ZipInfo) -> None:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: the entry '{info.filename}' points outside the task root."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: the entry '{info.filename}' is a symbolic link, "
            "which Lamina does not unpack."
        )


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    target = root / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: {info.filename}: {exc}"
        ) from exc
    mode = (info.external_attr >> 16) & 0o777
    # Keep the executable bits (a custom runtime's `bootstrap` needs them); everything readable.
    os.chmod(target, 0o555 if mode & 0o111 else 0o444)


def _make_read_only(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o555)


def _make_writable(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".zip-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)

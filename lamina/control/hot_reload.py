"""Hot reloading: a function whose code is a folder on the Lamina host, read live.

`Code: {"S3Bucket": "hot-reload", "S3Key": "/abs/folder"}` (LocalStack's convention, so that its
users' scripts work) makes the folder the function's task root, mounted read-only as it is. Before
each invocation the folder's fingerprint (paths, sizes and modification times) is compared with
the one the warm environments started from; on a change they are retired, so the next invocation
runs the new code in a fresh environment, without a redeploy.

Any caller of the API could otherwise mount any host folder into a function, so the server allows
it only when it listens on a loopback address, unless LAMINA_HOT_RELOAD=on (or =off) says otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from lamina.control.model import CodeRef
from lamina.errors import InvalidParameterValueException

BUCKET = "hot-reload"
# What GetFunctionConfiguration says for CodeSha256, as LocalStack does: the code has no fixed hash.
HOT_SHA256 = "hot-reloading-hash-not-available"
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".aws-sam"})


def allowed(setting: str, host: str) -> bool:
    """`setting` is on, off or auto (on when the server listens on loopback only)."""
    if setting in ("on", "1", "true"):
        return True
    if setting in ("off", "0", "false"):
        return False
    return host in ("localhost", "::1") or host.startswith("127.")


def local_code(folder: object, *, enabled: bool, data_dir: Path) -> CodeRef:
    """The CodeRef of a hot-reloaded folder, checked."""
    if not enabled:
        raise InvalidParameterValueException(
            "Hot reloading (Code.S3Bucket 'hot-reload') is off on this Lamina server: it listens "
            "on a non-loopback address. Start it with LAMINA_HOT_RELOAD=on to allow it."
        )
    if not isinstance(folder, str) or not os.path.isabs(folder):
        raise InvalidParameterValueException(
            "For hot reloading, Code.S3Key must be the absolute path of a folder on the Lamina host."
        )
    path = Path(folder).resolve()
    if not path.is_dir():
        raise InvalidParameterValueException(
            f"Hot reloading: {folder} is not a folder on the Lamina host."
        )
    data = data_dir.resolve()
    if path == data or path.is_relative_to(data) or data.is_relative_to(path):
        raise InvalidParameterValueException(
            f"Hot reloading: {folder} holds Lamina's own data and cannot be a function's code."
        )
    digest = hashlib.sha256(str(path).encode()).digest()
    return CodeRef(
        sha256_b64=HOT_SHA256,
        sha256_hex=digest.hex(),
        size=0,
        unzipped_size=0,
        local_path=str(path),
    )


def fingerprint(folder: str) -> str:
    """A digest of what the folder holds (names, sizes, mtimes). Blocking: call off the loop."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            h.update(f"{os.path.relpath(full, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return base64.b64encode(h.digest()).decode()


class Watch:
    """The last fingerprint seen per function version; says when the folder changed."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], str] = {}

    def changed(self, key: tuple[str, str, str], folder: str) -> bool:
        """True when the folder differs from the last call's (the first call records it)."""
        current = fingerprint(folder)
        previous = self._seen.get(key)
        self._seen[key] = current
        return previous is not None and previous != current

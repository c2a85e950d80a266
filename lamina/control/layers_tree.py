"""The /opt a function sees: its layers merged in order into one read-only tree.

A later layer's file replaces an earlier one's at the same path, as on Lambda. The merged tree
is content-addressed by the ordered list of the layers' SHA-256s, so it is built once for every
function that uses the same list; files are hard links into the layers' unpacked trees (which
are read-only), so a merge costs directory entries, not copies.
Layout: `code/opt/<sha256 of the list>/` beside the unpacked packages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lamina.control.code_store import CodeStore
from lamina.control.model import CodeRef


def opt_tree_path(code: CodeStore, layers: Sequence[CodeRef]) -> Path | None:
    """Where the merged tree of these layers lives; None without layers."""
    if not layers:
        return None
    key = hashlib.sha256("\n".join(c.sha256_hex for c in layers).encode()).hexdigest()
    return code.root / "opt" / key


def build_opt_tree(code: CodeStore, layers: Sequence[CodeRef]) -> Path | None:
    """Build the merged tree unless it exists (idempotent, safe against a concurrent build).

    Blocking: call it off the event loop."""
    dest = opt_tree_path(code, layers)
    if dest is None or dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=dest.parent))
    try:
        for layer in layers:
            _overlay(code.tree_path(layer.sha256_hex), tmp)
        for dirpath, _dirs, _files in os.walk(tmp):
            os.chmod(dirpath, 0o555)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # lost a race with an identical build otherwise
                raise
    finally:
        if tmp.exists():
            _remove(tmp)
    return dest


def _overlay(src_root: Path, dest_root: Path) -> None:
    """Put every entry of `src_root` into `dest_root`, replacing what is already there."""
    if not src_root.is_dir():
        raise FileNotFoundError(f"layer content missing from the code store: {src_root}")
    for dirpath, dirs, files in os.walk(src_root):
        rel = os.path.relpath(dirpath, src_root)
        target_dir = dest_root if rel == "." else dest_root / rel
        for name in dirs:
            target = target_dir / name
            if target.exists() and not target.is_dir():
                target.unlink()
            target.mkdir(exist_ok=True)
        for name in files:
            target = target_dir / name
            if target.is_dir():
                _remove(target)
            elif target.exists():
                target.unlink()
            src = os.path.join(dirpath, name)
            try:
                os.link(src, target)
            except OSError:  # another filesystem or no hard links: copy, keeping the mode
                shutil.copy2(src, target)


def _remove(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(root, ignore_errors=True)

"""The /opt tree: layers merged in order, a later layer's entry replacing an earlier one's."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from lamina.control.code_store import CodeStore
from lamina.control.layers_tree import build_opt_tree, opt_tree_path


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | (0o755 if name.startswith("bin/") else 0o644)) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_later_layers_win_and_the_tree_is_read_only(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    first = store.put(
        _zip({"python/a.py": b"first", "python/only.py": b"1", "bin/tool": b"#!", "x": b"file"})
    )
    second = store.put(_zip({"python/a.py": b"second", "x/inside": b"dir now"}))
    tree = build_opt_tree(store, [first, second])
    assert tree is not None and tree == opt_tree_path(store, [first, second])
    assert (tree / "python/a.py").read_bytes() == b"second"
    assert (tree / "python/only.py").read_bytes() == b"1"
    assert (tree / "x/inside").read_bytes() == b"dir now"  # a directory replaced the file
    assert os.access(tree / "bin/tool", os.X_OK)
    assert (tree / "python").stat().st_mode & 0o777 == 0o555
    # the other order is another tree, where the first layer's entries win
    reverse = build_opt_tree(store, [second, first])
    assert reverse is not None and reverse != tree
    assert (reverse / "python/a.py").read_bytes() == b"first"
    assert (reverse / "x").read_bytes() == b"file"


def test_built_once_and_none_without_layers(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    layer = store.put(_zip({"python/m.py": b"m"}))
    tree = build_opt_tree(store, [layer])
    assert tree is not None
    inode = (tree / "python/m.py").stat().st_ino
    assert inode == (store.tree_path(layer.sha256_hex) / "python/m.py").stat().st_ino  # a link
    assert build_opt_tree(store, [layer]) == tree
    assert (tree / "python/m.py").stat().st_ino == inode
    assert build_opt_tree(store, []) is None
    assert not [p for p in (tmp_path / "opt").iterdir() if p.name.startswith(".merge-")]

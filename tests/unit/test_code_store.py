"""The code store validates and unpacks packages once, by content."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from lamina.control.code_store import CodeStore
from lamina.errors import InvalidParameterValueException


def _zip(entries: dict[str, bytes], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    data = _zip({"app.py": b"x = 1\n", "pkg/mod.py": b""})
    a = store.put(data)
    b = store.put(data)
    assert a == b
    assert len(a.sha256_b64) == 44 and a.sha256_b64.endswith("=")
    assert (store.tree_path(a.sha256_hex) / "pkg" / "mod.py").is_file()
    assert store.zip_path(a.sha256_hex).read_bytes() == data


def test_executable_bits_are_kept(tmp_path: Path) -> None:
    ref = CodeStore(tmp_path).put(_zip({"bootstrap": b"#!/bin/sh\n"}, mode=0o755))
    assert (tmp_path / ref.sha256_hex / "bootstrap").stat().st_mode & 0o111


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil.py", "a/../../evil.py"])
def test_entries_escaping_the_task_root_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameterValueException):
        CodeStore(tmp_path).put(_zip({name: b""}))


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValueException):
        CodeStore(tmp_path).put(b"definitely not a zip")


def test_symlinks_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InvalidParameterValueException):
        CodeStore(tmp_path).put(buf.getvalue())

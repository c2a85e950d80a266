"""Finding the language interpreters a host has: a Python of each version, a Node.js of each major.

Every candidate is started once and asked its version, so that a pyenv shim or a broken link
that exists but does not run is never counted, and resolved to its real executable (a shim
costs a shell per cold start).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path


@cache
def python_interpreter(version: str) -> str | None:
    """The interpreter of Python `version` ("3.12") here: the one running Lamina, one on PATH
    or in /usr/bin, or one of pyenv's installed versions."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(
        (str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}")),
        reverse=True,
    )
    for candidate in candidates:
        if candidate and (real := _probe_python(candidate, version)) is not None:
            return real
    return None


def _probe_python(executable: str, version: str) -> str | None:
    """The real path of a Python of that version, if `executable` is one that starts."""
    out = _run(
        [
            executable,
            "-I",
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)",
        ]
    )
    if out is None:
        return None
    major, _, rest = out.partition(" ")
    minor, _, real = rest.partition(" ")
    if f"{major}.{minor}" != version or not os.path.isabs(real):
        return None
    return real


@cache
def node_interpreters() -> dict[int, tuple[str, str]]:
    """Node.js major version -> (real executable, full version) for every Node found: `node` on
    PATH and /usr/bin, then nvm's installed versions (newest first; the first of a major wins)."""
    candidates: list[str | None] = [shutil.which("node"), shutil.which("nodejs"), "/usr/bin/node"]
    nvm_dir = Path(os.environ.get("NVM_DIR") or Path.home() / ".nvm")
    installed = [str(p) for p in nvm_dir.glob("versions/node/v*/bin/node")]
    newest_first: list[str] = sorted(installed, key=_version_key, reverse=True)
    candidates += newest_first
    found: dict[int, tuple[str, str]] = {}
    seen: set[str] = set()
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        real = os.path.realpath(candidate)
        if real in seen:
            continue
        seen.add(real)
        out = _run([real, "--version"])
        m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", out or "")
        if m is not None:
            found.setdefault(int(m.group(1)), (real, out.removeprefix("v") if out else ""))
    return found


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/v(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(g) for g in m.groups()) if m else (0,)


def _run(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None

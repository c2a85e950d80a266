"""The AWS SDK that Lamina's Python runtime offers functions, as Lambda's Python runtimes do.

It is Lamina's own boto3 and its dependencies (all pure Python), found where Lamina is installed
and shown to the environment read-only. The bootstrap does not put that whole directory on
sys.path: it adds a finder, after every sys.path entry (the task root and /opt first), that
resolves only these top-level names there, so Lamina's other packages stay out of reach.

An interpreter of another version than Lamina's has no bytecode for these modules, and cannot
write any inside a sandbox, so a cold start that imports boto3 would compile botocore from
source (seconds). The first environment of each interpreter therefore has the bytecode
compiled next to the sources in the background, once per server.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from functools import cache

log = logging.getLogger(__name__)

SDK_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
_SDK_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3")


@dataclass(frozen=True, slots=True)
class PythonSdk:
    search_dirs: tuple[str, ...]  # where the bootstrap's finder looks for SDK_MODULES
    paths: tuple[str, ...]  # the package directories and module files a sandbox must show
    min_python: tuple[int, int]  # the oldest Python every one of them supports
    boto3_version: str


@cache
def python_sdk() -> PythonSdk | None:
    """Lamina's boto3 and its dependencies, or None if one of them is missing."""
    dirs: list[str] = []
    paths: list[str] = []
    for name in SDK_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            log.warning("the Python runtime offers no boto3: %s is not installed", name)
            return None
        if spec.submodule_search_locations:
            path = next(iter(spec.submodule_search_locations))
        else:
            path = spec.origin
        paths.append(path)
        parent = os.path.dirname(path)
        if parent not in dirs:
            dirs.append(parent)
    return PythonSdk(tuple(dirs), tuple(paths), _min_python(), importlib.metadata.version("boto3"))


def _min_python() -> tuple[int, int]:
    oldest = (3, 0)
    for dist in _SDK_DISTRIBUTIONS:
        try:
            requires = importlib.metadata.metadata(dist)["Requires-Python"] or ""
        except importlib.metadata.PackageNotFoundError:
            continue
        m = re.search(r">=\s*(\d+)\.(\d+)", requires)
        if m is not None:
            oldest = max(oldest, (int(m.group(1)), int(m.group(2))))
    return oldest


def sdk_for(version: str) -> PythonSdk | None:
    """The SDK, if it supports Python `version` ("3.12")."""
    sdk = python_sdk()
    major, _, minor = version.partition(".")
    if sdk is None or (int(major), int(minor)) < sdk.min_python:
        return None
    return sdk


_compiled: set[str] = set()
_compiled_lock = threading.Lock()


def precompile(interpreter: str, sdk: PythonSdk) -> None:
    """Write the SDK's bytecode for `interpreter`, once per server, in the background.

    Best effort: where Lamina's install is not writable, imports stay correct, only slower."""
    with _compiled_lock:
        if interpreter in _compiled:
            return
        _compiled.add(interpreter)
    argv = [interpreter, "-I", "-m", "compileall", "-q", *sdk.paths]

    def run() -> None:
        try:
            subprocess.run(argv, capture_output=True, timeout=600, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("could not precompile the SDK for %s: %s", interpreter, exc)

    threading.Thread(target=run, name="lamina-sdk-compile", daemon=True).start()

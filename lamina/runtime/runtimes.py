"""Which Lambda runtime ids this host can run, and the command that starts each.

Python ids map to an interpreter of that exact version found on the host (the one running
Lamina counts); `provided.*` runs the package's own executable `bootstrap`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lamina.runtime.spec import EnvironmentSpec

BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap" / "python"
PYTHON_BOOTSTRAP = BOOTSTRAP_DIR / "bootstrap.py"

PYTHON_IDS = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14", "python3.15")
PROVIDED_IDS = ("provided.al2023", "provided.al2")
NODE_IDS = ("nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x", "nodejs26.x")
OTHER_IDS = (
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
)
DEPRECATED_IDS = (
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "go1.x",
    "provided",
    "ruby2.5",
    "ruby2.7",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
)


@dataclass(frozen=True, slots=True)
class Launch:
    argv: list[str]
    execution_env: str | None  # AWS_EXECUTION_ENV (absent for custom runtimes)
    bin_dir: str | None  # the runtime's own bin directory, first on PATH (/var/lang/bin on AWS)
    read_only_paths: tuple[str, ...] = ()  # host paths a sandbox must show the environment


@cache
def host_python() -> tuple[str, tuple[str, ...]]:
    """The bin directory of the plain interpreter Lamina runs on (its base, outside any venv),
    and what a sandbox must map for it to work. Custom runtimes find `python3` there first,
    so that a bootstrap can run a vendored awslambdaric built for this Python."""
    base = sys.base_prefix
    bin_dir = os.path.join(base, "bin")
    if not os.path.isfile(os.path.join(bin_dir, "python3")):
        bin_dir = os.path.dirname(os.path.realpath(sys.executable))
    paths = () if base.startswith("/usr") else (base,)
    return bin_dir, paths


@cache
def python_interpreter(runtime: str) -> str | None:
    """The interpreter that runs this Python runtime id here: one that starts and is of that
    version. Found on PATH or among pyenv's installed versions, and resolved to the real
    executable (a pyenv shim may exist and not start, and costs a shell per cold start)."""
    version = runtime.removeprefix("python")
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(
        (str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}")),
        reverse=True,
    )
    for candidate in candidates:
        if candidate and (real := _probe(candidate, version)) is not None:
            return real
    return None


def _probe(executable: str, version: str) -> str | None:
    """The real path of a Python of that version, if `executable` is one that starts."""
    try:
        proc = subprocess.run(
            [
                executable,
                "-I",
                "-c",
                "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    major, _, rest = proc.stdout.strip().partition(" ")
    minor, _, real = rest.partition(" ")
    if proc.returncode != 0 or f"{major}.{minor}" != version or not os.path.isabs(real):
        return None
    return real


@cache
def catalog() -> dict[str, str | None]:
    """Every runtime id Lamina knows -> None when runnable here, else why not."""
    out: dict[str, str | None] = {}
    for rid in PYTHON_IDS:
        out[rid] = (
            None
            if python_interpreter(rid)
            else (f"no {rid} interpreter found (install {rid} and put it on PATH)")
        )
    for rid in PROVIDED_IDS:
        out[rid] = None
    for rid in NODE_IDS:
        out[rid] = "Node.js runtimes are not available in this version of Lamina"
    for rid in OTHER_IDS:
        out[rid] = "this runtime is not available in Lamina"
    for rid in DEPRECATED_IDS:
        out[rid] = "this runtime is deprecated by AWS Lambda"
    return out


def launch(spec: EnvironmentSpec) -> Launch:
    if spec.runtime.startswith("python"):
        interpreter = python_interpreter(spec.runtime)
        if interpreter is None:
            raise RuntimeError(catalog()[spec.runtime] or spec.runtime)
        return Launch(
            argv=[interpreter, "-I", str(PYTHON_BOOTSTRAP), spec.handler],
            execution_env=f"AWS_Lambda_{spec.runtime}",
            bin_dir=os.path.dirname(interpreter),
        )
    bin_dir, paths = host_python()
    bootstrap = spec.task_root / "bootstrap"
    if spec.opt_dir is not None and not os.path.lexists(bootstrap):
        bootstrap = spec.opt_dir / "bootstrap"  # a layer may bring the custom runtime
    return Launch(
        argv=[str(bootstrap)],
        execution_env=None,
        bin_dir=bin_dir,
        read_only_paths=paths,
    )

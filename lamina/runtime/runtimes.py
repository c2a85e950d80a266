"""Which Lambda runtime ids this host can run, and the command that starts each.

Python ids map to an interpreter of that exact version found on the host (the one running
Lamina counts), Node.js ids to a `node` of that major version; both run Lamina's own bootstrap
for the language. `provided.*` runs the package's own executable `bootstrap`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lamina.runtime import interpreters
from lamina.runtime.sdk import precompile, sdk_for
from lamina.runtime.spec import EnvironmentSpec

BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap" / "python"
PYTHON_BOOTSTRAP = BOOTSTRAP_DIR / "bootstrap.py"
NODE_BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap" / "node"
NODE_BOOTSTRAP = NODE_BOOTSTRAP_DIR / "index.js"

PYTHON_IDS = (
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "python3.15",
)
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
    runtime_dir: str = str(BOOTSTRAP_DIR)  # LAMBDA_RUNTIME_DIR: where the runtime's code lives


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
def host_node() -> tuple[str | None, tuple[str, ...]]:
    """The bin directory of the newest `node` found, if it is not one the PATH has anyway, and
    what a sandbox must map for it: a custom runtime's bootstrap can run a Node.js client
    (AWS's aws-lambda-ric) with it, as one can run awslambdaric with `python3`."""
    found = interpreters.node_interpreters()
    if not found:
        return None, ()
    node = found[max(found)][0]
    bin_dir = os.path.dirname(node)
    if bin_dir in ("/usr/bin", "/usr/local/bin", "/bin"):
        return None, ()
    prefix = os.path.dirname(bin_dir)
    return bin_dir, (() if prefix.startswith("/usr/") else (prefix,))


def python_interpreter(runtime: str) -> str | None:
    """The interpreter that runs this Python runtime id here, or None."""
    return interpreters.python_interpreter(runtime.removeprefix("python"))


def node_interpreter(runtime: str) -> str | None:
    """The `node` that runs this Node.js runtime id ("nodejs20.x") here, or None."""
    major = runtime.removeprefix("nodejs").removesuffix(".x")
    if not major.isdigit():
        return None
    found = interpreters.node_interpreters().get(int(major))
    return found[0] if found else None


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
    nodes = interpreters.node_interpreters()
    have = ", ".join(f"{version} ({path})" for path, version in nodes.values()) or "none"
    for rid in NODE_IDS:
        major = rid.removeprefix("nodejs").removesuffix(".x")
        out[rid] = (
            None
            if node_interpreter(rid)
            else (
                f"no Node.js {major} found (install Node.js {major} and put its `node` on PATH; "
                f"Node.js found here: {have})"
            )
        )
    for rid in OTHER_IDS:
        out[rid] = "this runtime is not available in Lamina"
    for rid in DEPRECATED_IDS:
        out[rid] = "this runtime is deprecated by AWS Lambda"
    return out


def notes() -> dict[str, str]:
    """What differs from Lambda for a runnable runtime id here (for `lamina doctor`)."""
    out: dict[str, str] = {}
    for rid in PYTHON_IDS:
        interpreter = python_interpreter(rid)
        if interpreter is None:
            continue
        version = rid.removeprefix("python")
        sdk = sdk_for(version)
        out[rid] = interpreter + (
            f", boto3 {sdk.boto3_version}"
            if sdk is not None
            else ", no boto3 (Lamina's needs a newer Python: package your own)"
        )
    for rid in NODE_IDS:
        node = node_interpreter(rid)
        if node is not None:
            out[rid] = f"{node}, no AWS SDK for JavaScript (package your own)"
    for rid in PROVIDED_IDS:
        out[rid] = "runs the package's executable `bootstrap`"
    return out


def launch(spec: EnvironmentSpec) -> Launch:
    if spec.runtime.startswith("python"):
        return _exec_wrapper(spec, _python(spec))
    if spec.runtime.startswith("nodejs"):
        return _exec_wrapper(spec, _node(spec))
    bin_dir, paths = host_python()
    bootstrap = spec.task_root / "bootstrap"
    if spec.opt_dir is not None and not os.path.lexists(bootstrap):
        bootstrap = spec.opt_dir / "bootstrap"  # a layer may bring the custom runtime
    node_dir, node_paths = host_node()
    if node_dir and node_dir != bin_dir:
        bin_dir = f"{bin_dir}:{node_dir}"
    return Launch(
        argv=[str(bootstrap)],
        execution_env=None,
        bin_dir=bin_dir,
        read_only_paths=paths + node_paths,
    )


def _python(spec: EnvironmentSpec) -> Launch:
    interpreter = python_interpreter(spec.runtime)
    if interpreter is None:
        raise RuntimeError(catalog().get(spec.runtime) or spec.runtime)
    # -S: no `site`, which costs more than the rest of the interpreter's start (the .pth files of
    # the interpreter's site-packages: 37 of 48 ms here, loaded) and would offer the function
    # that installation's packages (Lamina's own, for its interpreter); the bootstrap sets the
    # path as Lambda's runtime does, with the SDK found on demand.
    argv = [interpreter, "-I", "-S", str(PYTHON_BOOTSTRAP), spec.handler]
    sdk = sdk_for(spec.runtime.removeprefix("python"))
    paths: tuple[str, ...] = ()
    if sdk is not None:
        argv.append(os.pathsep.join(sdk.search_dirs))
        paths = sdk.paths
        if interpreter != sys.executable:
            precompile(interpreter, sdk)
    return Launch(
        argv=argv,
        execution_env=f"AWS_Lambda_{spec.runtime}",
        bin_dir=os.path.dirname(interpreter),
        read_only_paths=paths,
    )


def _node(spec: EnvironmentSpec) -> Launch:
    node = node_interpreter(spec.runtime)
    if node is None:
        raise RuntimeError(catalog().get(spec.runtime) or spec.runtime)
    # As Lambda's Node.js bootstrap does: V8's heap sized from the function's memory, so that a
    # function that allocates too much gets a JavaScript heap error before the cgroup kills it.
    semi_space_mb = max(1, min(spec.memory_mb // 50, 64))
    old_space_mb = max(16, spec.memory_mb - spec.memory_mb // 25 - 3 * semi_space_mb)
    return Launch(
        argv=[
            node,
            "--expose-gc",
            "--max-http-header-size=81920",
            f"--max-semi-space-size={semi_space_mb}",
            f"--max-old-space-size={old_space_mb}",
            str(NODE_BOOTSTRAP),
            spec.handler,
        ],
        execution_env=f"AWS_Lambda_{spec.runtime}",
        bin_dir=os.path.dirname(node),
        runtime_dir=str(NODE_BOOTSTRAP_DIR),
    )


def _exec_wrapper(spec: EnvironmentSpec, how: Launch) -> Launch:
    """AWS_LAMBDA_EXEC_WRAPPER, as Lambda's managed runtimes honour it: the runtime's command is
    run as the arguments of that executable (a script from the package or a layer, which sets
    things up and execs "$@"). Its path is given as the environment sees it, /var/task/... or
    /opt/...; it is started by its host path, which a sandbox with its own view maps back."""
    wrapper = spec.variables.get("AWS_LAMBDA_EXEC_WRAPPER")
    if not wrapper:
        return how
    host = wrapper
    if wrapper.startswith("/var/task/"):
        host = str(spec.task_root / wrapper.removeprefix("/var/task/"))
    elif wrapper.startswith("/opt/") and spec.opt_dir is not None:
        host = str(spec.opt_dir / wrapper.removeprefix("/opt/"))
    # the interpreter is no longer argv[0]: name the installations a sandbox must map (a venv's
    # and the one its link leads to)
    prefixes = {
        os.path.dirname(os.path.dirname(p)) for p in (how.argv[0], os.path.realpath(how.argv[0]))
    }
    extra = tuple(
        p for p in sorted(prefixes) if p not in ("", "/", "/usr") and not p.startswith("/usr/")
    )
    return Launch(
        argv=[host, *how.argv],
        execution_env=how.execution_env,
        bin_dir=how.bin_dir,
        read_only_paths=how.read_only_paths + extra,
        runtime_dir=how.runtime_dir,
    )

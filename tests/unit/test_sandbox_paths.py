"""Which host paths the Linux sandbox maps for a runtime (never the data dir, never a top dir)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

from lamina.sandbox import SandboxSpec
from lamina.sandbox.linux import LinuxSandbox


def paths(argv: list[str], task_root: Path, hidden: list[Path]) -> list[str]:
    fake = SimpleNamespace(hidden=hidden)
    spec = SandboxSpec(argv=argv, env={}, cwd=task_root, output_fd=1, task_root=task_root)
    return LinuxSandbox._runtime_paths(fake, argv, spec, str(task_root))  # type: ignore[arg-type]


def test_python_runtime_maps_its_prefix_and_bootstrap(tmp_path: Path) -> None:
    bootstrap = tmp_path / "runtime" / "bootstrap.py"
    bootstrap.parent.mkdir()
    bootstrap.write_text("")
    got = paths([sys.executable, "-I", str(bootstrap)], tmp_path / "code", [tmp_path / "data"])
    assert str(bootstrap.parent) in got
    assert all(not p.startswith("/usr/") and len(Path(p).parts) >= 3 for p in got)


def test_custom_runtime_maps_nothing_more(tmp_path: Path) -> None:
    code = tmp_path / "data" / "code" / "abc"
    code.mkdir(parents=True)
    (code / "bootstrap").write_text("")
    assert paths([str(code / "bootstrap")], code, [tmp_path / "data"]) == []


def test_nothing_inside_or_around_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runtime = data / "runtimes" / "bin" / "python"
    runtime.parent.mkdir(parents=True)
    runtime.write_text("")
    assert paths([str(runtime)], tmp_path / "code", [data]) == []

"""How a runtime finds its layers: the variables, and the sandbox's view of the merged tree."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from lamina.runtime.layers_env import layer_variables
from lamina.sandbox import SandboxSpec
from lamina.sandbox.linux import LinuxSandbox, _to_view


def test_the_runtime_is_told_where_the_layers_are() -> None:
    assert layer_variables("/data/code/opt/x", layered=True) == {
        "_LAMINA_OPT_DIR": "/data/code/opt/x"
    }
    assert layer_variables("/opt", layered=False) == {}


def test_the_merged_tree_is_seen_at_opt() -> None:
    task, opt = "/data/code/abc", "/data/code/opt/def"
    assert _to_view(f"{opt}/bin:/usr/bin", task, opt) == "/opt/bin:/usr/bin"
    assert _to_view(f"{task}/lib:{opt}/lib", task, opt) == "/var/task/lib:/opt/lib"
    assert _to_view(f"{task}/x", task, None) == "/var/task/x"


def test_a_bootstrap_from_a_layer_is_not_mapped_again(tmp_path: Path) -> None:
    code, opt = tmp_path / "data" / "code" / "abc", tmp_path / "data" / "code" / "opt" / "def"
    for d in (code, opt):
        d.mkdir(parents=True)
    (opt / "bootstrap").write_text("")
    fake = SimpleNamespace(hidden=[])  # not even the data dir rule is needed for it
    argv = [str(opt / "bootstrap")]
    spec = SandboxSpec(argv=argv, env={}, cwd=code, output_fd=1, task_root=code, opt_dir=opt)
    got = LinuxSandbox._runtime_paths(fake, argv, spec, str(code), str(opt))  # type: ignore[arg-type]
    assert got == []

"""Process isolation and limits. Knows nothing of Lambda: it starts a command tree and stops it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from lamina.sandbox.process import ProcessSandbox
from lamina.sandbox.protocol import Sandbox, SandboxedProcess, SandboxSpec

MODES = ("auto", "linux", "unshare", "process")


def choose(mode: str, state_dir: Path, *, hidden: Sequence[Path] = ()) -> Sandbox:
    """`process`: no isolation. `linux`: the Linux sandbox, or an error if the host has none.
    `auto`: the Linux sandbox with the strongest mechanisms found, else a plain process.
    `unshare`: the Linux sandbox without bubblewrap (the degraded path, for tests and hosts
    where bubblewrap misbehaves)."""
    if mode == "process":
        return ProcessSandbox()
    if sys.platform == "linux":
        from lamina.sandbox.host import probe
        from lamina.sandbox.linux import LinuxSandbox

        if mode == "unshare":
            return LinuxSandbox(state_dir, hidden=hidden, launcher="unshare")
        if probe().launcher != "none":
            return LinuxSandbox(state_dir, hidden=hidden)
        if mode == "linux":
            raise RuntimeError(f"no Linux sandbox on this host: {probe().launcher_problem}")
    elif mode == "linux":
        raise RuntimeError(f"the Linux sandbox does not run on {sys.platform}")
    return ProcessSandbox()


__all__ = ["MODES", "ProcessSandbox", "Sandbox", "SandboxSpec", "SandboxedProcess", "choose"]

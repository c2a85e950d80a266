"""What a sandbox offers the runtime layer: start a process tree under limits, watch it, end it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    output_fd: int  # stdout and stderr of the tree go here
    memory_mb: int = 128
    tmp_mb: int = 512
    read_only_paths: Sequence[Path] = field(default_factory=tuple)
    # The function's code: a sandbox with its own filesystem view maps it read-only at
    # /var/task and rewrites this path in argv and env; None: cwd is the task root.
    task_root: Path | None = None
    # The layers' merged tree: mapped read-only at /opt (and rewritten in argv and env) by a
    # sandbox with its own filesystem view; None: an empty /opt.
    opt_dir: Path | None = None
    network: str = "host"  # host | isolated (an empty network namespace)
    pass_fds: Sequence[int] = ()  # descriptors the process inherits (the caller keeps its copies)
    # A snapshot-start template: its forks give themselves their own namespaces and /tmp, so its
    # filter lets it create a user namespace and mount in it (see fork_isolation()).
    template: bool = False


class SandboxedProcess(Protocol):
    @property
    def pid(self) -> int: ...

    def exit_fd(self) -> int:
        """A descriptor that becomes readable when the process exits (a pidfd)."""
        ...

    def poll(self) -> int | None:
        """The exit status (negative: killed by that signal), or None while running."""
        ...

    def kill(self) -> None:
        """Kill the whole tree, at once. Safe to call more than once."""
        ...

    def peak_memory_mb(self) -> int: ...

    def oom_killed(self) -> bool:
        """True once the memory limit killed something in the tree."""
        ...

    def freeze(self) -> None:
        """Stop every process of the tree until thaw() (between invocations)."""
        ...

    def thaw(self) -> None: ...


class AdoptedTree(Protocol):
    """A process tree forked by a template and placed under its own limits by the sandbox."""

    def kill(self) -> None: ...

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def peak_memory_mb(self) -> int: ...

    def oom_killed(self) -> bool: ...


class Sandbox(Protocol):
    name: str

    def spawn(self, spec: SandboxSpec) -> SandboxedProcess: ...

    def adopt(self, pid: int, *, memory_mb: int) -> AdoptedTree:
        """Put a process that a template forked (host pid) under its own environment's limits,
        before it forks anything: its own cgroup here, so memory, pids, CPU, freeze and kill."""
        ...

    def fork_isolation(self) -> dict[str, str]:
        """What a template's fork does for itself: `_LAMINA_ISOLATE` (userns | ns | empty) and
        `_LAMINA_SECCOMP` (the environment's filter, hex), as variables of the template."""
        ...

    def guarantees(self) -> dict[str, str]:
        """What holds and what does not, for start-up output and `lamina doctor`."""
        ...

    def close(self) -> None:
        """Release what outlives the environments (cgroups, mounts); after every kill."""
        ...

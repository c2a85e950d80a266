"""The weakest sandbox: a plain process in its own session (process group), no namespaces.

It needs nothing from the host and runs anywhere; it isolates nothing. Stronger sandboxes
(namespaces, cgroups, seccomp) implement the same protocol.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from lamina.sandbox.protocol import SandboxSpec


class PlainProcess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._pidfd = os.pidfd_open(popen.pid)
        self._peak_kb = 0

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exit_fd(self) -> int:
        return self._pidfd

    def poll(self) -> int | None:
        code = self._popen.poll()
        if code is not None and self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def peak_memory_mb(self) -> int:
        """Peak RSS of the runtime process (VmHWM), the closest thing without a cgroup."""
        try:
            with open(f"/proc/{self._popen.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        self._peak_kb = max(self._peak_kb, int(line.split()[1]))
                        break
        except (OSError, ValueError):
            pass
        return (self._peak_kb + 1023) // 1024


class ProcessSandbox:
    name = "process"

    def spawn(self, spec: SandboxSpec) -> PlainProcess:
        popen = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=spec.output_fd,
            stderr=spec.output_fd,
            start_new_session=True,
            close_fds=True,
        )
        return PlainProcess(popen)

    def guarantees(self) -> dict[str, str]:
        return {
            "filesystem isolation": "not enforced (plain process)",
            "process isolation": "not enforced (own process group only)",
            "memory limit": "not enforced (no cgroup)",
            "timeout kill": "process group (a daemonised grandchild can escape)",
        }

"""The weakest sandbox: a plain process in its own session (process group), no namespaces.

It needs nothing from the host and runs anywhere; it isolates nothing. Stronger sandboxes
(namespaces, cgroups, seccomp) implement the same protocol.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import weakref

from lamina.sandbox.protocol import SandboxSpec


def exit_descriptor(popen: subprocess.Popen[bytes]) -> int:
    """A descriptor that becomes readable when the process exits: a pidfd on Linux >= 5.3,
    else the read end of a pipe that a waiting thread writes to (macOS, old kernels)."""
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            return os.pidfd_open(popen.pid)
    read_fd, write_fd = os.pipe()

    def wait() -> None:
        popen.wait()
        os.write(write_fd, b"x")
        os.close(write_fd)

    threading.Thread(target=wait, name=f"wait-{popen.pid}", daemon=True).start()
    return read_fd


class PlainProcess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._pidfd = exit_descriptor(popen)
        # closed with this object, not on exit: the caller's event loop may still watch it
        weakref.finalize(self, os.close, self._pidfd)
        self._peak_kb = 0
        self._stopped = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exit_fd(self) -> int:
        return self._pidfd

    def poll(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
            if self._stopped:
                os.killpg(self._popen.pid, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def oom_killed(self) -> bool:
        return False  # no memory limit here

    def freeze(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGSTOP)
            self._stopped = True

    def thaw(self) -> None:
        if self._stopped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGCONT)
            self._stopped = False

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


class SessionTree:
    """A forked environment in its own session (it calls setsid): signals reach the whole tree."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stopped = False
        self._peak_kb = 0
        self._runtime: int | None = None

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self._stopped:
            self._signal(signal.SIGCONT)

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)
        self._stopped = True

    def thaw(self) -> None:
        if self._stopped:
            self._signal(signal.SIGCONT)
            self._stopped = False

    def oom_killed(self) -> bool:
        return False

    def peak_memory_mb(self) -> int:
        """VmHWM of the runtime (the keeper's child; pages shared with the template count)."""
        if self._runtime is None:
            children = f"/proc/{self.pid}/task/{self.pid}/children"
            with contextlib.suppress(OSError, ValueError, IndexError), open(children, "rb") as f:
                self._runtime = int(f.read().split()[0])
        pid = self._runtime or self.pid
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    self._peak_kb = max(self._peak_kb, int(line.split()[1]))
                    break
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
            pass_fds=tuple(spec.pass_fds),
        )
        return PlainProcess(popen)

    def adopt(self, pid: int, *, memory_mb: int) -> SessionTree:
        return SessionTree(pid)

    def fork_isolation(self) -> dict[str, str]:
        return {}  # a fork shares everything with its template, as plain processes share the host

    def guarantees(self) -> dict[str, str]:
        return {
            "launcher": "none (--sandbox process): environments are plain processes",
            "filesystem view": "not enforced (plain process)",
            "process isolation": "not enforced (own process group only)",
            "unprivileged user": "not enforced (runs as Lamina's user)",
            "seccomp filter": "not enforced (plain process)",
            "memory limit": "not enforced (no cgroup)",
            "pids limit": "not enforced (no cgroup)",
            "cpu share": "not enforced (no cgroup)",
            "freeze between invocations": "best effort (SIGSTOP/SIGCONT of the process group)",
            "ephemeral storage": "not enforced (/tmp is the host's)",
            "timeout kill": "process group only (a daemonised grandchild can escape)",
            "isolated network mode": "not available (plain process)",
        }

    def close(self) -> None:
        pass

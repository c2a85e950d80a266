"""Snapshot starts: one initialised runtime per function version, forked into new environments.

A template is the function's runtime started in its sandbox like an environment, with its
handler imported (the Init phase, done once), that never serves an invocation: it forks. Each
fork is adopted by the sandbox (its own cgroup: memory, pids, CPU, freeze, kill) before it forks
anything, then gives itself its own namespaces and /tmp where the sandbox has them, and connects
to its own Runtime API listener (the other half lives in bootstrap/python/_lamina_fork.py).

The channel per environment is a SOCK_SEQPACKET pair: the fork says `hello` at once (the kernel
attaches its pid, translated into Lamina's PID namespace), Lamina answers `go` once the
environment's cgroups hold it; the fork isolates itself (`fail <why>` if it cannot), and the
environment's first process (pid 1 of its PID namespace where it has one) says `hello` again,
forks the runtime, and at the end sends `exit <code>` with how the runtime ended.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import select
import socket
import struct
import time
import weakref
from pathlib import Path

from lamina.runtime.environment import runtime_variables
from lamina.runtime.runtimes import launch
from lamina.runtime.spec import EnvironmentSpec
from lamina.sandbox import Sandbox, SandboxedProcess, SandboxSpec
from lamina.sandbox.protocol import AdoptedTree

log = logging.getLogger(__name__)

_UCRED = struct.Struct("iII")
TEMPLATE_HEADROOM_MB = 512
_ADOPTERS = concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="adopt")


class TemplateUnavailable(Exception):
    """No fork this time (why is the message): start the environment plainly. `permanent`: this
    function version cannot be forked at all (until its configuration changes)."""

    def __init__(self, why: str, *, permanent: bool = False) -> None:
        super().__init__(why)
        self.permanent = permanent


async def _recv(
    sock: socket.socket, ancillary: int = 0
) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[bytes, list[tuple[int, int, bytes]]]] = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        try:
            msg, anc, _flags, _addr = sock.recvmsg(4096, ancillary)
        except BlockingIOError:
            return
        except OSError as exc:
            loop.remove_reader(fd)
            if not fut.done():
                fut.set_exception(exc)
            return
        loop.remove_reader(fd)
        if not fut.done():
            fut.set_result((msg, anc))

    loop.add_reader(fd, ready)
    try:
        return await fut
    finally:
        loop.remove_reader(fd)


class Template:
    def __init__(
        self,
        spec: EnvironmentSpec,
        sandbox: Sandbox,
        *,
        init_timeout_s: float,
    ) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.init_timeout_s = init_timeout_s
        self.init_ms = 0.0  # the template's own Init (interpreter, bootstrap, handler import)
        self.init_lines: list[tuple[int, str]] = []  # its output, shown in each fork's log
        self.forks = 0
        self.last_used = time.monotonic()
        self._proc: SandboxedProcess | None = None
        self._ctl: socket.socket | None = None
        self._out_fd = -1
        self.closed = False
        self.retiring = False  # no more forks; closed when its last environment is gone

    @property
    def alive(self) -> bool:
        return not self.closed and self._proc is not None and self._proc.poll() is None

    async def start(self) -> None:
        how = launch(self.spec)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._out_fd = read_fd
        ours.setblocking(False)
        self._ctl = ours
        # Placeholders each fork overwrites in its exec'd environment block (/proc/PID/environ)
        env = runtime_variables(
            self.spec, "-" * 120, "-" * 48, how.execution_env, how.bin_dir, how.runtime_dir
        )
        env.update(self.sandbox.fork_isolation())
        env["_LAMINA_TEMPLATE_FD"] = str(theirs.fileno())
        started = time.perf_counter()
        try:
            self._proc = self.sandbox.spawn(
                SandboxSpec(
                    argv=how.argv,
                    read_only_paths=tuple(Path(p) for p in how.read_only_paths),
                    env=env,
                    cwd=self.spec.task_root,
                    output_fd=write_fd,
                    # Forks are charged here until adopted (their page tables for good).
                    memory_mb=self.spec.memory_mb + TEMPLATE_HEADROOM_MB,
                    tmp_mb=self.spec.ephemeral_mb,
                    task_root=self.spec.task_root,
                    opt_dir=self.spec.opt_dir,
                    pass_fds=(theirs.fileno(),),
                    template=True,
                )
            )
        except OSError as exc:
            self.close()
            raise TemplateUnavailable(f"template failed to start: {exc}", permanent=True) from exc
        finally:
            theirs.close()
            os.close(write_fd)
        try:
            async with asyncio.timeout(self.init_timeout_s):
                msg, _ = await _recv(ours)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise TemplateUnavailable(
                f"template did not become ready: {exc!r}", permanent=True
            ) from exc
        self._read_output()
        self.init_ms = (time.perf_counter() - started) * 1000
        last = self.init_lines[-1][1] if self.init_lines else "no output"
        doc = json.loads(msg) if msg else {"refused": f"template exited during Init ({last})"}
        if not doc.get("ready"):
            self.close()
            raise TemplateUnavailable(str(doc.get("refused")), permanent=True)

    def _read_output(self) -> None:
        chunks = []
        while True:
            try:
                data = os.read(self._out_fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            chunks.append(data)
        now = int(time.time() * 1000)
        text = b"".join(chunks).decode("utf-8", "replace")
        self.init_lines.extend((now, line) for line in text.splitlines())

    async def fork(
        self, *, env_id: str, output_fd: int, runtime_api: str, log_stream: str, init_type: str
    ) -> ForkedProcess:
        """A new environment's process tree, adopted by the sandbox and isolated, not yet
        connected (it connects to `runtime_api` on its own)."""
        ctl = self._ctl
        if ctl is None or self.closed:
            raise TemplateUnavailable("template closed")
        self.last_used = time.monotonic()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setblocking(False)
        request = json.dumps(
            {
                "id": env_id,
                "api": runtime_api,
                "log_stream": log_stream,
                "init_type": init_type,
                "tmp_mb": self.spec.ephemeral_mb,
            }
        ).encode()
        tree: AdoptedTree | None = None
        loop = asyncio.get_running_loop()
        try:
            try:
                ctl.sendmsg(
                    [request],
                    [
                        (
                            socket.SOL_SOCKET,
                            socket.SCM_RIGHTS,
                            array.array("i", [theirs.fileno(), output_fd]),
                        )
                    ],
                )
            finally:
                theirs.close()
            async with asyncio.timeout(self.init_timeout_s):
                # 1. The fork, before it does anything, joins the environment's cgroups: what it
                # touches from then on is charged there, not to the template.
                first = await self._hello(ours)
                # Off the event loop: moving a process into a cgroup v1 hierarchy waits for an
                # RCU grace period (milliseconds); concurrent moves share them (bursts).
                tree = await loop.run_in_executor(
                    _ADOPTERS,
                    functools.partial(self.sandbox.adopt, first, memory_mb=self.spec.memory_mb),
                )
                ours.send(b"go")
                # 2. The environment's first process (pid 1 of its own PID namespace where it
                # has one) says hello in turn: that is the process Lamina watches.
                pid = await self._hello(ours)
        except BaseException:
            if tree is not None:
                tree.kill()
            ours.close()
            raise
        self.forks += 1
        return ForkedProcess(pid, tree, ours)

    async def _hello(self, chan: socket.socket) -> int:
        msg, anc = await _recv(chan, socket.CMSG_SPACE(_UCRED.size))
        if msg.startswith(b"fail "):
            raise TemplateUnavailable(
                f"forked environment not isolated: {msg[5:].decode(errors='replace')}",
                permanent=True,
            )
        pid = next(
            (
                _UCRED.unpack(data[: _UCRED.size])[0]
                for level, kind, data in anc
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
            ),
            0,
        )
        if msg != b"hello" or pid <= 0:
            raise TemplateUnavailable("the template's fork did not report (template gone?)")
        return pid

    def forget(self, env_id: str) -> None:
        """The environment is gone: the template removes its /tmp directory."""
        if self._ctl is not None and not self.closed:
            with contextlib.suppress(OSError):
                self._ctl.send(json.dumps({"forget": env_id}).encode())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._proc is not None:
            self._proc.kill()
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._out_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._out_fd)
            self._out_fd = -1


class ForkedProcess:
    """A forked environment as the runtime layer sees any sandboxed process (SandboxedProcess)."""

    def __init__(self, pid: int, tree: AdoptedTree, channel: socket.socket) -> None:
        self._pid = pid
        self._tree = tree
        self._channel = channel
        self._pidfd = os.pidfd_open(pid)
        # closed with this object, not on exit: the caller's event loop may still watch it
        weakref.finalize(self, _close_quietly, self._pidfd)
        weakref.finalize(self, channel.close)
        self._code: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def exit_fd(self) -> int:
        return self._pidfd

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        if not select.select([self._pidfd], [], [], 0)[0]:
            return None
        code = -9  # killed before it could say how the runtime ended
        with contextlib.suppress(OSError):
            msg = self._channel.recv(64)
            if msg.startswith(b"exit "):
                code = int(msg[5:])
        if self._tree.oom_killed():
            code = -9
        self._code = code
        return code

    def kill(self) -> None:
        self._tree.kill()

    def peak_memory_mb(self) -> int:
        return self._tree.peak_memory_mb()

    def oom_killed(self) -> bool:
        return self._tree.oom_killed()

    def freeze(self) -> None:
        self._tree.freeze()

    def thaw(self) -> None:
        self._tree.thaw()


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)

"""The Linux sandbox: namespaces, a private filesystem view, cgroup limits, seccomp, a dropped uid.

Each environment is started as
    sh -c <join the environment's cgroups> -- bwrap <view, namespaces, seccomp> -- setpriv <uid> -- ARGV
so that the limits hold before any function code runs (the tiny shell writes its own pid into
the groups, then execs). bubblewrap builds the view: the host's /usr and a few /etc files
read-only, the code read-only at /var/task, the runtime read-only at its own path, a private
/tmp, fresh /proc and /dev, a PID namespace (its init dies with Lamina: --die-with-parent), IPC
and UTS namespaces, optionally an empty network namespace. As root, bubblewrap runs without a
user namespace and `setpriv` (util-linux) drops to an unprivileged uid/gid with no capabilities
and no_new_privs; without root, bubblewrap's user namespace keeps the caller's uid.

Without bubblewrap, util-linux `unshare` gives the PID/IPC/UTS/network namespaces (and `setpriv`
the uid) but no filesystem view and no seccomp filter; `guarantees()` says exactly that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from lamina.sandbox import cgroups, scratch, seccomp
from lamina.sandbox.bridge import Bridge
from lamina.sandbox.protocol import SandboxSpec

log = logging.getLogger(__name__)

TASK_ROOT = "/var/task"
OPT_DIR = "/opt"
RELAY = Path(__file__).with_name("relay.py")
RELAY_PORT = 9001
RUNTIME_SOCKET = "/run/lamina/runtime.sock"
SANDBOX_UID = 990

# Joins every cgroup given before `--`, then execs the rest (dash starts in about a millisecond).
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'

_ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "passwd",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
)


class Janitor:
    """Retries clean-ups that must wait for processes to die (cgroup rmdir, unmount)."""

    def __init__(self) -> None:
        self._jobs: list[tuple[float, Callable[[], bool]]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, job: Callable[[], bool]) -> None:
        if _attempt(job):
            return
        with self._cond:
            self._jobs.append((time.monotonic() + 60.0, job))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-janitor", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                jobs, self._jobs = self._jobs, []
            now = time.monotonic()
            left = [(d, j) for d, j in jobs if not _attempt(j) and d > now]
            with self._cond:
                self._jobs.extend(left)
            time.sleep(0.05)

    def drain(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                jobs, self._jobs = self._jobs, []
            left = [(d, j) for d, j in jobs if not _attempt(j)]
            with self._cond:
                self._jobs.extend(left)
                if not self._jobs:
                    return
            time.sleep(0.02)


def _attempt(job: Callable[[], bool]) -> bool:
    try:
        return job()
    except Exception:
        log.exception("sandbox clean-up failed")
        return True


class LinuxProcess:
    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        group: cgroups.EnvironmentGroup | None,
        cleanups: list[Callable[[], bool]],
        janitor: Janitor,
        *,
        shell_codes: bool,
        on_running: list[Callable[[], None]] | None = None,
    ) -> None:
        self._popen = popen
        self._on_running = on_running or []  # once the environment has answered: it is set up
        self._group = group
        self._cleanups = cleanups
        self._janitor = janitor
        self._shell_codes = shell_codes  # bwrap reports a signal death as 128+N
        self._pidfd = os.pidfd_open(popen.pid)
        # open as long as this object lives: the caller's event loop may still watch it
        weakref.finalize(self, _close_quietly, self._pidfd)
        self._peak = 0
        self._oom = False
        self._stopped = False  # SIGSTOP fallback in use
        self._dead = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exit_fd(self) -> int:
        return self._pidfd

    def poll(self) -> int | None:
        code = self._popen.poll()
        if code is None:
            return None
        self._sample()
        self._check_oom()
        if self._oom:
            return -signal.SIGKILL
        if self._shell_codes and 128 < code < 128 + 65:
            return -(code - 128)
        return code

    def kill(self) -> None:
        if self._dead:
            return
        self._dead = True
        self._sample()
        self._check_oom()
        if self._group is not None:
            self._group.kill()
        if self._stopped:
            self._signal_tree(signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()
        popen = self._popen

        def reap() -> bool:
            return popen.poll() is not None

        jobs: list[Callable[[], bool]] = [reap]
        if self._group is not None:
            jobs.append(self._group.remove)
        jobs.extend(self._cleanups)

        def release() -> bool:
            for job in jobs:
                if not job():
                    return False
            jobs.clear()
            return True

        self._janitor.add(release)

    def _sample(self) -> None:
        if self._group is None or (self._dead and self._peak):
            return
        peak = self._group.peak_memory_bytes()
        if peak:
            self._peak = max(self._peak, peak)

    def peak_memory_mb(self) -> int:
        """Read after every invocation for REPORT: one pread of the group's peak counter."""
        if not self._dead:
            self._sample()
        if self._peak:
            return (self._peak + cgroups.MB - 1) // cgroups.MB
        return _tree_hwm_mb(self._popen.pid)

    def _check_oom(self) -> None:
        """The group's oom_kill counter: read when the tree exits or is killed, not per call."""
        if not self._oom and self._group is not None and self._group.oom_kills() > 0:
            self._oom = True

    def oom_killed(self) -> bool:
        if not self._dead:
            self._sample()
            self._check_oom()
        return self._oom

    def freeze(self) -> None:
        if self._dead:
            return
        while self._on_running:
            self._on_running.pop()()
        if self._group is not None and self._group.layout.can_freeze:
            with contextlib.suppress(OSError):
                self._group.freeze()
                return
        self._signal_tree(signal.SIGSTOP)
        self._stopped = True

    def thaw(self) -> None:
        if self._dead:
            return
        if self._group is not None and self._group.layout.can_freeze:
            with contextlib.suppress(OSError):
                self._group.thaw()
                return
        if self._stopped:
            self._signal_tree(signal.SIGCONT)
            self._stopped = False

    def _signal_tree(self, sig: int) -> None:
        for pid in _descendants(self._popen.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, sig)


class GroupTree:
    """A forked environment under its own cgroup (from adopt): limits, freeze and kill by group."""

    def __init__(self, pid: int, group: cgroups.EnvironmentGroup | None, janitor: Janitor) -> None:
        self.pid = pid
        self._group = group
        self._janitor = janitor
        self._stopped = False
        self._dead = False
        self._peak = 0
        self._oom = False

    def kill(self) -> None:
        if self._dead:
            return
        self.peak_memory_mb()  # sampled while the group is still there
        self.oom_killed()
        self._dead = True
        if self._group is not None:
            self._group.kill()
            self._janitor.add(self._group.remove)
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
            if self._stopped:
                os.killpg(self.pid, signal.SIGCONT)

    def freeze(self) -> None:
        if self._dead:
            return
        if self._group is not None and self._group.layout.can_freeze:
            with contextlib.suppress(OSError):
                self._group.freeze()
                return
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGSTOP)
            self._stopped = True

    def thaw(self) -> None:
        if self._dead:
            return
        if self._group is not None and self._group.layout.can_freeze:
            with contextlib.suppress(OSError):
                self._group.thaw()
                return
        if self._stopped:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGCONT)
            self._stopped = False

    def peak_memory_mb(self) -> int:
        """The group's own peak: pages still shared with the template are charged to it."""
        if self._group is not None and not self._dead:
            peak = self._group.peak_memory_bytes()
            if peak:
                self._peak = max(self._peak, peak)
        return (self._peak + cgroups.MB - 1) // cgroups.MB

    def oom_killed(self) -> bool:
        if not self._oom and self._group is not None and not self._dead:
            self._oom = self._group.oom_kills() > 0
        return self._oom


def _template_share(memory_mb: int) -> cgroups.CpuShare:
    """A template's CPU: the whole host's share under contention, its own size's cap.

    Its Init is done once per function version while every new environment of it waits, and
    afterwards it only forks (Lamina's loop, no function code); with its function's share it lost
    to the host's other work, and in a burst its forks waited behind its own children (their
    groups together outweighed it about 20 to 1). The cap stays what its memory buys, so a heavy
    Init cannot take more of the host than before."""
    cpus = os.cpu_count() or 1
    return cgroups.CpuShare(100 * cpus, 1024 * cpus, cgroups.cpu_for_memory(memory_mb).max_vcpus)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _descendants(root: int) -> list[int]:
    """The root and every process below it (from /proc; no PID namespace is crossed)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _tree_hwm_mb(root: int) -> int:
    total = 0
    for pid in _descendants(root):
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    total = max(total, int(line.split()[1]))
    return (total + 1023) // 1024


class LinuxSandbox:
    """Strongest isolation the host allows; `guarantees()` lists what holds and what does not."""

    name = "linux"

    def __init__(
        self,
        state_dir: Path,
        *,
        hidden: Sequence[Path] = (),
        uid: int = SANDBOX_UID,
        gid: int = SANDBOX_UID,
        launcher: str | None = None,
    ) -> None:
        from lamina.sandbox.host import probe, probe_unshare

        self.host = probe()
        if launcher == "unshare" and self.host.launcher != "unshare":
            self.host = dataclasses.replace(
                self.host, launcher="unshare", launcher_problem="bubblewrap not used"
            )
            if why := probe_unshare(self.host):
                raise RuntimeError(f"util-linux unshare does not work here: {why}")
        self.state_dir = state_dir
        self.hidden = [Path(os.path.realpath(p)) for p in hidden]
        self.uid = uid if self.host.root else os.geteuid()
        self.gid = gid if self.host.root else os.getegid()
        self.janitor = Janitor()
        scratch.sweep(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o700)
        scratch.claim(state_dir)
        self.scratch = scratch.ScratchPool(state_dir, self.uid, self.gid)
        self.etc = _copy_etc(state_dir / "etc") if self.host.launcher == "bwrap" else None
        self.groups: cgroups.ServerGroups | None = None
        if self.host.layout.hierarchies:
            self.groups = cgroups.ServerGroups(self.host.layout)
        self.name = f"linux ({self.host.launcher})"

    def guarantees(self) -> dict[str, str]:
        return self.host.guarantees()

    def close(self) -> None:
        self.scratch.close()
        self.janitor.drain()
        if self.groups is not None:
            self.groups.remove()

    # -- spawning --------------------------------------------------------------------------------

    def spawn(self, spec: SandboxSpec) -> LinuxProcess:
        env_id = uuid.uuid4().hex[:16]
        cleanups: list[Callable[[], bool]] = []
        detach: list[Callable[[], None]] = []
        group: cgroups.EnvironmentGroup | None = None
        try:
            if self.groups is not None and self.groups.bases:
                group = cgroups.EnvironmentGroup(
                    self.groups, f"env-{env_id}", memory_mb=spec.memory_mb
                )
                if spec.template:
                    group.set_cpu_share(_template_share(spec.memory_mb))
            if self.host.launcher == "bwrap":
                argv, env, cwd, fds = self._bwrap(spec, env_id, cleanups, detach)
            else:
                argv, env, cwd, fds = self._unshare(spec)
            procs = group.procs_files() if group is not None else []
            try:
                popen = subprocess.Popen(
                    ["/bin/sh", "-c", _JOIN, "lamina-sandbox", *procs, "--", *argv],
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=spec.output_fd,
                    stderr=spec.output_fd,
                    start_new_session=True,
                    close_fds=True,
                    pass_fds=[*fds, *spec.pass_fds],
                )
            finally:
                for fd in fds:
                    os.close(fd)
        except BaseException:
            if group is not None:
                group.kill()
                self.janitor.add(group.remove)
            for job in cleanups:
                self.janitor.add(job)
            raise
        return LinuxProcess(
            popen,
            group,
            cleanups,
            self.janitor,
            shell_codes=self.host.launcher in ("bwrap", "unshare"),
            on_running=detach,
        )

    def adopt(self, pid: int, *, memory_mb: int) -> GroupTree:
        group: cgroups.EnvironmentGroup | None = None
        if self.groups is not None and self.groups.bases:
            group = cgroups.EnvironmentGroup(
                self.groups, f"env-{uuid.uuid4().hex[:16]}", memory_mb=memory_mb
            )
            try:
                for procs in group.procs_files():
                    Path(procs).write_text(str(pid))
            except OSError:
                group.kill()
                self.janitor.add(group.remove)
                raise
        return GroupTree(pid, group, self.janitor)

    def fork_isolation(self) -> dict[str, str]:
        host = self.host
        out = {"_LAMINA_ISOLATE": "userns" if host.launcher == "bwrap" else "ns"}
        if host.launcher == "bwrap" and host.seccomp_problem is None:
            out["_LAMINA_SECCOMP"] = seccomp.filter_bpf().hex()
        return out

    def _task_root(self, spec: SandboxSpec) -> str:
        return str(spec.task_root if spec.task_root is not None else spec.cwd)

    def _bwrap(
        self,
        spec: SandboxSpec,
        env_id: str,
        cleanups: list[Callable[[], bool]],
        detach: list[Callable[[], None]],
    ) -> tuple[list[str], dict[str, str], str, list[int]]:
        host = self.host
        task_root = self._task_root(spec)
        opt = str(spec.opt_dir) if spec.opt_dir is not None else None
        env = {k: _to_view(v, task_root, opt) for k, v in spec.env.items()}
        argv = [
            _to_view(a, task_root, opt) if a.startswith((task_root, opt or task_root)) else a
            for a in spec.argv
        ]
        isolated = spec.network == "isolated"
        args = [
            host.bwrap or "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "lamina",
        ]
        if isolated:
            args.append("--unshare-net")
        if not host.root:
            args += ["--unshare-user", "--uid", str(self.uid), "--gid", str(self.gid)]
            # a template's forks make their own user namespace (see fork_isolation)
            args += [] if spec.template else ["--disable-userns"]
            args += ["--cap-drop", "ALL"]
        view = _system_view(self.etc)
        mount_proc: list[str] = []
        if spec.template and host.root:
            # bubblewrap covers parts of the /proc it mounts, and a covered proc cannot be mounted
            # again in the forks' namespaces: the template mounts its own, as root, before setpriv.
            at = view.index("--proc")
            view[at : at + 2] = ["--dir", "/proc"]
            mount_proc = [
                "/bin/sh",
                "-c",
                'mount -t proc -o nosuid,nodev,noexec proc /proc && exec "$@"',
                "sh",
            ]
        args += view
        bound: list[str] = []
        made: set[str] = set()
        relay_argv: list[str] = []
        if isolated:
            relay_argv = [
                sys.executable,
                "-I",
                "-S",
                str(RELAY),
                RUNTIME_SOCKET,
                str(RELAY_PORT),
                "--",
            ]
        under_tmp: list[str] = []  # bound after the private /tmp, which would hide them
        for path in self._runtime_paths([*relay_argv, *spec.argv], spec, task_root, opt):
            if any(path == b or path.startswith(b + "/") for b in bound):
                continue
            bound.append(path)
            if path.startswith("/tmp/"):
                under_tmp.append(path)
            else:
                args += [*_parents(path, made), "--ro-bind", path, path]
        args += ["--ro-bind", task_root, TASK_ROOT]
        args += ["--ro-bind", opt, OPT_DIR] if opt is not None else ["--dir", OPT_DIR]
        args += ["--chdir", TASK_ROOT]
        env_dir = self.state_dir / env_id
        if host.scratch.kind == "ext4":
            disk = self.scratch.take(spec.tmp_mb)
            cleanups.append(disk.remove)
            detach.append(disk.detach)
            args += ["--bind", str(disk.mountpoint), "/tmp"]
        else:
            args += ["--perms", "1777", "--size", str(spec.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        # A runtime installed under /tmp (a checkout there, say) stays visible, read-only, inside
        # the environment's /tmp: the price of keeping it at the same path.
        for path in under_tmp:
            args += [*_parents(path, made), "--ro-bind", path, path]
        if spec.template:  # its forks bind their own /tmp: these stay visible there too
            env["_LAMINA_TMP_KEEP"] = ":".join(under_tmp)
        if isolated:
            env_dir.mkdir(parents=True, exist_ok=True)
            api = env.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
            api_host, _, api_port = api.rpartition(":")
            bridge = Bridge(env_dir / "runtime.sock", (api_host, int(api_port)))

            def close_bridge() -> bool:
                bridge.close()
                shutil.rmtree(env_dir, ignore_errors=True)
                return True

            cleanups.insert(0, close_bridge)
            args += [*_parents(RUNTIME_SOCKET, made), "--ro-bind", str(bridge.path), RUNTIME_SOCKET]
            env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{RELAY_PORT}"
        fds: list[int] = []
        if host.seccomp_problem is None:
            fd = os.memfd_create("lamina-seccomp")
            os.write(fd, seccomp.filter_bpf(template=spec.template))
            os.lseek(fd, 0, os.SEEK_SET)
            fds.append(fd)
            args += ["--seccomp", str(fd)]
        args.append("--")
        args += mount_proc
        if host.root:
            args += _setpriv(host.setpriv or "setpriv", self.uid, self.gid)
        return [*args, *relay_argv, *argv], env, "/", fds

    def _unshare(self, spec: SandboxSpec) -> tuple[list[str], dict[str, str], str, list[int]]:
        host = self.host
        args = [host.unshare or "unshare", "--fork", "--kill-child", "--pid", "--mount-proc"]
        args += ["--ipc", "--uts"]
        if not host.root:
            args.append("--map-root-user")
        if spec.network == "isolated":
            raise OSError("isolated network needs bubblewrap on this host")
        # A shell is the namespace's pid 1, the runtime its child: pid 1 ignores signals it has no
        # handler for, even SIGKILL from inside, so a runtime that was pid 1 could not kill itself.
        # Two commands keep the shell from exec'ing; it reports a signal death as 128+N.
        args += ["--", "/bin/sh", "-c", '"$@"; exit $?', "sh"]
        # No uid drop here: without a private view, the code and runtime stay at host paths that
        # another uid often cannot traverse (a 0700 data dir); the guarantees say so.
        env = dict(spec.env)
        if spec.template:  # its forks bind their own /tmp: what the runtime needs stays visible
            task_root = self._task_root(spec)
            wanted = [*self._runtime_paths(spec.argv, spec, task_root), task_root, str(spec.cwd)]
            if spec.opt_dir is not None:
                wanted.append(str(spec.opt_dir))
            env["_LAMINA_TMP_KEEP"] = ":".join(
                sorted({p for p in wanted if p.startswith("/tmp/")}, key=len)
            )
        return [*args, *spec.argv], env, str(spec.cwd), []

    def _runtime_paths(
        self, argv: Sequence[str], spec: SandboxSpec, task_root: str, opt: str | None = None
    ) -> list[str]:
        """Host paths the runtime needs, bound read-only at the same place (never the data dir)."""
        wanted: list[str] = [str(p) for p in spec.read_only_paths]
        mapped = (task_root + "/", opt + "/") if opt is not None else (task_root + "/",)
        if argv:
            exe = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0]) or argv[0]
            for candidate in (exe, os.path.realpath(exe)):
                if candidate.startswith(mapped):
                    continue  # the code or a layer (a custom runtime's bootstrap): mapped already
                prefix = os.path.dirname(os.path.dirname(candidate))
                if prefix not in ("", "/"):
                    wanted.append(prefix)
        for arg in argv[1:]:
            if os.path.isabs(arg) and os.path.isfile(arg):
                wanted.append(os.path.dirname(arg))
        out = []
        for raw in wanted:
            path = os.path.realpath(raw) if not os.path.islink(raw) else raw
            if path.startswith("/usr/") or len(Path(path).parts) < 3:
                continue  # the system view has it / never a whole top-level directory
            if path == task_root or path.startswith(task_root + "/"):
                continue
            real = Path(os.path.realpath(path))
            if any(
                real == h or h.is_relative_to(real) or real.is_relative_to(h) for h in self.hidden
            ):
                log.warning("not mapping %s into environments: it holds Lamina's data", path)
                continue
            if os.path.exists(path):
                out.append(path)
        return sorted(set(out), key=len)


def _to_view(value: str, task_root: str, opt: str | None) -> str:
    """A host path of the code or the layers as the environment sees it."""
    value = value.replace(task_root, TASK_ROOT)
    return value.replace(opt, OPT_DIR) if opt is not None else value


def _system_view(etc: Path | None) -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if etc is not None:
        args += ["--ro-bind", str(etc), "/etc"]
    else:
        for name in _ETC:
            path = f"/etc/{name}"
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--dir", "/var/tmp"]
    return args


def _copy_etc(target: Path) -> Path | None:
    """A copy of the few /etc entries environments see, bound in as one mount (one mount is
    cheaper than twenty at every start). Refreshed at each server start; None if it fails."""
    try:
        target.mkdir(mode=0o755)
        for name in _ETC:
            src = Path("/etc") / name
            if not src.exists():
                continue
            if src.is_dir() and not src.is_symlink():
                shutil.copytree(src, target / name, symlinks=True, ignore=_private)
            elif src.is_symlink() and name == "alternatives":
                (target / name).symlink_to(os.readlink(src))
            else:
                shutil.copy2(src, target / name)  # follows a symlinked resolv.conf
        return target
    except OSError as exc:
        log.warning("bind-mounting /etc entries one by one: %s", exc)
        return None


def _private(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "private" or n.endswith(".key")}


def _parents(path: str, made: set[str]) -> list[str]:
    """Create the directories above a bind point world-traversable (bwrap makes them 0700)."""
    out: list[str] = []
    parts = Path(path).parts[1:-1]
    for i in range(len(parts)):
        d = "/" + "/".join(parts[: i + 1])
        if d not in made and d not in ("/usr", "/etc", "/var", "/tmp", "/proc", "/dev"):
            made.add(d)
            out += ["--perms", "0755", "--dir", d]
    return out


def _setpriv(setpriv: str, uid: int, gid: int) -> list[str]:
    return [
        setpriv,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]

"""Control groups for environments: memory, pids and CPU limits, freezing, killing, OOM counting.

Works with cgroup v2, v1 and hybrid hosts (v1 controllers plus a v2 hierarchy without them):
each controller is taken from the hierarchy that has it, and the v2 hierarchy, when mounted and
writable, is used for `cgroup.freeze` and `cgroup.kill` even when it holds no controller.

Every group Lamina makes lives under `<the server's own cgroup>/lamina-<server pid>/` in each
hierarchy, so that several servers on one host (and whatever started the server) stay apart;
groups left by a server that died are swept at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
VCPU_MB = 1769  # Lambda: 1,769 MB of memory buys one full vCPU
CFS_PERIOD_US = 100_000
PIDS_MAX = 1024  # Lambda's limit on processes and threads per environment


@dataclass(frozen=True, slots=True)
class CpuShare:
    """CPU for a memory size: a share of the host under contention, and a hard cap in vCPUs."""

    weight: int  # cgroup v2 cpu.weight (100 = one vCPU's worth)
    shares: int  # cgroup v1 cpu.shares (1024 = one vCPU's worth)
    max_vcpus: int  # hard cap (cpu.max / cfs quota), whole vCPUs


def cpu_for_memory(memory_mb: int, host_cpus: int | None = None) -> CpuShare:
    """The CPU rule: share proportional to memory (1,769 MB = 1 vCPU), capped at ceil(MB/1,769).

    The share decides who gets the CPU when the host is contended; the cap is Lambda's ceiling
    (a 3,008 MB function gets at most 2 vCPUs). Below one vCPU there is no hard cap, so an
    uncontended small function may use a whole CPU (Lambda would hold it to its fraction).
    """
    cpus = host_cpus or os.cpu_count() or 1
    fraction = memory_mb / VCPU_MB
    return CpuShare(
        weight=max(1, min(10_000, round(100 * fraction))),
        shares=max(2, min(262_144, round(1024 * fraction))),
        max_vcpus=max(1, min(cpus, math.ceil(fraction))),
    )


@dataclass(frozen=True, slots=True)
class Hierarchy:
    mount: Path
    version: int  # 1 or 2
    controllers: frozenset[str]
    own: str  # the server's cgroup path in this hierarchy ("/..." relative to mount)


@dataclass(slots=True)
class Layout:
    """Which hierarchy serves each purpose on this host, and why a purpose is not served."""

    by_controller: dict[str, Hierarchy] = field(default_factory=dict)
    unified: Hierarchy | None = None  # v2: freeze and kill
    problems: dict[str, str] = field(default_factory=dict)  # controller -> why unavailable

    @property
    def hierarchies(self) -> list[Hierarchy]:
        out: list[Hierarchy] = []
        for h in [*self.by_controller.values(), self.unified]:
            if h is not None and h not in out:
                out.append(h)
        return out

    @property
    def can_freeze(self) -> bool:
        return self.unified is not None or "freezer" in self.by_controller

    @property
    def can_kill(self) -> bool:
        return self.unified is not None


def _own_paths() -> dict[str, str]:
    """'/proc/self/cgroup' as {controller or '' for v2: path}."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, ctrls, path = line.split(":", 2)
            if not ctrls:
                out[""] = path
            for c in ctrls.split(","):
                out[c.removeprefix("name=")] = path
    return out


WANTED = ("memory", "pids", "cpu", "freezer")


def detect(*, server_pid: int | None = None) -> Layout:
    """Find a writable hierarchy for each controller Lamina uses (no change is made here)."""
    layout = Layout()
    own = _own_paths()
    v1: list[Hierarchy] = []
    v2: Hierarchy | None = None
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        layout.problems.update(dict.fromkeys(WANTED, "no /proc/self/mountinfo"))
        return layout
    for line in mountinfo:
        left, _, right = line.partition(" - ")
        fstype, _source, *opts = right.split()
        mount = Path(left.split()[4])
        if fstype == "cgroup2" and v2 is None:
            ctrls: frozenset[str] = frozenset()
            with contextlib.suppress(OSError):
                ctrls = frozenset((mount / "cgroup.controllers").read_text().split())
            v2 = Hierarchy(mount, 2, ctrls, own.get("", "/"))
        elif fstype == "cgroup":
            names = frozenset(o for o in (opts[0].split(",") if opts else []) if o in WANTED)
            if names:
                first = next(iter(names))
                v1.append(Hierarchy(mount, 1, names, own.get(first, "/")))
    for h in v1:
        if not _writable(h):
            for c in h.controllers:
                layout.problems.setdefault(c, f"cgroup v1 {h.mount} is not writable")
            continue
        for c in h.controllers:
            layout.by_controller.setdefault(c, h)
    if v2 is not None:
        if _writable(v2):
            layout.unified = v2
            for c in ("memory", "pids", "cpu"):
                if c in v2.controllers and c not in layout.by_controller:
                    layout.by_controller[c] = v2
        else:
            layout.problems.setdefault("unified", f"cgroup v2 {v2.mount} is not writable")
    for c in WANTED:
        if c not in layout.by_controller and c not in layout.problems:
            layout.problems[c] = "no cgroup hierarchy has this controller"
    if layout.unified is not None:  # the v2 freezer replaces v1's
        layout.problems.pop("freezer", None)
        layout.by_controller.pop("freezer", None)
    return layout


def _writable(h: Hierarchy) -> bool:
    return os.access(h.mount / h.own.lstrip("/"), os.W_OK)


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class ServerGroups:
    """`lamina-<pid>` under the server's own cgroup in every hierarchy in use."""

    def __init__(self, layout: Layout, *, server_pid: int | None = None) -> None:
        self.layout = layout
        self.pid = server_pid or os.getpid()
        self.name = f"lamina-{self.pid}"
        self.bases: dict[Path, Path] = {}  # hierarchy mount -> base dir
        self._cpu_claims: dict[str, CpuShare] = {}  # environment group -> its CPU share
        self._cpu_lock = threading.Lock()  # groups are made and killed from worker threads
        for h in layout.hierarchies:
            parent = h.mount / h.own.lstrip("/")
            sweep_stale(parent)
            base = parent / self.name
            try:
                base.mkdir(exist_ok=True)
                if h.version == 2:
                    self._enable_v2_controllers(h, parent, base)
            except OSError as exc:
                self._lose(h, f"cannot create {base}: {exc.strerror}")
                continue
            self.bases[h.mount] = base

    def _enable_v2_controllers(self, h: Hierarchy, parent: Path, base: Path) -> None:
        wanted = [c for c, hh in self.layout.by_controller.items() if hh is h]
        for c in wanted:
            try:
                _write(parent / "cgroup.subtree_control", f"+{c}")
                _write(base / "cgroup.subtree_control", f"+{c}")
            except OSError as exc:
                del self.layout.by_controller[c]
                self.layout.problems[c] = (
                    f"cannot enable the {c} controller below {parent}: {exc.strerror}"
                )

    def _lose(self, h: Hierarchy, why: str) -> None:
        for c, hh in list(self.layout.by_controller.items()):
            if hh is h:
                del self.layout.by_controller[c]
                self.layout.problems[c] = why
        if self.layout.unified is h:
            self.layout.unified = None
            self.layout.problems["unified"] = why

    def base(self, h: Hierarchy) -> Path:
        return self.bases[h.mount]

    def claim_cpu(self, name: str, cpu: CpuShare | None) -> None:
        """Record (or, with None, drop) an environment group's CPU share, and give the base group
        the sum of its live groups' shares (at least one ordinary process's).

        The share of a group counts only against its siblings: left at the default, the base
        group, and so every environment of the server together, would weigh as much as one
        ordinary process of the host. With the sum, each environment competes with the host's
        other processes with the weight its memory buys (1,769 MB: one process's worth)."""
        h = self.layout.by_controller.get("cpu")
        if h is None or h.mount not in self.bases:
            return
        with self._cpu_lock:
            if cpu is None:
                if self._cpu_claims.pop(name, None) is None:
                    return
            else:
                self._cpu_claims[name] = cpu
            if h.version == 2:
                value = max(100, min(10_000, sum(c.weight for c in self._cpu_claims.values())))
                control = "cpu.weight"
            else:
                value = max(1024, min(262_144, sum(c.shares for c in self._cpu_claims.values())))
                control = "cpu.shares"
            with contextlib.suppress(OSError):
                _write(self.bases[h.mount] / control, str(value))

    def remove(self) -> None:
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                for child in base.iterdir():
                    if child.is_dir():
                        _kill_and_remove(child)
                base.rmdir()


def sweep_stale(parent: Path) -> None:
    """Remove `lamina-<pid>` groups whose server is gone (killing what is left in them)."""
    with contextlib.suppress(OSError):
        for d in parent.iterdir():
            if not d.name.startswith("lamina-") or not d.is_dir():
                continue
            try:
                pid = int(d.name.removeprefix("lamina-"))
            except ValueError:
                continue
            if pid == os.getpid() or Path(f"/proc/{pid}").exists():
                continue
            for child in list(d.iterdir()):
                if child.is_dir():
                    _kill_and_remove(child)
            with contextlib.suppress(OSError):
                d.rmdir()


def _kill_and_remove(group: Path) -> None:
    with contextlib.suppress(OSError):
        _write(group / "cgroup.kill", "1")
    with contextlib.suppress(OSError, ValueError):
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), 9)
    with contextlib.suppress(OSError):
        _write(group / "freezer.state", "THAWED")
    with contextlib.suppress(OSError):
        group.rmdir()


class EnvironmentGroup:
    """One environment's group in every hierarchy in use; limits are set before anything runs."""

    def __init__(self, server: ServerGroups, name: str, *, memory_mb: int) -> None:
        self.layout = server.layout
        self.server = server
        self.name = name
        self.dirs: dict[Path, Path] = {}
        for mount, base in server.bases.items():
            d = base / name
            d.mkdir()
            self.dirs[mount] = d
        self._frozen = False
        self._fds: dict[str, int] = {}  # control files kept open: read and written per invocation
        self._freezer_ctl: tuple[int, bytes, bytes] | None = None
        self._peak_path: Path | None = None  # the memory controller's peak counter
        ctl = self.layout.by_controller
        if "memory" in ctl:
            self._set_memory(self._dir(ctl["memory"]), ctl["memory"].version, memory_mb)
        if "pids" in ctl:
            _write(self._dir(ctl["pids"]) / "pids.max", str(PIDS_MAX))
        if "cpu" in ctl:
            cpu = cpu_for_memory(memory_mb)
            self._set_cpu(self._dir(ctl["cpu"]), ctl["cpu"].version, cpu)
            server.claim_cpu(name, cpu)

    def _dir(self, h: Hierarchy) -> Path:
        return self.dirs[h.mount]

    def _open(self, path: Path, flags: int) -> int:
        key = f"{path}:{flags}"
        fd = self._fds.get(key)
        if fd is None:
            fd = self._fds[key] = os.open(path, flags | os.O_CLOEXEC)
        return fd

    def _read(self, path: Path) -> bytes:
        """Read a control file through a kept-open descriptor (pread: no open/close per call)."""
        return os.pread(self._open(path, os.O_RDONLY), 4096, 0)

    @staticmethod
    def _set_memory(d: Path, version: int, memory_mb: int) -> None:
        limit = str(memory_mb * MB)
        if version == 2:
            _write(d / "memory.max", limit)
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", "0")
            with contextlib.suppress(OSError):
                _write(d / "memory.oom.group", "1")
        else:
            _write(d / "memory.limit_in_bytes", limit)
            with contextlib.suppress(OSError):  # only with swap accounting
                _write(d / "memory.memsw.limit_in_bytes", limit)

    @staticmethod
    def _set_cpu(d: Path, version: int, cpu: CpuShare) -> None:
        quota = cpu.max_vcpus * CFS_PERIOD_US
        if version == 2:
            _write(d / "cpu.weight", str(cpu.weight))
            _write(d / "cpu.max", f"{quota} {CFS_PERIOD_US}")
        else:
            _write(d / "cpu.shares", str(cpu.shares))
            _write(d / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(d / "cpu.cfs_quota_us", str(quota))

    def set_cpu_share(self, cpu: CpuShare) -> None:
        """Change the group's CPU share and cap (a template, once its Init is done)."""
        if "cpu" in self.layout.by_controller:
            h = self.layout.by_controller["cpu"]
            with contextlib.suppress(OSError):
                self._set_cpu(self._dir(h), h.version, cpu)
                self.server.claim_cpu(self.name, cpu)

    def procs_files(self) -> list[str]:
        """The files a new process writes its pid to (before it runs any function code)."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    # -- during the environment's life -------------------------------------------------------

    def _freezer(self) -> tuple[int, bytes, bytes] | None:
        """The freezer's control file (kept open) and its frozen/thawed values, found once."""
        if self._freezer_ctl is None:
            if self.layout.unified is not None:
                path, on, off = self._dir(self.layout.unified) / "cgroup.freeze", b"1", b"0"
            elif "freezer" in self.layout.by_controller:
                d = self._dir(self.layout.by_controller["freezer"])
                path, on, off = d / "freezer.state", b"FROZEN", b"THAWED"
            else:
                return None
            self._freezer_ctl = (self._open(path, os.O_WRONLY), on, off)
        return self._freezer_ctl

    def freeze(self) -> bool:
        ctl = self._freezer()
        if ctl is None:
            return False
        os.write(ctl[0], ctl[1])
        self._frozen = True
        return True

    def thaw(self) -> bool:
        ctl = self._freezer()
        if ctl is None:
            return False
        os.write(ctl[0], ctl[2])
        self._frozen = False
        return True

    def kill(self) -> bool:
        """SIGKILL every process of the group (v2 cgroup.kill, else each listed pid)."""
        self.server.claim_cpu(self.name, None)
        done = False
        if self.layout.unified is not None:
            with contextlib.suppress(OSError):
                _write(self._dir(self.layout.unified) / "cgroup.kill", "1")
                done = True
        if not done:
            for d in self.dirs.values():
                with contextlib.suppress(OSError, ValueError):
                    for pid in (d / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), 9)
                    done = True
        if self._frozen and self.layout.unified is None:
            # v1 frozen tasks act on SIGKILL only once thawed
            with contextlib.suppress(OSError):
                self.thaw()
        return done

    def oom_kills(self) -> int:
        h = self.layout.by_controller.get("memory")
        if h is None:
            return 0
        d = self._dir(h)
        path = d / ("memory.events" if h.version == 2 else "memory.oom_control")
        try:
            text = self._read(path).decode()
        except OSError:
            return 0
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def peak_memory_bytes(self) -> int | None:
        """Read after every invocation (REPORT's Max Memory Used): the path is found once."""
        path = self._peak_path
        if path is None:
            h = self.layout.by_controller.get("memory")
            if h is None:
                return None
            name = "memory.peak" if h.version == 2 else "memory.max_usage_in_bytes"
            path = self._peak_path = self._dir(h) / name
        try:
            return int(self._read(path))
        except (OSError, ValueError):
            return None

    def remove(self) -> bool:
        """Remove the groups; False while processes are still dying in them (retry later)."""
        self.server.claim_cpu(self.name, None)
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._freezer_ctl = None
        left = False
        for d in self.dirs.values():
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    left = True
        return not left

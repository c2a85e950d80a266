"""An environment's private /tmp, sized by EphemeralStorage and kept out of its memory limit.

tmpfs pages are charged to the memory cgroup of the process that writes them, so a tmpfs /tmp
would let a 128 MB function store at most 128 MB minus its heap. As root, Lamina therefore backs
/tmp with a sparse ext4 image on disk, loop-mounted on the host (no journal, sized exactly:
writing past it gives ENOSPC) and bind-mounted into the environment: its page cache can be
reclaimed and written back, so a 128 MB function can fill a 512 MB /tmp. Without root (no loop
devices) a size-limited tmpfs is used and /tmp counts against memory; the guarantees say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ScratchPlan:
    kind: str  # "ext4" (loop image) or "tmpfs"
    why: str  # shown in the guarantees


def plan(*, root: bool) -> ScratchPlan:
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/sbin:/usr/sbin")
    if not root:
        return ScratchPlan("tmpfs", "tmpfs (no root for loop devices): counts against memory")
    if mkfs is None or not shutil.which("mount"):
        return ScratchPlan("tmpfs", "tmpfs (mkfs.ext4 or mount missing): counts against memory")
    if not os.path.exists("/dev/loop-control"):
        return ScratchPlan("tmpfs", "tmpfs (no loop devices): counts against memory")
    return ScratchPlan("ext4", "ext4 image on disk: separate from memory")


class ScratchDisk:
    """A loop-mounted ext4 image of exactly `size_mb`, owned by `uid:gid` at its root."""

    def __init__(self, directory: Path, size_mb: int, uid: int, gid: int) -> None:
        self.directory = directory
        self.image = directory / "tmp.img"
        self.mountpoint = directory / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        mkfs = shutil.which("mkfs.ext4", path=f"{os.environ.get('PATH', '')}:/sbin:/usr/sbin")
        _run(
            [
                mkfs or "mkfs.ext4",
                "-q",
                "-F",
                "-O",
                "^has_journal",
                "-m",
                "0",
                "-E",
                f"root_owner={uid}:{gid},lazy_itable_init=1,nodiscard",
                str(self.image),
            ]
        )
        _run(["mount", "-o", "loop,nosuid,nodev", str(self.image), str(self.mountpoint)])
        self.mountpoint.chmod(0o1777)
        with contextlib.suppress(OSError):
            (self.mountpoint / "lost+found").rmdir()
        self.detached = False

    def detach(self) -> None:
        """Drop the host's mount once the environment holds its own (lazy unmount): the file
        system then lives exactly as long as the environment's mount namespace, and its loop
        device frees itself after, even if Lamina dies without cleaning up."""
        if not self.detached:
            self.detached = True
            unmount(self.mountpoint)

    def remove(self) -> bool:
        self.detach()
        shutil.rmtree(self.directory, ignore_errors=True)
        return True


_MNT_DETACH = 2
_libc: ctypes.CDLL | None = None


def unmount(path: Path) -> None:
    """umount2(path, MNT_DETACH) without a process (microseconds, not milliseconds)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0 and os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


OWNER = "server.pid"


def sweep(state_dir: Path) -> None:
    """Unmount and delete what a previous server left under its state dir, and unmount the
    scratch disks of any Lamina server on this host that died without cleaning up."""
    mine = str(state_dir.resolve()) + "/"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            env_dir = Path(target).parent
            if Path(target).name != "tmp" or not (env_dir.parent / OWNER).exists():
                continue
            if target.startswith(mine) or not _owner_alive(env_dir.parent / OWNER):
                unmount(Path(target))
    shutil.rmtree(state_dir, ignore_errors=True)


def claim(state_dir: Path) -> None:
    (state_dir / OWNER).write_text(str(os.getpid()))


def _owner_alive(path: Path) -> bool:
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return True  # not ours to judge
    return pid == os.getpid() or os.path.exists(f"/proc/{pid}")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise OSError(
            f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:300]}"
        )


class ScratchPool:
    """Scratch disks made ahead of need: formatting and mounting costs tens of ms on a busy host,
    so one spare per recently used size is kept ready, made by a background thread."""

    def __init__(self, state_dir: Path, uid: int, gid: int, *, spares: int = 1) -> None:
        self.state_dir = state_dir
        self.uid, self.gid = uid, gid
        self.spares = spares
        self._ready: dict[int, list[ScratchDisk]] = {}
        self._wanted: list[int] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self, size_mb: int) -> ScratchDisk:
        with self._cond:
            ready = self._ready.get(size_mb)
            disk = ready.pop() if ready else None
            self._wanted.append(size_mb)
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill, name="scratch", daemon=True)
                self._thread.start()
            self._cond.notify()
        return disk if disk is not None else self._make(size_mb)

    def _make(self, size_mb: int) -> ScratchDisk:
        return ScratchDisk(self.state_dir / uuid.uuid4().hex[:16], size_mb, self.uid, self.gid)

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                size = self._wanted.pop(0)
                if len(self._ready.get(size, ())) >= self.spares:
                    continue
            try:
                disk = self._make(size)
            except OSError:
                continue
            with self._cond:
                if self._closed:
                    disk.remove()
                    return
                self._ready.setdefault(size, []).append(disk)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            disks = [d for ds in self._ready.values() for d in ds]
            self._ready.clear()
        for d in disks:
            d.remove()

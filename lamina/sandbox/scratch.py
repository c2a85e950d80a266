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
import os
import shutil
import subprocess
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

    def remove(self) -> bool:
        """Unmount (the loop device detaches itself) and delete; False if still busy."""
        if os.path.ismount(self.mountpoint):
            proc = subprocess.run(
                ["umount", str(self.mountpoint)], capture_output=True, check=False
            )
            if proc.returncode != 0:
                return False
        shutil.rmtree(self.directory, ignore_errors=True)
        return True


def sweep(state_dir: Path) -> None:
    """Unmount and delete what a previous server left under its state dir."""
    if not state_dir.is_dir():
        return
    prefix = str(state_dir.resolve()) + "/"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    shutil.rmtree(state_dir, ignore_errors=True)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise OSError(
            f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:300]}"
        )

"""The seccomp filter of every environment: allow by default, refuse what a function has no use for.

A deny-list (EPERM), compiled once to classic BPF with libseccomp (PyPI `pyseccomp`, ctypes over
the libseccomp2 every Debian has) and handed to bubblewrap, which loads it just before the
command runs. An allow-list per runtime would be stronger; it needs upkeep per runtime.
"""

from __future__ import annotations

import errno
import os
from functools import cache

# Calls refused outright. Grouped by why.
DENIED = (
    # debugging other processes / reading their memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # mounts and filesystem views
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # namespaces
    "unshare",
    "setns",
    # kernel modules, kexec, reboot, swap, accounting
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    # clocks
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # large kernel attack surface a function does not need
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "lookup_dcookie",
    "quotactl",
    "vhangup",
)

# clone(2) with any of these flags is refused (a new namespace); clone3 is refused with ENOSYS,
# because its flags sit in memory a filter cannot read, and libc then falls back to clone(2).
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}


def available() -> str | None:
    """None when a filter can be built here, else why not."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so.2 missing
        return f"pyseccomp/libseccomp unavailable ({exc})"
    return None


# What a snapshot-start template may do beyond an environment: its forks give themselves a user,
# mount and PID namespace and a fresh /tmp (mounting is possible only inside their own user
# namespace: the template runs without capabilities), then load the full filter on top.
TEMPLATE_ALLOWED = ("unshare", "mount")


@cache
def filter_bpf(*, template: bool = False) -> bytes:
    """The compiled filter (BPF program bytes) for the host's architecture."""
    import pyseccomp as sc

    f = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        if template and name in TEMPLATE_ALLOWED:
            continue
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a call on this architecture / libseccomp version
    for flag in NAMESPACE_FLAGS.values():
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("lamina-seccomp", os.MFD_CLOEXEC)
    with open(fd, "w+b") as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()

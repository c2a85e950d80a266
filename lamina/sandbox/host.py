"""What this host can enforce: probed once at start, printed at start-up and by `lamina doctor`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache

from lamina.sandbox import cgroups, scratch, seccomp


@dataclass(slots=True)
class HostProbe:
    platform: str
    root: bool
    bwrap: str | None = None
    bwrap_version: str = ""
    unshare: str | None = None
    setpriv: str | None = None
    launcher: str = "none"  # bwrap | unshare | none
    launcher_problem: str = ""
    seccomp_problem: str | None = "not probed"
    layout: cgroups.Layout = field(default_factory=cgroups.Layout)
    scratch: scratch.ScratchPlan = field(
        default_factory=lambda: scratch.ScratchPlan("tmpfs", "not probed")
    )

    def guarantees(self) -> dict[str, str]:
        """Each guarantee -> 'enforced (how)' or 'not enforced (why)'."""
        g: dict[str, str] = {}
        bw = self.launcher == "bwrap"
        ns = self.launcher in ("bwrap", "unshare")
        lay = self.layout
        if self.launcher == "none":
            g["launcher"] = f"none ({self.launcher_problem}): environments are plain processes"
        else:
            who = "as root" if self.root else "unprivileged, in a user namespace"
            name = f"bubblewrap {self.bwrap_version}" if bw else "util-linux unshare"
            g["launcher"] = f"{name} ({who})"
            if not bw and self.launcher_problem:
                g["launcher"] += f"; {self.launcher_problem}"
        g["filesystem view"] = (
            "enforced (code read-only at /var/task, runtime read-only, host data dir invisible)"
            if bw
            else "not enforced (needs bubblewrap: apt-get install bubblewrap)"
        )
        g["process isolation"] = (
            "enforced (own PID, IPC and UTS namespaces)" if ns else "not enforced (no namespaces)"
        )
        if bw and self.root:
            g["unprivileged user"] = (
                f"enforced (uid/gid {cgroups_uid()}, no capabilities, no_new_privs)"
            )
        elif bw:
            g["unprivileged user"] = "enforced (Lamina's own uid, no capabilities)"
        elif ns and self.root:
            g["unprivileged user"] = "not enforced (runs as root: needs bubblewrap)"
        else:
            g["unprivileged user"] = "not enforced (runs as Lamina's user)"
        if bw and self.seccomp_problem is None:
            g["seccomp filter"] = (
                f"enforced ({len(seccomp.DENIED)} calls and namespace clones refused)"
            )
        elif bw:
            g["seccomp filter"] = f"not enforced ({self.seccomp_problem})"
        else:
            g["seccomp filter"] = "not enforced (needs bubblewrap)"
        g["memory limit"] = _cg(
            lay, "memory", "hard limit = MemorySize, OOM reported as Lambda does"
        )
        g["pids limit"] = _cg(lay, "pids", f"{cgroups.PIDS_MAX} processes and threads")
        g["cpu share"] = _cg(lay, "cpu", "share proportional to memory, 1,769 MB = 1 vCPU")
        if lay.unified is not None:
            g["freeze between invocations"] = "enforced (cgroup v2 cgroup.freeze)"
        elif "freezer" in lay.by_controller:
            g["freeze between invocations"] = "enforced (cgroup v1 freezer)"
        else:
            g["freeze between invocations"] = "best effort (SIGSTOP/SIGCONT of the process tree)"
        if bw:
            g["ephemeral storage"] = f"enforced ({self.scratch.why})"
        else:
            g["ephemeral storage"] = "not enforced (/tmp is the host's; needs bubblewrap)"
        if ns:
            how = "PID namespace" + (" + cgroup.kill" if lay.can_kill else "")
            g["timeout kill"] = f"enforced (whole tree: {how})"
        else:
            g["timeout kill"] = "process group only (a daemonised grandchild can escape)"
        g["isolated network mode"] = (
            "available (empty network namespace; Runtime API through a relay)"
            if bw
            else "not available (needs bubblewrap)"
        )
        return g


def _cg(layout: cgroups.Layout, controller: str, what: str) -> str:
    h = layout.by_controller.get(controller)
    if h is None:
        why = layout.problems.get(controller, "no writable cgroup")
        return f"not enforced ({why})"
    return f"enforced ({what}; cgroup v{h.version})"


def cgroups_uid() -> int:
    from lamina.sandbox.linux import SANDBOX_UID

    return SANDBOX_UID


def _works(argv: list[str]) -> str:
    """'' when the command runs and exits 0, else the reason."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        return proc.stderr.decode(errors="replace").strip()[:200] or f"exit {proc.returncode}"
    return ""


def probe_unshare(p: HostProbe) -> str:
    """'' when util-linux unshare can make the namespaces, else why not."""
    if not p.unshare:
        return "util-linux unshare is missing"
    extra = [] if p.root else ["--map-root-user"]
    return _works([p.unshare, *extra, "--fork", "--pid", "--mount-proc", "--", "true"])


@cache
def probe() -> HostProbe:
    """Probe the host (cached: the answer does not change while Lamina runs)."""
    p = HostProbe(platform=sys.platform, root=os.geteuid() == 0)
    if sys.platform != "linux":
        p.launcher_problem = f"{sys.platform} has no namespaces or cgroups"
        return p
    p.bwrap = shutil.which("bwrap")
    p.unshare = shutil.which("unshare")
    p.setpriv = shutil.which("setpriv")
    p.seccomp_problem = seccomp.available()
    user = [] if p.root else ["--unshare-user"]
    problems = []
    if p.bwrap:
        ver = subprocess.run([p.bwrap, "--version"], capture_output=True, check=False)
        p.bwrap_version = ver.stdout.decode().split()[-1] if ver.stdout else "?"
        why = _works([p.bwrap, *user, "--unshare-pid", "--ro-bind", "/", "/", "--", "true"])
        if not why and (p.root and not p.setpriv):
            why = "setpriv (util-linux) is missing, so the uid cannot be dropped"
        if not why:
            p.launcher = "bwrap"
        else:
            problems.append(f"bubblewrap does not work here: {why}")
    else:
        problems.append("bubblewrap is not installed")
    if p.launcher == "none" and p.unshare:
        why = probe_unshare(p)
        if not why:
            p.launcher = "unshare"
        else:
            problems.append(f"unshare does not work here: {why}")
    elif p.launcher == "none":
        problems.append("util-linux unshare is missing")
    p.launcher_problem = "; ".join(problems)
    p.layout = cgroups.detect()
    p.scratch = scratch.plan(root=p.root)
    return p

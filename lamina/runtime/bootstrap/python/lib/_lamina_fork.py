"""Snapshot starts: this runtime, its handler imported once (the Init phase), forked per environment.

Lamina starts the runtime in template mode (`_LAMINA_TEMPLATE_FD` names a SOCK_SEQPACKET socket
to the server). After Init the template runs the before-snapshot hooks, checks that it can be
forked safely (one thread, no open sockets), says `ready`, and then forks once per request. Each
request carries the environment's own channel and log pipe. Where the sandbox asks for it, the
fork takes its own namespaces (user, mount, PID, IPC, UTS) and a fresh /tmp, and forks again:
that child, pid 1 of the new PID namespace, is the environment's first process. Each fork says
hello at once (the server learns its pid from the kernel and moves it into the environment's own
cgroups before it does anything), and the environment's first process says hello again before
it forks the runtime, then stays to reap and to report how the runtime ended. The runtime drops what it must
not keep (capabilities, the template's variables), loads the environment's seccomp filter,
reseeds `random`, runs the after-restore hooks and returns to serve.

Standard library only; imported by bootstrap.py only in template mode. Hooks: snapshot_restore_py.
"""

import array
import contextlib
import ctypes
import gc
import json
import os
import random
import signal
import socket
import sys

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_SET_CHILD_SUBREAPER = 36
MS_BIND = 4096
_REAPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lamina_reaper")
_TEMPLATE_VARS = ("_LAMINA_TEMPLATE_FD", "_LAMINA_SECCOMP", "_LAMINA_ISOLATE", "_LAMINA_TMP_KEEP")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unforkable(keep_fd):
    """Why this process cannot be forked safely, or None."""
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 1
    if threads > 1:
        return f"{threads - 1} thread(s) running after Init (a fork keeps only one)"
    sockets = 0
    try:
        for name in os.listdir("/proc/self/fd"):
            if int(name) == keep_fd:
                continue
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    sockets += 1
            except OSError:
                continue
    except OSError:
        pass
    if sockets:
        return f"{sockets} socket(s) open after Init (forked environments would share them)"
    return None


def _run_hooks(getter, *, reverse=False):
    """The hooks the function registered, if it imported snapshot_restore_py (any copy of it)."""
    module = sys.modules.get("snapshot_restore_py")
    hooks = list(getattr(module, getter, list)()) if module is not None else []
    for func, args, kwargs in reversed(hooks) if reverse else hooks:
        func(*args, **kwargs)


def _forget_environment(msg):
    """An environment is gone: its /tmp directory on the template's disk goes too."""
    try:
        env_id = json.loads(msg).get("forget", "")
    except ValueError:
        return
    if env_id.isalnum():
        import shutil

        shutil.rmtree(f"/tmp/.lamina-env-{env_id}", ignore_errors=True)


def _reap(_signum, _frame):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve_template(ctl_fd, init_ms):
    """Run the template until the server goes away; returns only in a forked runtime."""
    ctl = socket.socket(fileno=ctl_fd)
    try:
        _run_hooks("get_before_snapshot", reverse=True)
    except Exception as exc:  # a failing hook: no template; the server starts environments plainly
        ctl.send(json.dumps({"refused": f"before-snapshot hook failed: {exc!r}"}).encode())
        os._exit(0)
    why = _unforkable(ctl_fd)
    if why is not None:
        ctl.send(json.dumps({"refused": why}).encode())
        os._exit(0)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # What every fork would otherwise import on its first connection (socket encodes a str host
    # with the IDNA codec: encodings.idna, stringprep, unicodedata), and on its first error report
    # (traceback's carets use ast): imported here once, shared, instead of per environment (about
    # 1 MB of private memory and a few ms each).
    import ast  # noqa: F401
    import encodings.idna  # noqa: F401

    gc.collect()
    gc.freeze()  # keep the collector from dirtying (and so un-sharing) the template's pages
    # An environment's first fork exits at once, leaving pid 1 of its namespace orphaned: the
    # template adopts and reaps those orphans (PR_SET_CHILD_SUBREAPER).
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGCHLD, _reap)
    ctl.send(json.dumps({"ready": True, "init_ms": init_ms}).encode())
    fd_space = socket.CMSG_SPACE(2 * array.array("i").itemsize)
    while True:
        msg, ancdata, _flags, _addr = ctl.recvmsg(65536, fd_space)
        if not msg:
            os._exit(0)  # the server is gone
        fds = array.array("i")
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            _forget_environment(msg)
            continue
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            ctl.close()
            _become_environment(json.loads(msg), fds[0], fds[1])
            return
        os.close(fds[0])
        os.close(fds[1])


def _rewrite_initial_environ(values):
    """Put this environment's own values into the environment block the process was exec'd
    with (what /proc/PID/environ and `ps e` show): the template was started with placeholders
    long enough to hold them. Our own memory, written in place; os.environ is set separately."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
        block = b"\0" + ctypes.string_at(start, end - start)
    except (OSError, ValueError, IndexError):
        return
    for name, value in values.items():
        key = b"\0" + name.encode() + b"="
        at = block.find(key)
        if at < 0:
            continue
        stop = block.find(b"\0", at + 1)
        stop = len(block) if stop < 0 else stop
        new = name.encode() + b"=" + value.encode()
        room = stop - at - 1
        if len(new) <= room:
            ctypes.memmove(start + at, new + b"\0" * (room - len(new)), room)


def _become_environment(req, chan_fd, out_fd):
    chan = socket.socket(fileno=chan_fd)
    # First thing: the server moves us into the environment's cgroups (it reads our pid from the
    # credentials the kernel attaches), so that what we touch from here on is charged there.
    chan.send(b"hello")
    if chan.recv(16) != b"go":
        os._exit(1)
    _rewrite_initial_environ(
        {"AWS_LAMBDA_LOG_STREAM_NAME": req["log_stream"], "AWS_LAMBDA_RUNTIME_API": req["api"]}
    )
    os.setsid()
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    isolate = os.environ.get("_LAMINA_ISOLATE", "")
    if isolate:
        try:
            _isolate(req["id"], userns=isolate == "userns")
        except OSError as exc:
            chan.send(f"fail {exc}".encode())
            os._exit(1)
        if os.fork():
            os._exit(0)  # its child is pid 1 of the new PID namespace: that is the environment
        # show the runtime its own PID namespace (see sandbox/linux.py for why this may fail)
        _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    chan.send(b"hello")  # the environment's first process, which the server watches
    runtime = os.fork()
    if runtime:
        _keep(chan, runtime)
    chan.close()
    _restore(req)


def _isolate(env_id, *, userns):
    """Own namespaces and /tmp for this environment (the PID namespace holds our children).

    The environment's /tmp is its own directory on the template's /tmp (the sandbox's disk for
    it, so the pages stay out of the memory limit as for a plain start), bound over /tmp in the
    environment's own mount namespace; runtime paths the sandbox keeps under /tmp (a checkout
    there, say) are bound into it at the same place."""
    own = f"/tmp/.lamina-env-{env_id}"
    os.mkdir(own)
    os.chmod(own, 0o1777)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if userns:
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(flags), "unshare")
    if userns:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    for path in os.environ.get("_LAMINA_TMP_KEEP", "").split(":"):
        if not path.startswith("/tmp/") or not os.path.exists(path):
            continue
        target = own + path[4:]
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:  # a single module file (six.py, say)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        _check(_libc.mount(path.encode(), target.encode(), None, MS_BIND | MS_REC, None), path)
    _check(_libc.mount(own.encode(), b"/tmp", None, MS_BIND | MS_REC, None), "mount /tmp")


def _keep(chan, runtime):
    """The environment's first process (pid 1 of its PID namespace, where it has one, so the
    runtime is pid 2: a pid 1 cannot kill itself): reaps whatever ends up below it, and when the
    runtime ends tells the server how, then exits (which ends the namespace).

    It becomes the small C reaper (_lamina_reaper.c, built where a C compiler exists), which does
    the same in about 0.1 MB instead of this interpreter's copy-on-write pages (about 1.7 MB PSS
    per environment); without it, or if the exec fails, this loop does the job."""
    os.closerange(3, chan.fileno())
    os.closerange(chan.fileno() + 1, 1024)
    if os.access(_REAPER, os.X_OK):
        os.set_inheritable(chan.fileno(), True)
        with contextlib.suppress(OSError):  # then this loop does the job
            os.execv(_REAPER, [_REAPER, str(chan.fileno()), str(runtime)])
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == runtime:
            break
    try:
        chan.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
    finally:
        os._exit(0)


def _restore(req):
    """In the runtime: what must differ per environment, then the function's restore hooks."""
    env = os.environ
    seccomp = env.get("_LAMINA_SECCOMP")
    userns = env.get("_LAMINA_ISOLATE") == "userns"
    for name in _TEMPLATE_VARS:
        env.pop(name, None)
    if userns:
        _drop_capabilities()
    if seccomp:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _load_seccomp(bytes.fromhex(seccomp))
    env["AWS_LAMBDA_RUNTIME_API"] = req["api"]
    env["AWS_LAMBDA_LOG_STREAM_NAME"] = req["log_stream"]
    env["AWS_LAMBDA_INITIALIZATION_TYPE"] = req.get("init_type", "on-demand")
    random.seed()
    _run_hooks("get_after_restore")


def _drop_capabilities():
    """A new user namespace gives its creator every capability in it: the runtime keeps none."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _load_seccomp(bpf):
    """The environment's own filter, on top of the template's (filters only ever add up)."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")

"""One execution environment: a sandboxed runtime process, its Runtime API listener, its log stream.

States: starting -> ready <-> busy -> dead. The runtime's first `GET /next` ends the Init phase;
each invocation is handed to a pending `/next` and ends with `/response`, `/error`, the process
exiting, or the deadline (then the whole tree is killed). One invocation at a time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lamina.runtime.layers_env import layer_variables
from lamina.runtime.runtime_api import NextEvent, RuntimeAPIServer
from lamina.runtime.runtimes import launch
from lamina.runtime.spec import (
    EnvironmentSpec,
    Invocation,
    Outcome,
    ResponseStream,
    endpoint_inside,
)
from lamina.sandbox import Sandbox, SandboxedProcess, SandboxSpec

if TYPE_CHECKING:
    from lamina.runtime.template import Template

log = logging.getLogger(__name__)

_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGINT: "interrupt",
    signal.SIGHUP: "hangup",
    signal.SIGPIPE: "broken pipe",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
}


class EnvironmentLost(Exception):
    """The environment died before its runtime fetched the invocation's event: the function
    never saw it, so the invocation may run in another environment (Lambda reports no error
    for an invocation the function never received)."""


class InitFailure(Exception):
    """Why an environment never became ready: an error document, or how the runtime exited."""

    def __init__(
        self,
        error_type: str,
        *,
        payload: bytes | None = None,
        exit_reason: str | None = None,
        status: str = "init_error",
    ) -> None:
        super().__init__(error_type)
        self.error_type = error_type
        self.payload = payload
        self.exit_reason = exit_reason
        self.status = status

    def payload_for(self, request_id: str) -> bytes:
        """The error document the caller of the failed invocation gets."""
        if self.payload is not None:
            return self.payload
        return _error_payload(self.error_type, f"RequestId: {request_id} Error: {self.exit_reason}")


def exit_reason(code: int) -> str:
    """Describe an exit status the way Lambda's (Go) platform prints it."""
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"Runtime exited with error: signal {-code}"
        return f"Runtime exited with error: signal: {_SIGNAL_NAMES.get(sig, sig.name.lower())}"
    if code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: exit status {code}"


class _DeadlineExceeded(Exception):
    """The invocation's timeout passed before the runtime answered."""


def _expire(result: asyncio.Future[Outcome]) -> None:
    if not result.done():
        result.set_exception(_DeadlineExceeded())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Environment:
    def __init__(
        self,
        spec: EnvironmentSpec,
        sandbox: Sandbox,
        *,
        init_timeout_s: float,
        freeze_delay_s: float = 0.0,
        template: Template | None = None,
        init_type: str = "on-demand",
    ) -> None:
        self.spec = spec
        self.template = template  # snapshot start: forked from this, not started fresh
        self.init_type = init_type
        # When the start was asked for (perf_counter), if earlier than start(): the Init Duration
        # of the first environment of a version includes making its template.
        self.start_clock: float | None = None
        self.sandbox = sandbox
        self.init_timeout_s = init_timeout_s
        self.freeze_delay_s = freeze_delay_s
        self._frozen = False
        self._freeze_timer: asyncio.Handle | None = None
        self.id = uuid.uuid4().hex
        day = _dt.datetime.now(_dt.UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{day}/[{spec.version}]{self.id}"
        self.state = "starting"
        self.retired = False
        self.provisioned = False  # provisioned concurrency: kept ready, never expires idle
        # Initialised ahead of need for on-demand traffic (a pool's spare): its first
        # invocation still reports its Init Duration, as Lambda's proactive initialisation does.
        self.proactive = False
        self.last_used = time.monotonic()
        self.invocations = 0
        self.init_duration_ms: float | None = None
        self._api = RuntimeAPIServer(self)
        self._proc: SandboxedProcess | None = None
        self._out_fd = -1
        self._partial = b""
        self._lines: list[tuple[int, str]] = []
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        # Answers the runtime's pending /next (set while the runtime waits for its next event).
        self._waiter: Callable[[NextEvent], bool] | None = None
        self._queued: NextEvent | None = None  # an event ready before the runtime asked
        self._request_id: str | None = None
        self._answered = False  # the runtime's answer came, and its output was read then
        self._delivered = False  # the runtime has been sent the current invocation's event
        self._may_lose = False  # an undelivered invocation is handed back (EnvironmentLost)
        self._result: asyncio.Future[Outcome] | None = None
        self._stream: ResponseStream | None = None  # where a streamed response goes
        self._started_at = 0.0
        self._exit_code: int | None = None
        self._peak_mb = 0
        self._exited: asyncio.Future[None] = self._loop.create_future()
        # Called once when the environment dies, whatever the cause (the pool forgets it).
        self.on_dead: Callable[[Environment], None] | None = None

    @property
    def alive(self) -> bool:
        return self.state != "dead"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started_at = self.start_clock or time.perf_counter()
        if self.template is not None:
            await self._fork(self.template)
            return
        spec = self.spec
        try:
            how = launch(spec)
        except RuntimeError as exc:  # e.g. the runtime's interpreter is gone from this host
            self._fail_start(f"Runtime failed to start: {exc}", "Runtime.InvalidRuntime")
            return
        port = await self._api.start()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._out_fd = read_fd
        self._started_at = self.start_clock or time.perf_counter()
        try:
            self._proc = self.sandbox.spawn(
                SandboxSpec(
                    argv=how.argv,
                    read_only_paths=tuple(Path(p) for p in how.read_only_paths),
                    env=self._variables(
                        f"127.0.0.1:{port}", how.execution_env, how.bin_dir, how.runtime_dir
                    ),
                    cwd=spec.task_root,
                    output_fd=write_fd,
                    memory_mb=spec.memory_mb,
                    tmp_mb=spec.ephemeral_mb,
                    task_root=spec.task_root,
                    opt_dir=spec.opt_dir,
                    # a function opts in with its variable LAMINA_NETWORK=isolated
                    network=spec.variables.get("LAMINA_NETWORK", spec.network),
                )
            )
        except OSError as exc:
            os.close(write_fd)
            self._fail_start(
                f"Runtime failed to start: {exc.strerror or exc}", "Runtime.InvalidEntrypoint"
            )
            return
        finally:
            with contextlib.suppress(OSError):
                os.close(write_fd)
        self._loop.add_reader(read_fd, self._on_output)
        self._loop.add_reader(self._proc.exit_fd(), self._on_exit)

    async def _fork(self, template: Template) -> None:
        """Snapshot start: a fork of the version's template, which did Init already. The
        template's Init output opens this environment's log, as if it had run here."""
        port = await self._api.start()
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._out_fd = read_fd
        try:
            self._proc = await template.fork(
                env_id=self.id,
                output_fd=write_fd,
                runtime_api=f"127.0.0.1:{port}",
                log_stream=self.log_stream,
                init_type=self.init_type,
            )
        except BaseException:
            self._api.close()
            self._close_output()
            self.state = "dead"
            raise
        finally:
            with contextlib.suppress(OSError):
                os.close(write_fd)
        self._lines = list(template.init_lines)
        self._loop.add_reader(read_fd, self._on_output)
        self._loop.add_reader(self._proc.exit_fd(), self._on_exit)

    def stop(self) -> None:
        """Kill the tree and release everything. Idempotent. The exit is reaped by _on_exit."""
        if self._proc is not None and not self._exited.done():
            self._proc.kill()
        self._api.close()
        self._mark_dead()

    async def wait_ready(self, timeout_s: float) -> None:
        """Until Init is done (the runtime's first /next); raises if it failed or took too long.
        Used to initialise ahead of traffic (provisioned concurrency)."""
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self._ready)
        self._drain_output()

    async def wait_exited(self) -> None:
        """Until the runtime process has exited and been reaped."""
        if self._proc is not None:
            await asyncio.shield(self._exited)

    # -- invoking --------------------------------------------------------------------------------

    async def invoke(self, inv: Invocation, *, may_lose: bool = False) -> Outcome:
        """Run one invocation. With `may_lose`, raises EnvironmentLost if the environment dies
        before its runtime has fetched the event (the caller runs it elsewhere)."""
        self.state = "busy"
        self.invocations += 1
        self._may_lose = may_lose
        ready = self._ready
        # a spare's first invocation reports the Init it did ahead of need
        first_of_spare = self.proactive and self.invocations == 1
        if ready.done() and ready.exception() is None:  # warm: no Init to wait for
            return await self._run(inv, first_of_spare)
        cold = not ready.done() or first_of_spare
        try:
            async with asyncio.timeout(self.init_timeout_s):
                await asyncio.shield(self._ready)
        except TimeoutError:
            self._peak_memory()
            self.stop()
            return self._init_failed(
                InitFailure(
                    "Sandbox.Timedout",
                    payload=_error_payload(
                        "Sandbox.Timedout",
                        f"RequestId: {inv.request_id} Error: Task timed out after "
                        f"{self.init_timeout_s:.2f} seconds",
                    ),
                    status="timeout",
                )
            )
        except InitFailure as failure:
            self.stop()
            return self._init_failed(failure, inv.request_id)
        return await self._run(inv, cold)

    def _init_failed(self, failure: InitFailure, request_id: str = "") -> Outcome:
        """The Init phase failed: its output and report come before the invocation's START."""
        self._drain_output()
        init_lines, self._lines = self._lines, []
        if self.init_duration_ms is None:
            self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
        outcome = Outcome(
            status=failure.status,
            payload=failure.payload_for(request_id),
            function_error="Unhandled",
            error_type=failure.error_type,
            duration_ms=(time.perf_counter() - self._started_at) * 1000,
            init_duration_ms=self.init_duration_ms,
            init_failed=True,
            init_lines=init_lines,
        )
        return self._finish(outcome)

    async def _run(self, inv: Invocation, cold: bool) -> Outcome:
        timeout_s = self.spec.timeout_s
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(_now_ms() + timeout_s * 1000)),
            ("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn),
            ("Lambda-Runtime-Trace-Id", inv.trace_id),
        ]
        if inv.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", inv.client_context))
        if inv.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", inv.cognito_identity))
        if inv.tenant_id is not None:
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", inv.tenant_id))
        event = NextEvent(headers, inv.payload)
        self._unpark()
        if cold:
            # Init's output so far is the Init phase's (later output arrives through the reader
            # callback, or is read when the response comes).
            self._drain_output()
        init_lines, self._lines = self._lines, []
        self._request_id = inv.request_id
        self._answered = False
        self._delivered = False
        self._stream = inv.stream
        result = self._result = self._loop.create_future()
        started = time.perf_counter()
        waiter, self._waiter = self._waiter, None
        if waiter is None or not waiter(event):  # written to the runtime now, if it still waits
            self._queued = event  # for the runtime's next `/next` (a new connection, say)
        # The deadline: one timer, cheaper than an asyncio.timeout scope around the wait.
        deadline = self._loop.call_later(timeout_s, _expire, result)
        try:
            outcome = await result
        except _DeadlineExceeded:
            duration_ms = (time.perf_counter() - started) * 1000
            memory = self._peak_memory()
            self.stop()
            self._drain_output()
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            self._lines.append(
                (
                    _now_ms(),
                    f"{stamp} {inv.request_id} Task timed out after {timeout_s:.2f} seconds",
                )
            )
            outcome = Outcome(
                status="timeout",
                payload=_error_payload(
                    "Sandbox.Timedout",
                    f"RequestId: {inv.request_id} Error: Task timed out after {timeout_s:.2f} seconds",
                ),
                function_error="Unhandled",
                error_type="Sandbox.Timedout",
                duration_ms=duration_ms,
                max_memory_mb=memory,
            )
        except asyncio.CancelledError:
            self.stop()
            raise
        else:
            outcome.duration_ms = (time.perf_counter() - started) * 1000
        finally:
            deadline.cancel()
            self._result = None
            self._request_id = None
            self._queued = None
            self._stream = None
        if cold:
            outcome.init_duration_ms = self.init_duration_ms
        outcome.init_lines = init_lines
        return self._finish(outcome)

    def _finish(self, outcome: Outcome) -> Outcome:
        if outcome.max_memory_mb == 0:
            outcome.max_memory_mb = self._peak_memory()
        if self._answered:
            # Read when the runtime posted its answer: it wrote its output before that.
            self._answered = False
        else:
            self._drain_output()
        if self._partial:  # output without a final newline belongs to this invocation too
            self._lines.append((_now_ms(), self._partial.decode("utf-8", "replace")))
            self._partial = b""
        outcome.log_stream = self.log_stream
        outcome.log_lines, self._lines = self._lines, []
        if self.state == "busy":
            self.state = "ready"
        self.last_used = time.monotonic()
        self._park()
        return outcome

    # -- freeze between invocations --------------------------------------------------------------

    def _park(self) -> None:
        """Freeze the environment once it has been idle for `freeze_delay_s`.

        As on Lambda, a frozen runtime does not run between invocations, and it is frozen only
        once it has asked for its next event, so the thawed runtime's request is already there
        when the next invocation comes. The delay keeps busy environments out of the freeze:
        back-to-back invocations skip the freeze/thaw pair (two cgroup writes and a wake-up).
        One timer per environment, re-armed when it fires rather than on every invocation: an
        environment in steady use costs no timer work per call. With a delay of 0 the
        environment is frozen as soon as its response has gone out (call_soon).
        """
        if (
            self.state != "ready"
            or self._frozen
            or self._freeze_timer is not None
            or self._waiter is None
            or self._proc is None
        ):
            return
        if self.freeze_delay_s > 0:
            self._freeze_timer = self._loop.call_later(self.freeze_delay_s, self._freeze_due)
        else:
            self._freeze_timer = self._loop.call_soon(self._freeze_due)

    def _freeze_due(self) -> None:
        self._freeze_timer = None
        if self.state != "ready" or self._frozen or self._proc is None or self._waiter is None:
            return  # busy, dead or not yet waiting: the end of the next invocation re-arms
        idle_s = time.monotonic() - self.last_used
        if idle_s + 0.001 < self.freeze_delay_s:  # used since the timer was armed
            self._freeze_timer = self._loop.call_later(
                self.freeze_delay_s - idle_s, self._freeze_due
            )
            return
        self._proc.freeze()
        self._frozen = True

    def _unpark(self) -> None:
        """Thaw before an invocation. A pending freeze timer stays: it re-checks when it fires."""
        if self._frozen and self._proc is not None:
            self._proc.thaw()
        self._frozen = False

    def _peak_memory(self) -> int:
        """Peak memory of the runtime so far; read from the process only while it runs."""
        if self._proc is not None and not self._exited.done():
            self._peak_mb = max(self._peak_mb, self._proc.peak_memory_mb())
        return self._peak_mb

    # -- RuntimeAPIHandler -----------------------------------------------------------------------

    def next_invocation(self, deliver: Callable[[NextEvent], bool]) -> None:
        if not self._ready.done():
            self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
            log.debug("environment %s ready after %.2f ms", self.id, self.init_duration_ms)
            if self.state == "starting":  # no invocation is waiting for this Init
                self.state = "ready"
            self._ready.set_result(None)
        if self._queued is not None:
            event, self._queued = self._queued, None
            if not deliver(event):
                self._queued = event
        else:
            self._waiter = deliver
            self._park()

    def event_delivered(self) -> None:
        """The runtime's `/next` has been answered with the current event."""
        self._delivered = True

    def stream_started(
        self, request_id: str, headers: Mapping[str, str]
    ) -> Callable[[bytes], None] | None:
        """A response in the streaming mode begins: its chunks go to the invocation's stream,
        when it has one (otherwise they are collected like any response)."""
        stream = self._stream
        if stream is None or self._take_result(request_id) is None:
            return None
        stream.start(headers.get("content-type") or "application/octet-stream")
        return stream.write

    def invocation_response(self, request_id: str, body: bytes, headers: Mapping[str, str]) -> int:
        result = self._take_result(request_id)
        if result is None:
            return 400
        self._drain_output()
        self._answered = True
        if "lambda-runtime-function-error-type" in headers:  # a streamed response's trailers
            payload, error_type = _stream_error(headers)
            result.set_result(
                Outcome(
                    status="error",
                    payload=payload,
                    function_error="Unhandled",
                    error_type=error_type,
                )
            )
            return 202
        result.set_result(
            Outcome(
                status="success",
                payload=body,
                content_type=headers.get("content-type") or "application/json",
            )
        )
        return 202

    def invocation_error(self, request_id: str, body: bytes, headers: Mapping[str, str]) -> int:
        result = self._take_result(request_id)
        if result is None:
            return 400
        self._drain_output()
        self._answered = True
        payload, error_type = _error_document(body, headers)
        result.set_result(
            Outcome(
                status="error",
                payload=payload,
                function_error="Unhandled",
                error_type=error_type,
            )
        )
        return 202

    def init_error(self, body: bytes, headers: Mapping[str, str]) -> int:
        if self._ready.done():
            return 403
        payload, error_type = _error_document(body, headers)
        self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
        self._drain_output()  # the runtime logged the error before posting it
        self._peak_memory()
        self._ready.set_exception(InitFailure(error_type, payload=payload))
        # The runtime exits by itself after reporting; make sure it does.
        self._loop.call_later(0.5, self.stop)
        return 202

    def response_too_large(self, request_id: str) -> None:
        result = self._take_result(request_id)
        if result is not None:
            result.set_result(
                Outcome(
                    status="error",
                    payload=_error_payload(
                        "Function.ResponseSizeTooLarge",
                        "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    ),
                    function_error="Unhandled",
                    error_type="Function.ResponseSizeTooLarge",
                )
            )

    def _take_result(self, request_id: str) -> asyncio.Future[Outcome] | None:
        if request_id != self._request_id or self._result is None or self._result.done():
            return None
        return self._result

    # -- process events --------------------------------------------------------------------------

    def _on_exit(self) -> None:
        proc = self._proc
        if proc is None or self._exited.done():
            return
        # The leader is a zombie until polled, so its group id cannot be reused yet: kill
        # whatever the runtime left behind in its group, then reap it.
        exit_fd = proc.exit_fd()  # before poll(): a sandbox may close it once reaped
        proc.kill()
        code = proc.poll()
        if code is None:
            return
        oom = proc.oom_killed()
        if oom:
            code = -signal.SIGKILL
        self._peak_mb = max(self._peak_mb, proc.peak_memory_mb())  # the cgroup's, kept after exit
        self._exit_code = code
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(exit_fd)
        self._exited.set_result(None)
        if self.state == "dead":  # stopped by Lamina: nothing to report
            return
        self._drain_output()
        reason = exit_reason(code)
        if not self._ready.done():
            self.init_duration_ms = (time.perf_counter() - self._started_at) * 1000
            self._ready.set_exception(
                InitFailure("Runtime.ExitError", exit_reason=reason, status="crash")
            )
        if (
            self._result is not None
            and not self._result.done()
            and not self._delivered
            and self._may_lose
        ):
            self._result.set_exception(EnvironmentLost())
        if self._result is not None and not self._result.done():
            rid = self._request_id
            kind = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
            self._lines.append((_now_ms(), f"RequestId: {rid} Error: {reason}\n{kind}"))
            self._result.set_result(
                Outcome(
                    status="crash",
                    payload=_error_payload(
                        "Runtime.ExitError", f"RequestId: {rid} Error: {reason}"
                    ),
                    function_error="Unhandled",
                    error_type="Runtime.ExitError",
                )
            )
        self._api.close()
        self._mark_dead()

    def _on_output(self) -> None:
        self._drain_output()

    def _drain_output(self) -> None:
        fd = self._out_fd
        if fd < 0:
            return
        chunks = []
        eof = False
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
        if chunks:
            data = self._partial + b"".join(chunks)
            *lines, self._partial = data.split(b"\n")
            now = _now_ms()
            self._lines.extend((now, line.decode("utf-8", "replace")) for line in lines)
        if eof:
            if self._partial:
                self._lines.append((_now_ms(), self._partial.decode("utf-8", "replace")))
                self._partial = b""
            self._close_output()

    def _close_output(self) -> None:
        if self._out_fd >= 0:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._out_fd)
            with contextlib.suppress(OSError):
                os.close(self._out_fd)
            self._out_fd = -1

    def _mark_dead(self) -> None:
        if self.state == "dead":
            return
        self.state = "dead"
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        if self.template is not None and self._proc is not None:
            self.template.forget(self.id)
        if not self._ready.done():
            self._ready.set_exception(
                InitFailure(
                    "Runtime.ExitError",
                    exit_reason="Runtime exited without providing a reason",
                    status="crash",
                )
            )
            self._ready.exception()  # retrieved: nobody may be waiting
        self._waiter = None  # the runtime's connection is closed with the listener
        if self.on_dead is not None:
            self.on_dead(self)

    def _fail_start(self, message: str, error_type: str) -> None:
        self._ready.set_exception(
            InitFailure(error_type, payload=_error_payload(error_type, message))
        )
        self._api.close()
        self._close_output()
        self.state = "dead"

    # -- the variables a runtime sees ------------------------------------------------------------

    def _variables(
        self,
        runtime_api: str,
        execution_env: str | None,
        bin_dir: str | None,
        runtime_dir: str,
    ) -> dict[str, str]:
        return runtime_variables(
            self.spec,
            self.log_stream,
            runtime_api,
            execution_env,
            bin_dir,
            runtime_dir,
            self.init_type,
        )


def runtime_variables(
    spec: EnvironmentSpec,
    log_stream: str,
    runtime_api: str,
    execution_env: str | None,
    bin_dir: str | None,
    runtime_dir: str,
    init_type: str = "on-demand",
) -> dict[str, str]:
    """The variables a runtime starts with (a template's forks replace the per-environment ones)."""
    task_root = str(spec.task_root)
    opt = str(spec.opt_dir) if spec.opt_dir is not None else "/opt"
    path = ":".join(p for p in (bin_dir, "/usr/local/bin", "/usr/bin/", "/bin", f"{opt}/bin") if p)
    env = dict(spec.variables)  # the function's own come first; the platform's win
    env.update(
        {
            "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "lamina"),
            "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "lamina"),
            "AWS_SESSION_TOKEN": env.get("AWS_SESSION_TOKEN", "lamina"),
        }
    )
    if spec.api_endpoint:
        env.setdefault("AWS_ENDPOINT_URL", endpoint_inside(spec.api_endpoint))
    env.update(
        {
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": path,
            "LD_LIBRARY_PATH": f"/lib64:/usr/lib64:{runtime_dir}:{task_root}:{task_root}/lib:{opt}/lib",
            "_HANDLER": spec.handler,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "_AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1",
            "_AWS_XRAY_DAEMON_PORT": "2000",
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": runtime_dir,
        }
    )
    env.update(layer_variables(opt, layered=spec.opt_dir is not None))
    if execution_env:
        env["AWS_EXECUTION_ENV"] = execution_env
    if spec.log_format == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if spec.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level
    return env


def _error_document(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, str]:
    """The error payload a caller gets, and its errorType, from a runtime's error post."""
    header_type = headers.get("lambda-runtime-function-error-type")
    try:
        doc = json.loads(body) if body else None
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        doc = None
    if isinstance(doc, dict):
        error_type = doc.get("errorType") or header_type or "Runtime.Unknown"
        return body, str(error_type)
    error_type = header_type or "Runtime.Unknown"
    return _error_payload(error_type, body.decode("utf-8", "replace")), error_type


def _stream_error(headers: Mapping[str, str]) -> tuple[bytes, str]:
    """The error a runtime reported in a streamed response's trailers (the body is base64)."""
    error_type = headers.get("lambda-runtime-function-error-type") or "Runtime.Unknown"
    try:
        body = base64.b64decode(headers.get("lambda-runtime-function-error-body", ""))
    except ValueError:
        body = b""
    return _error_document(body, {"lambda-runtime-function-error-type": error_type})

"""The synchronous invoke path, in the order a call takes it:

1. resolve the name and qualifier to the configuration of the version that runs (memory only,
   no database read; an alias with weights chooses its version per call);
2. admit the call against account and reserved concurrency (429 with Lambda's Reason);
3. run it in a warm environment of that configuration, or a new one (runtime/pool.py);
4. frame the environment's output with START/END/REPORT and hand it to the log store.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lamina.control import layers_tree
from lamina.control.code_store import CodeStore
from lamina.control.hot_reload import Watch
from lamina.control.model import FunctionConfig, Target
from lamina.control.names import FunctionRef
from lamina.control.registry import Registry
from lamina.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    TooManyRequestsException,
)
from lamina.invoke.admission import Admission
from lamina.observe.logs import LogStore
from lamina.runtime.pool import HostMemoryLow, Pool
from lamina.runtime.spec import EnvironmentSpec, Invocation, Outcome, ResponseStream

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class InvokeResult:
    payload: bytes
    content_type: str
    executed_version: str
    function_error: str | None
    log_tail: str | None  # base64 of the last 4 KB of the invocation's log, when asked for
    outcome: Outcome


_IDS = random.Random()  # its own generator (seeded from the OS): nobody else's seed() reaches it


def new_trace_id() -> str:
    # Trace ids only need to be unique, not secret: no system call for them.
    rand = f"{_IDS.getrandbits(160):040x}"
    return f"Root=1-{int(time.time()):08x}-{rand[:24]};Parent={rand[24:]};Sampled=0"


CLIENT_CONTEXT_MAX = 3583  # base64 characters (AWS's documented limit)


def decode_client_context(value: str | None) -> str | None:
    """X-Amz-Client-Context is base64 JSON; the runtime gets the decoded JSON."""
    if not value:
        return None
    if len(value) > CLIENT_CONTEXT_MAX:
        raise InvalidParameterValueException(
            f"Client context must be at most {CLIENT_CONTEXT_MAX} bytes of base64-encoded data."
        )
    try:
        text = base64.b64decode(value, validate=True).decode()
        # The runtime hands the object to the handler's context: anything else breaks it there.
        if not isinstance(json.loads(text), dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError) as exc:  # binascii.Error and UnicodeDecodeError too
        raise InvalidParameterValueException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from exc
    return text


class Dispatcher:
    def __init__(
        self,
        *,
        registry: Registry,
        code: CodeStore,
        pool: Pool,
        admission: Admission,
        logs: LogStore,
        api_endpoint: str,
    ) -> None:
        self.registry = registry
        self.code = code
        self.pool = pool
        self.admission = admission
        self.logs = logs
        self.api_endpoint = api_endpoint
        self.hot_reload = Watch()
        self._specs: dict[tuple[str, str, str, str], EnvironmentSpec] = {}

    def resolve(self, region: str, ref: FunctionRef, qualifier: str | None) -> FunctionConfig:
        """The configuration one invocation runs (a weighted alias chooses per call)."""
        return self.target(region, ref, qualifier).config

    def target(self, region: str, ref: FunctionRef, qualifier: str | None) -> Target:
        """`Registry.target`, refused while the version cannot run (still Pending)."""
        target = self.registry.target(region, ref, qualifier)
        cfg = target.config
        if cfg.state != "Active":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. "
                f"The function is currently in the following state: {cfg.state}"
            )
        return target

    async def invoke(
        self,
        cfg: FunctionConfig,
        payload: bytes,
        *,
        invoked_arn: str,
        log_tail: bool = False,
        client_context: str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
        stream: ResponseStream | None = None,
    ) -> InvokeResult:
        record = self.registry.find(cfg.region, cfg.name)
        if record is None:  # deleted since it was resolved
            record = self.registry.record(cfg.region, FunctionRef(cfg.name, None, None, None))
        try:
            lease = self.admission.acquire(
                record.key,
                record.reserved_concurrency,
                self.registry.unreserved_concurrency(cfg.region),
            )
        except TooManyRequestsException:
            self.pool.counters[(cfg.region, cfg.name, cfg.version)].throttles += 1
            raise
        try:
            invocation = Invocation(
                request_id=request_id or str(uuid.uuid4()),
                payload=payload,
                invoked_arn=invoked_arn,
                trace_id=trace_id or new_trace_id(),
                client_context=client_context,
                stream=stream,
            )
            if cfg.code.local_path is not None:
                await self._reload_if_changed(cfg, cfg.code.local_path)
            outcome = await self.pool.invoke(self._spec(cfg), invocation)
        except HostMemoryLow as exc:
            raise TooManyRequestsException(
                "ConcurrentInvocationLimitExceeded", f"Rate Exceeded: {exc}"
            ) from exc
        finally:
            self.admission.release(lease)
        tail = None
        if log_tail:
            lines = self._record_logs(cfg, invocation.request_id, outcome)
            text = "".join(f"{msg}\n" for _, msg in lines)
            tail = base64.b64encode(text.encode()[-LOG_TAIL_BYTES:]).decode()
        else:
            # Framed and stored once the caller's answer has gone out (the next loop turn, before
            # any later request runs, so a caller reading its logs next still finds them).
            asyncio.get_running_loop().call_soon(
                self._record_logs, cfg, invocation.request_id, outcome
            )
        return InvokeResult(
            payload=outcome.payload,
            content_type=outcome.content_type,
            executed_version=cfg.version,
            function_error=outcome.function_error,
            log_tail=tail,
            outcome=outcome,
        )

    async def close(self) -> None:
        """Nothing runs in the background here any more (the async worker owns Event calls)."""

    def spec(self, cfg: FunctionConfig) -> EnvironmentSpec:
        """What an environment of this configuration is started from (provisioning uses it)."""
        return self._spec(cfg)

    async def _reload_if_changed(self, cfg: FunctionConfig, folder: str) -> None:
        """Hot reloading: warm environments that started from older files are retired."""
        group = (cfg.region, cfg.name, cfg.version)
        if await asyncio.to_thread(self.hot_reload.changed, group, folder):
            self.pool.retire(*group)

    def _spec(self, cfg: FunctionConfig) -> EnvironmentSpec:
        cache_key = (cfg.region, cfg.name, cfg.version, cfg.revision_id)
        spec = self._specs.get(cache_key)
        if spec is None:
            spec = EnvironmentSpec(
                key=cfg.execution_key(),
                function_name=cfg.name,
                version=cfg.version,
                region=cfg.region,
                account_id=cfg.account_id,
                runtime=cfg.runtime,
                handler=cfg.handler,
                task_root=(
                    Path(cfg.code.local_path)
                    if cfg.code.local_path
                    else self.code.tree_path(cfg.code.sha256_hex)
                ),
                # built when the layers were attached; again here only if it went missing
                opt_dir=layers_tree.build_opt_tree(self.code, [ref.code for ref in cfg.layers]),
                memory_mb=cfg.memory_mb,
                timeout_s=cfg.timeout_s,
                ephemeral_mb=cfg.ephemeral_mb,
                variables=dict(cfg.environment or {}),
                log_group=cfg.effective_log_group,
                log_format=cfg.log_format,
                log_level=cfg.application_log_level,
                api_endpoint=self.api_endpoint,
            )
            if len(self._specs) > 4096:
                self._specs.clear()
            self._specs[cache_key] = spec
        return spec

    def _record_logs(
        self, cfg: FunctionConfig, request_id: str, outcome: Outcome
    ) -> list[tuple[int, str]]:
        """Frame the invocation's output as Lambda does and store it.

        Returns the invocation's own log events (what LogType=Tail shows the end of): the output
        of the Init phase when this call ran it, then START, the function's output, END, REPORT.
        """
        now = int(time.time() * 1000)
        cold = outcome.init_duration_ms is not None
        invocation: list[tuple[int, str]] = list(outcome.init_lines)
        if outcome.init_failed:
            invocation.append(
                (
                    now,
                    f"INIT_REPORT Init Duration: {outcome.init_duration_ms or 0.0:.2f} ms\t"
                    f"Phase: init\tStatus: error\tError Type: {outcome.error_type}",
                )
            )
        start_ts = outcome.log_lines[0][0] if outcome.log_lines else now
        invocation.append((start_ts, f"START RequestId: {request_id} Version: {cfg.version}"))
        invocation.extend(outcome.log_lines)
        invocation.append((now, f"END RequestId: {request_id}"))
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(outcome.duration_ms))} ms\t"
            f"Memory Size: {cfg.memory_mb} MB\tMax Memory Used: {outcome.max_memory_mb} MB\t"
        )
        if cold and not outcome.init_failed:
            report += f"Init Duration: {outcome.init_duration_ms:.2f} ms\t"
        if outcome.status == "timeout":
            report += "Status: timeout"
        elif outcome.status != "success" and (outcome.init_failed or outcome.status == "crash"):
            report += f"Status: error\tError Type: {outcome.error_type}"
        invocation.append((now, report))
        events = invocation
        if cold:
            first = invocation[0][0]
            events = [(first, self._init_start_line(cfg)), *invocation]
        self.logs.append(cfg.region, cfg.effective_log_group, outcome.log_stream, events)
        return invocation

    @staticmethod
    def _init_start_line(cfg: FunctionConfig) -> str:
        runtime_hash = hashlib.sha256(cfg.runtime.encode()).hexdigest()
        return (
            f"INIT_START Runtime Version: {cfg.runtime.replace('python', 'python:')}.v1\t"
            f"Runtime Version ARN: arn:aws:lambda:{cfg.region}::runtime:{runtime_hash}"
        )

"""What the Linux sandbox costs: start-up against a plain process, freeze/thaw, cold and warm invokes.

    .venv/bin/python bench/sandbox.py [--rounds N]

1. spawn -> exit of `python -I -S -c pass` through each sandbox (cases interleaved per round);
2. freeze() and thaw() of a running environment (one cgroup write each, or SIGSTOP/SIGCONT);
3. through real servers (LAMINA_SANDBOX=process vs auto): cold invoke (a new function each
   time) and warm invoke (the same one; with the Linux sandbox this includes thaw + freeze).
Prints medians and p90 in ms and the ratios; the machine is shared, so read them as orders.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lamina.sandbox import ProcessSandbox, Sandbox, SandboxSpec, choose


def _stats(samples: list[float]) -> str:
    s = sorted(samples)
    p90 = s[min(len(s) - 1, int(len(s) * 0.9))]
    return f"median {statistics.median(s):7.2f} ms  p90 {p90:7.2f} ms  (n={len(s)})"


def _spawn_and_wait(sandbox: Sandbox, code: Path) -> float:
    r, w = os.pipe()
    started = time.perf_counter()
    proc = sandbox.spawn(
        SandboxSpec(
            argv=[sys.executable, "-I", "-S", "-c", "pass"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=code,
            output_fd=w,
            task_root=code,
        )
    )
    os.close(w)
    select.select([proc.exit_fd()], [], [], 30)
    proc.poll()
    took = (time.perf_counter() - started) * 1000
    proc.kill()
    os.close(r)
    return took


def bench_spawn(rounds: int) -> dict[str, list[float]]:
    state = Path(tempfile.mkdtemp(prefix="lamina-bench-sandbox-"))
    code = state / "code"
    code.mkdir()
    cases: dict[str, Sandbox] = {"none": ProcessSandbox(), "linux": choose("auto", state / "sb")}
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, sb in cases.items():
            out[name].append(_spawn_and_wait(sb, code))
    freeze: list[float] = []
    thaw: list[float] = []
    r, w = os.pipe()
    proc = cases["linux"].spawn(
        SandboxSpec(
            argv=[sys.executable, "-I", "-S", "-c", "import time\nwhile True: time.sleep(0.001)"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=code,
            output_fd=w,
            task_root=code,
        )
    )
    os.close(w)
    time.sleep(0.3)
    for _ in range(rounds * 3):
        t = time.perf_counter()
        proc.freeze()
        freeze.append((time.perf_counter() - t) * 1000)
        time.sleep(0.01)
        t = time.perf_counter()
        proc.thaw()
        thaw.append((time.perf_counter() - t) * 1000)
        time.sleep(0.01)
    proc.kill()
    os.close(r)
    for sb in cases.values():
        sb.close()
    out["freeze"], out["thaw"] = freeze, thaw
    print(f"sandbox: {cases['linux'].name}")
    return out


def bench_server(rounds: int) -> dict[str, list[float]]:
    from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, function_zip
    from tests.integration.lamina_process import LaminaProcess

    out: dict[str, list[float]] = {}
    for mode in ("process", "auto"):
        os.environ["LAMINA_SANDBOX"] = mode
        server = LaminaProcess(Path(tempfile.mkdtemp(prefix="lamina-bench-sandbox-")))
        server.start()
        client = client_for(server.endpoint)

        def invoke(name: str, client: object = client) -> float:
            t = time.perf_counter()
            resp = client.invoke(FunctionName=name, Payload=b"{}")  # type: ignore[attr-defined]
            resp["Payload"].read()
            assert "FunctionError" not in resp, resp
            return (time.perf_counter() - t) * 1000

        def create(client: object = client) -> str:
            name = f"bench-{uuid.uuid4().hex[:8]}"
            client.create_function(  # type: ignore[attr-defined]
                FunctionName=name,
                Runtime=PYTHON_RUNTIME,
                Role=ROLE,
                Handler="echo.handler",
                Code={"ZipFile": function_zip("echo")},
                Timeout=30,
            )
            return name

        try:
            cold = []
            for _ in range(rounds):
                cold.append(invoke(create()))
            warm_name = create()
            invoke(warm_name)
            warm = [invoke(warm_name) for _ in range(rounds * 5)]
        finally:
            server.stop()
        label = "none" if mode == "process" else "linux"
        out[f"cold invoke, {label}"] = cold
        out[f"warm invoke, {label}"] = warm
    os.environ.pop("LAMINA_SANDBOX", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results = bench_spawn(args.rounds)
    results.update(bench_server(max(5, args.rounds // 2)))
    for name, samples in results.items():
        print(f"{name:24} {_stats(samples)}")
    med: Callable[[str], float] = lambda k: statistics.median(results[k])  # noqa: E731
    print(
        json.dumps(
            {
                "spawn ratio linux/none": round(med("linux") / med("none"), 2),
                "spawn added ms": round(med("linux") - med("none"), 2),
                "cold invoke ratio": round(med("cold invoke, linux") / med("cold invoke, none"), 2),
                "warm invoke ratio": round(med("warm invoke, linux") / med("warm invoke, none"), 2),
            }
        )
    )


if __name__ == "__main__":
    main()

"""CPU in proportion to memory: a CPU-bound function at 128 MB vs at 1,769 MB on a contended host.

Starts a Lamina server, deploys the same CPU-bound handler at both sizes, and runs N invocations of
each at the same time (2N busy environments on this machine's CPUs), several rounds. Prints the
median handler duration of each size and their ratio; without a CPU rule the ratio is about 1.
Usage: python bench/cpu_share.py [--parallel 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from tests.integration.lamina_process import LaminaProcess  # noqa: E402

HANDLER = """
import time
def handler(event, context):
    start = time.perf_counter()
    x = 0
    for i in range(event["n"]):
        x += i * i
    return {"seconds": time.perf_counter() - start}
"""


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", HANDLER)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=3, help="concurrent invocations of each size")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=6_000_000, help="loop iterations per invocation")
    args = ap.parse_args()
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        server = LaminaProcess(Path(tmp) / "data")
        endpoint = server.start()
        try:
            lam = boto3.client(
                "lambda",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
                config=Config(
                    retries={"max_attempts": 0}, read_timeout=300, max_pool_connections=64
                ),
            )
            sizes = (128, 1769)
            for mb in sizes:
                lam.create_function(
                    FunctionName=f"cpu-{mb}",
                    Runtime=runtime,
                    Role="arn:aws:iam::000000000000:role/x",
                    Handler="app.handler",
                    Code={"ZipFile": _zip()},
                    MemorySize=mb,
                    Timeout=300,
                )
                lam.get_waiter("function_active_v2").wait(FunctionName=f"cpu-{mb}")

            def call(mb: int) -> float:
                resp = lam.invoke(FunctionName=f"cpu-{mb}", Payload=json.dumps({"n": args.n}))
                return float(json.loads(resp["Payload"].read())["seconds"])

            results: dict[int, list[float]] = {mb: [] for mb in sizes}
            with ThreadPoolExecutor(2 * args.parallel) as pool:
                for _ in range(args.rounds):
                    jobs = [
                        (mb, pool.submit(call, mb)) for mb in sizes for _ in range(args.parallel)
                    ]
                    for mb, job in jobs:
                        results[mb].append(job.result())
            small, large = (statistics.median(results[mb]) for mb in sizes)
            print(
                f"sandbox line: {next((ln.strip() for ln in server.output if 'sandbox' in ln), '?')}"
            )
            print(
                f"{args.parallel} + {args.parallel} concurrent CPU-bound invocations, {args.rounds} rounds"
            )
            print(f"  128 MB:   median {small:.2f} s")
            print(f"  1769 MB:  median {large:.2f} s")
            print(f"  ratio 128 MB / 1769 MB: {small / large:.2f}x slower")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

"""Start and stop a real `lamina server` process for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_LISTENING = re.compile(r"Lamina is listening on (http://\S+)")


class LaminaProcess:
    """A `python -m lamina server` on a free port with its own data dir."""

    def __init__(self, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.output: list[str] = []

    def start(self, timeout_s: float = 30.0) -> str:
        cmd = [
            sys.executable,
            "-m",
            "lamina",
            "server",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        self.output = []
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            m = _LISTENING.search(line)
            if m:
                self.endpoint = m.group(1)
                threading.Thread(target=self._pump, daemon=True).start()
                self._wait_ready(deadline)
                return self.endpoint
        self.kill()
        raise RuntimeError("lamina server did not start:\n" + "".join(self.output))

    def _wait_ready(self, deadline: float) -> None:
        import urllib.error
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/2015-03-31/functions", timeout=2).read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

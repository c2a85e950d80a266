"""The plain-process sandbox watches exits with a pidfd, or a waiting thread where there is none."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest

from lamina.sandbox.process import exit_descriptor


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "thread"])
def test_exit_descriptor_becomes_readable_when_the_process_exits(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)  # as on macOS
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("this host has no pidfd_open")
    popen = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    fd = exit_descriptor(popen)
    try:
        readable, _, _ = select.select([fd], [], [], 30)
        assert readable == [fd]
        assert popen.wait(5) == 3
    finally:
        os.close(fd)

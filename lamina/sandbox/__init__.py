"""Process isolation and limits. Knows nothing of Lambda: it starts a command tree and stops it."""

from lamina.sandbox.process import ProcessSandbox
from lamina.sandbox.protocol import Sandbox, SandboxedProcess, SandboxSpec

__all__ = ["ProcessSandbox", "Sandbox", "SandboxSpec", "SandboxedProcess"]

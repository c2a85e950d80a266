"""Pure rules of the sandbox: the CPU share for a memory size, the guarantees' vocabulary."""

from __future__ import annotations

import pytest

from lamina.sandbox import ProcessSandbox
from lamina.sandbox.cgroups import cpu_for_memory
from lamina.sandbox.host import HostProbe


@pytest.mark.parametrize(
    ("memory_mb", "weight", "shares", "max_vcpus"),
    [
        (128, 7, 74, 1),
        (1769, 100, 1024, 1),
        (1770, 100, 1025, 2),
        (3008, 170, 1741, 2),
        (10240, 579, 5928, 6),
    ],
)
def test_cpu_is_proportional_to_memory(
    memory_mb: int, weight: int, shares: int, max_vcpus: int
) -> None:
    cpu = cpu_for_memory(memory_mb, host_cpus=8)
    assert (cpu.weight, cpu.shares, cpu.max_vcpus) == (weight, shares, max_vcpus)


def test_cpu_cap_never_exceeds_the_host() -> None:
    assert cpu_for_memory(10240, host_cpus=2).max_vcpus == 2


def test_every_sandbox_reports_the_same_guarantees() -> None:
    bare = HostProbe(platform="darwin", root=False)
    assert set(bare.guarantees()) == set(ProcessSandbox().guarantees())
    assert all(not v.startswith("enforced") for v in bare.guarantees().values())


def test_seccomp_filter_compiles() -> None:
    from lamina.sandbox import seccomp

    if seccomp.available() is not None:
        pytest.skip(str(seccomp.available()))
    bpf = seccomp.filter_bpf()
    assert len(bpf) % 8 == 0 and len(bpf) > 8 * len(seccomp.DENIED)

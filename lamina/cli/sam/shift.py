"""DeploymentPreference as a weighted alias shift (CodeDeploy is not emulated).

`Canary<P>Percent<N>Minutes`: the alias keeps the old version and sends P% to the new one for N
minutes, then all traffic moves. `Linear<P>PercentEvery<N>Minute(s)`: P%, 2P%, ... each for N
minutes, then all. `AllAtOnce` (and any other configuration name): the alias moves at once.
Each step is an UpdateAlias with `RoutingConfig.AdditionalVersionWeights`, which Lamina's invoke
path honours; `--traffic-shift-scale` shortens (or, at 0, skips) the waits.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

_CANARY = re.compile(r"Canary(\d+)Percent(\d+)Minutes?")
_LINEAR = re.compile(r"Linear(\d+)PercentEvery(\d+)Minutes?")


def short_name(config_name: str) -> str:
    """`CodeDeployDefault.LambdaCanary10Percent5Minutes` -> `Canary10Percent5Minutes`."""
    return config_name.removeprefix("CodeDeployDefault.").removeprefix("Lambda")


def steps(config_name: str) -> list[tuple[float, float]]:
    """(weight of the new version, seconds to hold it) before the alias moves entirely."""
    name = short_name(config_name)
    if m := _CANARY.fullmatch(name):
        return [(int(m[1]) / 100, int(m[2]) * 60.0)]
    if m := _LINEAR.fullmatch(name):
        pct, minutes = int(m[1]), int(m[2])
        if pct <= 0 or pct >= 100:
            return []
        return [(k * pct / 100, minutes * 60.0) for k in range(1, math.ceil(100 / pct))]
    return []


def shift(
    lam: Any,
    *,
    function: str,
    alias: str,
    old: str,
    new: str,
    config_name: str,
    scale: float,
    echo: Callable[[str], None],
) -> None:
    plan = steps(config_name)
    if not plan and "AllAtOnce" not in config_name:
        echo(f"    {config_name}: not a Canary/Linear configuration; shifting all at once")
    for weight, hold_s in plan:
        lam.update_alias(
            FunctionName=function,
            Name=alias,
            FunctionVersion=old,
            RoutingConfig={"AdditionalVersionWeights": {new: weight}},
        )
        wait = hold_s * scale
        echo(
            f"    alias {alias}: {weight:.0%} to version {new}, {1 - weight:.0%} to version {old}"
            f" (holding {wait:.0f} s)"
        )
        time.sleep(wait)
    lam.update_alias(
        FunctionName=function,
        Name=alias,
        FunctionVersion=new,
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    echo(f"    alias {alias}: 100% to version {new}")

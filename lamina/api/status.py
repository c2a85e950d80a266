"""Lamina's own status route (not part of Lambda's API): pools, templates and counters.

`POST /lamina/drain?FunctionName=NAME` stops a function's idle environments but keeps its
template (the next call is a snapshot start); `POST /lamina/memory-floor?MB=N` changes the
memory-pressure floor (--min-available-mb) of the running server. `GET /lamina/status` (optionally
`?FunctionName=NAME`) returns, per function version, how many
environments exist (busy, idle, provisioned), how many cold starts (and how many of them were
snapshot starts), warm starts, invocations, throttles and memory-pressure evictions, plus the
host's available memory against the floor. `lamina status` prints it.
"""

from __future__ import annotations

import dataclasses

from lamina.api.http import Request, Response, Router, json_response
from lamina.errors import InvalidParameterValueException
from lamina.runtime.pool import Pool, available_memory_mb


class StatusAPI:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def mount(self, router: Router) -> None:
        router.add("GET", "/lamina/status", self.status)
        router.add("POST", "/lamina/drain", self.drain)
        router.add("POST", "/lamina/memory-floor", self.memory_floor)

    async def memory_floor(self, req: Request) -> Response:
        """Change --min-available-mb while running (tests, or an operator reacting to a host)."""
        raw = req.query_one("MB") or ""
        if not raw.isdecimal():  # what int() takes ("²" is a digit to isdigit(), not to int())
            raise InvalidParameterValueException("MB must be a whole number of megabytes.")
        self.pool.min_available_mb = int(raw)
        return json_response({"MinAvailableMemoryMB": self.pool.min_available_mb})

    async def drain(self, req: Request) -> Response:
        """Stop a function's idle environments, keeping its template (benchmarks, operators)."""
        name = req.query_one("FunctionName")
        if not name:
            raise InvalidParameterValueException("FunctionName is required.")
        return json_response({"Stopped": self.pool.drain(req.region, name)})

    async def status(self, req: Request) -> Response:
        pool = self.pool
        only = req.query_one("FunctionName")
        functions = []
        for group in pool.groups():
            region, name, version = group
            if only and name != only:
                continue
            stats = dataclasses.asdict(pool.stats(group))
            functions.append({"Region": region, "FunctionName": name, "Version": version, **stats})
        return json_response(
            {
                "Sandbox": pool.sandbox.name,
                "SnapshotStarts": pool.snapshot_starts,
                "Host": {
                    "AvailableMemoryMB": available_memory_mb(),
                    "MinAvailableMemoryMB": pool.min_available_mb,
                },
                "Totals": dataclasses.asdict(pool.stats()),
                "Functions": functions,
            }
        )

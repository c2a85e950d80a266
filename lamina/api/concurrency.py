"""Reserved concurrency (Put/Get/DeleteFunctionConcurrency) and GetAccountSettings."""

from __future__ import annotations

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control import validation
from lamina.control.code_store import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES
from lamina.control.names import parse_function_ref
from lamina.control.registry import Registry

TOTAL_CODE_SIZE = 80_530_636_800


class ConcurrencyAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def mount(self, router: Router) -> None:
        router.add("PUT", "/2017-10-31/functions/{name}/concurrency", self.put)
        router.add("GET", "/2019-09-30/functions/{name}/concurrency", self.get)
        router.add("DELETE", "/2017-10-31/functions/{name}/concurrency", self.delete)
        router.add("GET", "/2016-08-19/account-settings", self.account_settings)
        router.add("GET", "/2016-08-19/account-settings/", self.account_settings)

    async def put(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        body = req.json()
        if "ReservedConcurrentExecutions" not in body:
            raise validation.constraint_error(
                None, "reservedConcurrentExecutions", "Member must not be null"
            )
        value = validation.int_in_range(
            body["ReservedConcurrentExecutions"], "reservedConcurrentExecutions", 0, 1_000_000
        )
        value = await self.registry.put_reserved_concurrency(req.region, ref, value)
        return json_response({"ReservedConcurrentExecutions": value})

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        record = self.registry.record(req.region, ref)
        if record.reserved_concurrency is None:
            return json_response({})
        return json_response({"ReservedConcurrentExecutions": record.reserved_concurrency})

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        await self.registry.delete_reserved_concurrency(req.region, ref)
        return empty(204)

    async def account_settings(self, req: Request) -> Response:
        records = self.registry.functions(req.region)
        return json_response(
            {
                "AccountLimit": {
                    "TotalCodeSize": TOTAL_CODE_SIZE,
                    "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                    "CodeSizeZipped": MAX_ZIPPED_BYTES,
                    "ConcurrentExecutions": self.registry.account_concurrency,
                    "UnreservedConcurrentExecutions": self.registry.unreserved_concurrency(
                        req.region
                    ),
                },
                "AccountUsage": {
                    # Every version's package counts, and every layer version's, as on AWS.
                    "TotalCodeSize": sum(
                        c.code.size for r in records for c in (r.latest, *r.versions.values())
                    )
                    + (self.registry.layers.code_size(req.region) if self.registry.layers else 0),
                    "FunctionCount": len(records),
                },
            }
        )

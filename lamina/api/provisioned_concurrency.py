"""Put/Get/Delete/ListProvisionedConcurrencyConfigs(s): environments initialised ahead of traffic."""

from __future__ import annotations

from typing import Any

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control import validation
from lamina.control.names import parse_function_ref
from lamina.invoke.provisioned import ProvisionedConcurrency, ProvisionedConfig

PATH = "/2019-09-30/functions/{name}/provisioned-concurrency"


class ProvisionedConcurrencyAPI:
    def __init__(self, provisioned: ProvisionedConcurrency) -> None:
        self.provisioned = provisioned

    def mount(self, router: Router) -> None:
        router.add("GET", PATH, self.list, query={"List": "ALL"})
        router.add("PUT", PATH, self.put)
        router.add("GET", PATH, self.get)
        router.add("DELETE", PATH, self.delete)

    def _shape(self, cfg: ProvisionedConfig, *, with_arn: bool = False) -> dict[str, Any]:
        available = self.provisioned.available(cfg)
        out: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": cfg.requested,
            "AvailableProvisionedConcurrentExecutions": available,
            "AllocatedProvisionedConcurrentExecutions": available,
            "Status": cfg.status,
            "LastModified": cfg.last_modified,
        }
        if cfg.status_reason:
            out["StatusReason"] = cfg.status_reason
        if with_arn:
            out = {"FunctionArn": cfg.function_arn, **out}
        return out

    async def put(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = await self.provisioned.put(req.region, ref, req.query_one("Qualifier"), req.json())
        return json_response(self._shape(cfg), status=202)

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = self.provisioned.get(req.region, ref, req.query_one("Qualifier"))
        return json_response(self._shape(cfg))

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        await self.provisioned.delete(req.region, ref, req.query_one("Qualifier"))
        return empty(204)

    async def list(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        raw = req.query_one("MaxItems")
        max_items = None
        if raw is not None:
            if not raw.isdecimal():
                raise validation.constraint_error(raw, "maxItems", "Member must be an integer")
            max_items = validation.int_in_range(int(raw), "maxItems", 1, 50)
        page, marker = self.provisioned.list_page(
            req.region, ref, req.query_one("Marker"), max_items
        )
        out: dict[str, Any] = {
            "ProvisionedConcurrencyConfigs": [self._shape(c, with_arn=True) for c in page]
        }
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

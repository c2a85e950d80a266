"""Put/Update/Get/List/DeleteFunctionEventInvokeConfig: the asynchronous invocation settings."""

from __future__ import annotations

from typing import Any

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control.names import parse_function_ref
from lamina.errors import InvalidParameterValueException
from lamina.invoke.event_config import EventInvokeConfig, EventInvokeConfigs

BASE = "/2019-09-25/functions/{name}/event-invoke-config"


def config_shape(cfg: EventInvokeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"LastModified": cfg.last_modified, "FunctionArn": cfg.function_arn}
    if cfg.max_retries is not None:
        out["MaximumRetryAttempts"] = cfg.max_retries
    if cfg.max_age_s is not None:
        out["MaximumEventAgeInSeconds"] = cfg.max_age_s
    out["DestinationConfig"] = {
        "OnSuccess": {"Destination": cfg.on_success} if cfg.on_success else {},
        "OnFailure": {"Destination": cfg.on_failure} if cfg.on_failure else {},
    }
    return out


class EventInvokeConfigAPI:
    def __init__(self, configs: EventInvokeConfigs) -> None:
        self.configs = configs

    def mount(self, router: Router) -> None:
        router.add("PUT", BASE, self.put)
        router.add("POST", BASE, self.update)
        router.add("GET", BASE, self.get)
        router.add("DELETE", BASE, self.delete)
        router.add("GET", BASE + "/list", self.list)

    async def put(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = await self.configs.put(
            req.region, ref, req.query_one("Qualifier"), req.json(), merge=False
        )
        return json_response(config_shape(cfg))

    async def update(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = await self.configs.put(
            req.region, ref, req.query_one("Qualifier"), req.json(), merge=True
        )
        return json_response(config_shape(cfg))

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        return json_response(
            config_shape(self.configs.get(req.region, ref, req.query_one("Qualifier")))
        )

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        await self.configs.delete(req.region, ref, req.query_one("Qualifier"))
        return empty(204)

    async def list(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        raw = req.query_one("MaxItems")
        if raw is not None and not (raw.isdecimal() and 1 <= int(raw) <= 50):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
                "constraint: Member must have value less than or equal to 50"
            )
        page, marker = self.configs.list_page(
            req.region, ref, req.query_one("Marker"), int(raw) if raw else None
        )
        out: dict[str, Any] = {"FunctionEventInvokeConfigs": [config_shape(c) for c in page]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

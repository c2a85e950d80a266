"""Create/Get/Update/Delete/ListFunctionUrlConfig(s): the configuration side of function URLs.

The FunctionUrl handed out is the host-based address Lamina serves
(`http://<url-id>.lambda-url.<region>.localhost:<port>/`); `*.localhost` resolves to the loopback
interface in browsers, curl and most resolvers. api/url_gateway.py serves it.
"""

from __future__ import annotations

from typing import Any

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control.function_urls import Cors, FunctionUrlConfig, FunctionUrls
from lamina.control.names import parse_function_ref
from lamina.errors import InvalidParameterValueException

BASE = "/2021-10-31/functions/{name}"


def url_host(url_id: str, region: str) -> str:
    return f"{url_id}.lambda-url.{region}.localhost"


def cors_shape(cors: Cors) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("AllowCredentials", cors.allow_credentials),
        ("AllowHeaders", cors.allow_headers),
        ("AllowMethods", cors.allow_methods),
        ("AllowOrigins", cors.allow_origins),
        ("ExposeHeaders", cors.expose_headers),
        ("MaxAge", cors.max_age_s),
    ):
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


class FunctionUrlsAPI:
    def __init__(self, urls: FunctionUrls, port: int) -> None:
        self.urls = urls
        self.port = port

    def mount(self, router: Router) -> None:
        router.add("POST", BASE + "/url", self.create)
        router.add("GET", BASE + "/url", self.get)
        router.add("PUT", BASE + "/url", self.update)
        router.add("DELETE", BASE + "/url", self.delete)
        router.add("GET", BASE + "/urls", self.list)

    def function_url(self, cfg: FunctionUrlConfig) -> str:
        return f"http://{url_host(cfg.url_id, cfg.region)}:{self.port}/"

    def shape(self, cfg: FunctionUrlConfig, *, last_modified: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "FunctionUrl": self.function_url(cfg),
            "FunctionArn": cfg.function_arn,
            "AuthType": cfg.auth_type,
            "CreationTime": cfg.creation_time,
        }
        if last_modified:
            out["LastModifiedTime"] = cfg.last_modified_time
        if cfg.cors is not None:
            out["Cors"] = cors_shape(cfg.cors)
        if cfg.invoke_mode is not None:
            out["InvokeMode"] = cfg.invoke_mode
        return out

    async def create(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = await self.urls.create(req.region, ref, req.query_one("Qualifier"), req.json())
        return json_response(self.shape(cfg, last_modified=False), 201)

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        return json_response(self.shape(self.urls.get(req.region, ref, req.query_one("Qualifier"))))

    async def update(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        cfg = await self.urls.update(req.region, ref, req.query_one("Qualifier"), req.json())
        return json_response(self.shape(cfg))

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        await self.urls.delete(req.region, ref, req.query_one("Qualifier"))
        return empty(204)

    async def list(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        raw = req.query_one("MaxItems")
        if raw is not None and not (raw.isdecimal() and 1 <= int(raw) <= 50):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
                "constraint: Member must have value less than or equal to 50"
            )
        page, marker = self.urls.list_page(
            req.region, ref, req.query_one("Marker"), int(raw) if raw else None
        )
        out: dict[str, Any] = {"FunctionUrlConfigs": [self.shape(c) for c in page]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

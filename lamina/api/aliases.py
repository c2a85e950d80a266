"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases: the wire side.

Shapes are checked by control/aliases.py, the rules that need the function by the registry.
"""

from __future__ import annotations

from typing import Any

from lamina.api.functions import list_limit
from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.api.wire import alias_configuration
from lamina.control import aliases as rules
from lamina.control import listing, validation
from lamina.control.names import parse_function_ref
from lamina.control.registry import Registry


class AliasesAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def mount(self, router: Router) -> None:
        base = "/2015-03-31/functions/{name}/aliases"
        router.add("POST", base, self.create)
        router.add("GET", base, self.list)
        router.add("GET", base + "/{alias}", self.get)
        router.add("PUT", base + "/{alias}", self.update)
        router.add("DELETE", base + "/{alias}", self.delete)

    async def create(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        body = req.json()
        name = rules.alias_name(body.get("Name"))
        version = rules.function_version(body.get("FunctionVersion"))
        alias = await self.registry.create_alias(
            req.region,
            ref,
            name,
            version,
            description=_description(body) or "",
            weights=rules.routing_weights(body.get("RoutingConfig")),
        )
        return json_response(alias_configuration(alias), 201)

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        name = rules.alias_name(req.params["alias"])
        return json_response(alias_configuration(self.registry.alias(req.region, ref, name)))

    async def update(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        name = rules.alias_name(req.params["alias"])
        body = req.json()
        version = body.get("FunctionVersion")
        revision_id = body.get("RevisionId")
        if revision_id is not None and not isinstance(revision_id, str):
            raise validation.constraint_error(revision_id, "revisionId", "Member must be a string")
        alias = await self.registry.update_alias(
            req.region,
            ref,
            name,
            function_version=None if version is None else rules.function_version(version),
            description=_description(body),
            weights=(
                rules.routing_weights(body["RoutingConfig"]) if "RoutingConfig" in body else None
            ),
            revision_id=revision_id,
        )
        return json_response(alias_configuration(alias))

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        name = rules.alias_name(req.params["alias"])
        await self.registry.delete_alias(req.region, ref, name)
        return empty(204)

    async def list(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        version = req.query_one("FunctionVersion")
        if version is not None:
            version = rules.function_version(version)
        found, marker = listing.aliases_page(
            self.registry.record(req.region, ref), version, req.query_one("Marker"), list_limit(req)
        )
        out: dict[str, Any] = {"Aliases": [alias_configuration(a) for a in found]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)


def _description(body: dict[str, Any]) -> str | None:
    if "Description" not in body or body["Description"] is None:
        return None
    return validation.description(body["Description"])

"""PublishVersion and ListVersionsByFunction: the wire side. Rules live in control/registry.py."""

from __future__ import annotations

from typing import Any

from lamina.api.functions import list_entry, list_limit
from lamina.api.http import Request, Response, Router, json_response
from lamina.api.wire import function_configuration
from lamina.control import listing, validation
from lamina.control.names import parse_function_ref
from lamina.control.registry import Registry


class VersionsAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def mount(self, router: Router) -> None:
        base = "/2015-03-31/functions/{name}/versions"
        router.add("POST", base, self.publish)
        router.add("GET", base, self.list)

    async def publish(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        body = req.json()
        sha = body.get("CodeSha256")
        if sha is not None and not isinstance(sha, str):
            raise validation.constraint_error(sha, "codeSha256", "Member must be a string")
        description = body.get("Description")
        if description is not None:
            description = validation.description(description)
        revision_id = body.get("RevisionId")
        cfg = await self.registry.publish_version(
            req.region,
            ref,
            code_sha256=sha or None,
            description=description,
            revision_id=revision_id,
        )
        return json_response(function_configuration(cfg), 201)

    async def list(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        configs, marker = listing.versions_page(
            self.registry.record(req.region, ref), req.query_one("Marker"), list_limit(req)
        )
        # Every entry carries its qualified ARN, $LATEST's too; like ListFunctions, no states.
        out: dict[str, Any] = {"Versions": [list_entry(c, qualified=True) for c in configs]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

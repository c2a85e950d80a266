"""TagResource, UntagResource, ListTags on function ARNs: the wire side. Tags live on the
function's record (control/registry.py) and go with it when it is deleted."""

from __future__ import annotations

import re

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control import validation
from lamina.control.names import FunctionRef, parse_function_ref
from lamina.control.registry import Registry
from lamina.errors import InvalidParameterValueException, ValidationException

BASE = "/2017-03-31/tags/{resource}"

# The model's pattern for a taggable resource (`Resource`), quoted as AWS quotes it.
_RESOURCE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|"
    r"event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}|(capacity-provider|network-connector):[a-zA-Z0-9-_]{1,64})"
)
_RESOURCE_RE = re.compile(_RESOURCE_PATTERN)


def function_resource(value: str) -> FunctionRef:
    """A `Resource` that is a function ARN; Lambda refuses versions and aliases for tags."""
    if not 1 <= len(value) <= 10000 or not _RESOURCE_RE.fullmatch(value):
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at 'resource' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {_RESOURCE_PATTERN}"
        )
    if ":function:" not in value:
        raise InvalidParameterValueException(
            "Lamina tags functions only (code signing configs, event source mappings and "
            "capacity providers are not supported)."
        )
    return parse_function_ref(value, allow_qualifier=False)


class TagsAPI:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def mount(self, router: Router) -> None:
        router.add("GET", BASE, self.list)
        router.add("POST", BASE, self.tag)
        router.add("DELETE", BASE, self.untag)

    async def list(self, req: Request) -> Response:
        ref = function_resource(req.params["resource"])
        record = self.registry.record(req.region, ref)
        return json_response({"Tags": dict(record.tags)})

    async def tag(self, req: Request) -> Response:
        ref = function_resource(req.params["resource"])
        body = req.json()
        if body.get("Tags") is None:
            raise ValidationException(
                "1 validation error detected: Value null at 'tags' failed to satisfy "
                "constraint: Member must not be null"
            )
        tags = validation.tags(body["Tags"])
        await self.registry.tag(req.region, ref, tags)
        return empty(204)

    async def untag(self, req: Request) -> Response:
        ref = function_resource(req.params["resource"])
        keys = req.query.get("tagKeys")
        if keys is None:
            raise ValidationException(
                "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                "constraint: Member must not be null"
            )
        await self.registry.untag(req.region, ref, validation.tag_keys(keys))
        return empty(204)

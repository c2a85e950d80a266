"""AddPermission, GetPolicy, RemovePermission and AddLayerVersionPermission,
GetLayerVersionPolicy, RemoveLayerVersionPermission: the wire side. The statements and their
storage live in control/policies.py; they are kept and returned, not enforced."""

from __future__ import annotations

import re
from typing import Any

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.api.layers import version_number
from lamina.control import policies as rules
from lamina.control.layers import Layers
from lamina.control.model import LATEST, is_version_number
from lamina.control.names import check_qualifier, merge_qualifier, parse_function_ref
from lamina.control.policies import Policies
from lamina.control.registry import Registry
from lamina.errors import ValidationException

FUNCTION_BASE = "/2015-03-31/functions/{name}/policy"
LAYER_BASE = "/2018-10-31/layers/{name}/versions/{number}/policy"

# Members' patterns and lengths from botocore's Lambda model: (pattern, min, max).
_STATEMENT_ID = (r"([a-zA-Z0-9-_]+)", 1, 100)
_REMOVE_STATEMENT_ID = (r"([a-zA-Z0-9-_.]+)", 1, 100)
_ACTION = (r"(lambda:[*]|lambda:[a-zA-Z]+|[*])", 0, 10000)
_PRINCIPAL = (r"[^\s]+", 0, 2048)
_SOURCE_ARN = (
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-"
    r"\d{1})?:(\d{12})?:(.*)",
    0,
    10000,
)
_SOURCE_ACCOUNT = (r"\d{12}", 0, 12)
_EVENT_SOURCE_TOKEN = (r"[a-zA-Z0-9._\-]+", 0, 256)
_PRINCIPAL_ORG_ID = (r"o-[a-z0-9]{10,32}", 12, 34)
_LAYER_ACTION = (r"lambda:GetLayerVersion", 0, 22)
_LAYER_PRINCIPAL = (r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root", 0, 10000)
_ORGANIZATION_ID = (r"o-[a-z0-9]{10,32}", 0, 34)
_AUTH_TYPES = ("NONE", "AWS_IAM")


def _member(
    body: dict[str, Any], key: str, rule: tuple[str, int, int], *, required: bool = False
) -> str | None:
    """A string member checked against the model: ValidationException as Lambda sends it."""
    value = body.get(key)
    wire = key[0].lower() + key[1:]
    if value is None:
        if required:
            raise ValidationException(
                f"1 validation error detected: Value null at '{wire}' failed to satisfy "
                "constraint: Member must not be null"
            )
        return None
    pattern, low, high = rule
    if not isinstance(value, str):
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{wire}' failed to satisfy "
            "constraint: Member must be a string"
        )
    if not low <= len(value) <= high:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{wire}' failed to satisfy "
            f"constraint: Member must have length between {low} and {high}"
        )
    if not re.fullmatch(pattern, value):
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{wire}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern}"
        )
    return value


def _required(body: dict[str, Any], key: str, rule: tuple[str, int, int]) -> str:
    value = _member(body, key, rule, required=True)
    assert value is not None
    return value


class PoliciesAPI:
    def __init__(self, registry: Registry, layers: Layers, policies: Policies) -> None:
        self.registry = registry
        self.layers = layers
        self.policies = policies

    def mount(self, router: Router) -> None:
        router.add("POST", FUNCTION_BASE, self.add_permission)
        router.add("GET", FUNCTION_BASE, self.get_policy)
        router.add("DELETE", FUNCTION_BASE + "/{sid}", self.remove_permission)
        router.add("POST", LAYER_BASE, self.add_layer_permission)
        router.add("GET", LAYER_BASE, self.get_layer_policy)
        router.add("DELETE", LAYER_BASE + "/{sid}", self.remove_layer_permission)

    # -- functions -------------------------------------------------------------------------------

    def _function_resource(self, req: Request) -> tuple[str, str]:
        """(the ARN the policy is attached to, the RevisionId of what it names)."""
        ref = parse_function_ref(req.params["name"])
        qualifier = merge_qualifier(ref, req.query_one("Qualifier"))
        record = self.registry.record(req.region, ref)
        if qualifier is None:
            return record.latest.arn, record.latest.revision_id
        check_qualifier(qualifier)
        arn = f"{record.latest.arn}:{qualifier}"
        if qualifier == LATEST:
            return arn, record.latest.revision_id
        if is_version_number(qualifier):
            version = record.versions.get(qualifier)
            if version is not None:
                return arn, version.revision_id
        else:
            alias = record.aliases.get(qualifier)
            if alias is not None:
                return arn, alias.revision_id
        raise self.registry.not_found(req.region, record.latest.name, qualifier)

    async def add_permission(self, req: Request) -> Response:
        body = req.json()
        sid = _required(body, "StatementId", _STATEMENT_ID)
        action = _required(body, "Action", _ACTION)
        principal = _required(body, "Principal", _PRINCIPAL)
        auth_type = body.get("FunctionUrlAuthType")
        if auth_type is not None and auth_type not in _AUTH_TYPES:
            raise ValidationException(
                f"1 validation error detected: Value '{auth_type}' at 'functionUrlAuthType' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                "[NONE, AWS_IAM]"
            )
        via_url = body.get("InvokedViaFunctionUrl")
        if via_url is not None and not isinstance(via_url, bool):
            raise ValidationException(
                f"1 validation error detected: Value '{via_url}' at 'invokedViaFunctionUrl' "
                "failed to satisfy constraint: Member must be a boolean"
            )
        revision_id = body.get("RevisionId")
        if revision_id is not None and not isinstance(revision_id, str):
            raise ValidationException(
                f"1 validation error detected: Value '{revision_id}' at 'revisionId' failed to "
                "satisfy constraint: Member must be a string"
            )
        statement_fields = {
            "source_arn": _member(body, "SourceArn", _SOURCE_ARN),
            "source_account": _member(body, "SourceAccount", _SOURCE_ACCOUNT),
            "event_source_token": _member(body, "EventSourceToken", _EVENT_SOURCE_TOKEN),
            "principal_org_id": _member(body, "PrincipalOrgID", _PRINCIPAL_ORG_ID),
        }
        arn, current = self._function_resource(req)
        statement = rules.function_statement(
            sid=sid,
            action=action,
            principal_value=principal,
            resource=arn,
            function_url_auth_type=auth_type,
            invoked_via_function_url=via_url,
            **statement_fields,
        )
        await self.policies.add(arn, statement, revision_id=revision_id, current_revision=current)
        return json_response({"Statement": rules.statement_json(statement)}, 201)

    async def get_policy(self, req: Request) -> Response:
        arn, _ = self._function_resource(req)
        policy = self.policies.get(arn)
        return json_response({"Policy": policy.document(), "RevisionId": policy.revision_id})

    async def remove_permission(self, req: Request) -> Response:
        sid = _required({"StatementId": req.params["sid"]}, "StatementId", _REMOVE_STATEMENT_ID)
        arn, _ = self._function_resource(req)
        await self.policies.remove(arn, sid, revision_id=req.query_one("RevisionId"))
        return empty(204)

    # -- layer versions --------------------------------------------------------------------------

    def _layer_resource(self, req: Request) -> str:
        name = self.layers.layer_name(req.region, req.params["name"])
        return self.layers.get(req.region, name, version_number(req.params["number"])).arn

    async def add_layer_permission(self, req: Request) -> Response:
        body = req.json()
        sid = _required(body, "StatementId", _STATEMENT_ID)
        _required(body, "Action", _LAYER_ACTION)
        principal = _required(body, "Principal", _LAYER_PRINCIPAL)
        organization = _member(body, "OrganizationId", _ORGANIZATION_ID)
        arn = self._layer_resource(req)
        statement = rules.layer_statement(
            sid=sid, principal_value=principal, resource=arn, organization_id=organization
        )
        policy = await self.policies.add(
            arn,
            statement,
            revision_id=req.query_one("RevisionId"),
            current_revision=None,
            mismatch=rules.LAYER_REVISION_MISMATCH,
        )
        return json_response(
            {"Statement": rules.statement_json(statement), "RevisionId": policy.revision_id}, 201
        )

    async def get_layer_policy(self, req: Request) -> Response:
        policy = self.policies.get(self._layer_resource(req))
        return json_response({"Policy": policy.document(), "RevisionId": policy.revision_id})

    async def remove_layer_permission(self, req: Request) -> Response:
        sid = _required({"StatementId": req.params["sid"]}, "StatementId", _STATEMENT_ID)
        await self.policies.remove(
            self._layer_resource(req),
            sid,
            revision_id=req.query_one("RevisionId"),
            mismatch=rules.LAYER_REVISION_MISMATCH,
        )
        return empty(204)

"""The EventBridge API subset for scheduled rules (JSON 1.1, X-Amz-Target `AWSEvents.<Op>`), so
that `aws events put-rule --schedule-expression ...`, boto3 and SAM's Schedule events work."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.api.http import Request, Response
from lamina.triggers.errors import (
    EventsError,
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from lamina.triggers.rules import (
    DEFAULT_BUS,
    Rule,
    Rules,
    after_token,
    check_bus,
    check_name,
    check_targets,
    limit_of,
    page_token,
)

TARGET = "AWSEvents"
JSON_11 = "application/x-amz-json-1.1"

Body = dict[str, Any]


def _ok(data: Body | None = None) -> Response:
    return Response(200, json.dumps(data or {}, separators=(",", ":")).encode(), [], JSON_11)


def error_response(error: EventsError) -> Response:
    body = {"__type": error.code, "message": error.message}
    return Response(error.status, json.dumps(body).encode(), [], JSON_11)


class EventsAPI:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.operations: dict[str, Callable[[Request, Body], Awaitable[Body]]] = {
            "PutRule": self.put_rule,
            "DescribeRule": self.describe_rule,
            "ListRules": self.list_rules,
            "DeleteRule": self.delete_rule,
            "EnableRule": self.enable_rule,
            "DisableRule": self.disable_rule,
            "PutTargets": self.put_targets,
            "RemoveTargets": self.remove_targets,
            "ListTargetsByRule": self.list_targets_by_rule,
            "ListRuleNamesByTarget": self.list_rule_names_by_target,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }

    async def __call__(self, req: Request, operation: str) -> Response:
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise UnknownOperationException(f"Lamina does not serve EventBridge {operation}.")
            try:
                body = json.loads(req.body or b"{}")
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                raise SerializationException("The request body is not valid JSON.") from exc
            if not isinstance(body, dict):
                raise SerializationException("The request body must be a JSON object.")
            return _ok(await handler(req, body))
        except EventsError as error:
            return error_response(error)

    def _shape(self, rule: Rule, *, describe: bool = False) -> Body:
        out: Body = {"Name": rule.name, "Arn": self.rules.arn(rule.region, rule.name)}
        for key, value in (
            ("EventPattern", rule.event_pattern),
            ("ScheduleExpression", rule.schedule),
            ("State", rule.state),
            ("Description", rule.description),
            ("RoleArn", rule.role_arn),
        ):
            if value is not None:
                out[key] = value
        out["EventBusName"] = DEFAULT_BUS
        if describe:
            out["CreatedBy"] = self.rules.account_id
        return out

    async def put_rule(self, req: Request, body: Body) -> Body:
        rule = await self.rules.put_rule(req.region, body)
        return {"RuleArn": self.rules.arn(rule.region, rule.name)}

    async def describe_rule(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        return self._shape(self.rules.get(req.region, body.get("Name")), describe=True)

    async def list_rules(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        prefix = body.get("NamePrefix")
        if prefix is not None:
            check_name(prefix, "namePrefix")
        rules, token = self.rules.list_page(
            req.region, prefix, body.get("NextToken"), body.get("Limit")
        )
        out: Body = {"Rules": [self._shape(r) for r in rules]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_rule(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        await self.rules.delete_rule(req.region, body.get("Name"))
        return {}

    async def enable_rule(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        await self.rules.set_state(req.region, body.get("Name"), "ENABLED")
        return {}

    async def disable_rule(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        await self.rules.set_state(req.region, body.get("Name"), "DISABLED")
        return {}

    async def put_targets(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        name = check_name(body.get("Rule"), "rule")
        targets = check_targets(body.get("Targets"))
        failed = await self.rules.put_targets(req.region, name, targets)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def remove_targets(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        name = check_name(body.get("Rule"), "rule")
        ids = body.get("Ids")
        if not isinstance(ids, list) or not ids or len(ids) > 100:
            raise ValidationException(
                f"1 validation error detected: Value '{ids}' at 'ids' failed to satisfy "
                "constraint: Member must have length between 1 and 100"
            )
        await self.rules.remove_targets(
            req.region, name, [check_name(i, "ids.member") for i in ids]
        )
        return {"FailedEntryCount": 0, "FailedEntries": []}

    async def list_targets_by_rule(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        rule = self.rules.get(req.region, body.get("Rule"))
        targets = self.rules.targets(rule)
        size = limit_of(body.get("Limit"))
        after = after_token(body.get("NextToken"))
        ids = [t["Id"] for t in targets]
        start = ids.index(after) + 1 if after in ids else 0
        page = targets[start : start + size]
        out: Body = {"Targets": page}
        if start + size < len(targets):
            out["NextToken"] = page_token(page[-1]["Id"])
        return out

    async def list_rule_names_by_target(self, req: Request, body: Body) -> Body:
        check_bus(body.get("EventBusName"))
        arn = body.get("TargetArn")
        if not isinstance(arn, str) or not arn:
            raise ValidationException(
                "1 validation error detected: Value null at 'targetArn' failed to satisfy "
                "constraint: Member must not be null"
            )
        names, token = self.rules.rule_names_by_target(
            req.region, arn, body.get("NextToken"), body.get("Limit")
        )
        out: Body = {"RuleNames": names}
        if token:
            out["NextToken"] = token
        return out

    async def tag_resource(self, req: Request, body: Body) -> Body:
        await self.rules.tag(body.get("ResourceARN"), body.get("Tags"))
        return {}

    async def untag_resource(self, req: Request, body: Body) -> Body:
        await self.rules.untag(body.get("ResourceARN"), body.get("TagKeys"))
        return {}

    async def list_tags_for_resource(self, req: Request, body: Body) -> Body:
        tags = self.rules.tags(body.get("ResourceARN"))
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

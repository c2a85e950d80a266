"""What a SAM function's Events and FunctionUrlConfig become, applied through Lamina's APIs.

    Schedule, EventBridgeRule, CloudWatchEvent -> AWS::Events::Rule -> EventBridge PutRule + PutTargets
    ScheduleV2     -> AWS::Scheduler::Schedule -> an EventBridge rule with the same schedule
    SQS            -> AWS::Lambda::EventSourceMapping -> CreateEventSourceMapping
    S3             -> AWS::S3::Bucket notifications -> Lamina's object events
    FunctionUrlConfig -> AWS::Lambda::Url -> CreateFunctionUrlConfig
    AWS::SQS::Queue in the template -> CreateQueue on Lamina's SQS-compatible endpoint

An API this server does not serve is reported as "not yet supported", never skipped silently.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lamina.cli.sam import NotServed

if TYPE_CHECKING:
    from lamina.cli.sam.apply import Deployment, Handler


def _unserved(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        unknown = code in ("UnknownOperationException", "InvalidAction")
        return unknown or (status == 404 and code in ("404", "NotFound"))
    return False


def _permission(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {
        k: props[k]
        for k in (
            "SourceArn",
            "SourceAccount",
            "FunctionUrlAuthType",
            "PrincipalOrgID",
            "EventSourceToken",
        )
        if k in props
    }
    if "InvokedViaFunctionUrl" in props:
        kwargs["InvokedViaFunctionUrl"] = bool(props["InvokedViaFunctionUrl"])
    try:
        d.lam.add_permission(
            FunctionName=props["FunctionName"],
            StatementId=d.physical_name(logical, 100),
            Action=props["Action"],
            Principal=props["Principal"],
            **kwargs,
        )
        d.echo(f"  + permission {props['Principal']} {props['Action']} on {props['FunctionName']}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ResourceConflictException":
            d.echo(f"  = permission {props['Principal']} {props['Action']} unchanged")
        elif _unserved(exc):
            d.notes.append(
                "resource policies (AWS::Lambda::Permission) are not served by this Lamina yet; "
                "invocations are not policy-checked"
            )
        else:
            raise
    d.resolver.refs[logical] = d.physical_name(logical, 100)


_ESM_KEYS = (
    "BatchSize",
    "Enabled",
    "MaximumBatchingWindowInSeconds",
    "FunctionResponseTypes",
    "FilterCriteria",
    "ScalingConfig",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "ParallelizationFactor",
    "DestinationConfig",
    "TumblingWindowInSeconds",
)


def _event_source_mapping(
    d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]
) -> None:
    from botocore.exceptions import ClientError

    function, source = props["FunctionName"], props.get("EventSourceArn")
    settings = {k: props[k] for k in _ESM_KEYS if k in props}
    try:
        existing = d.lam.list_event_source_mappings(FunctionName=function, EventSourceArn=source)[
            "EventSourceMappings"
        ]
    except ClientError as exc:
        if _unserved(exc):
            raise NotServed("CreateEventSourceMapping") from exc
        raise
    if existing:
        current = existing[0]
        diff = {k: v for k, v in settings.items() if _mapping_value(current, k) != v}
        if diff:
            d.lam.update_event_source_mapping(UUID=current["UUID"], **diff)
            d.echo(f"  ~ event source mapping {source} -> {function}: {', '.join(diff)}")
        else:
            d.echo(f"  = event source mapping {source} -> {function} unchanged")
        uuid = current["UUID"]
    else:
        extra = {k: props[k] for k in ("StartingPosition",) if k in props}
        out = d.lam.create_event_source_mapping(
            FunctionName=function, EventSourceArn=source, **settings, **extra
        )
        uuid = out["UUID"]
        d.echo(f"  + event source mapping {source} -> {function}")
    d.resolver.refs[logical] = uuid


def _mapping_value(current: dict[str, Any], key: str) -> Any:
    if key == "Enabled":  # the configuration says State, the request Enabled
        return current.get("State") in ("Enabled", "Enabling", "Updating", "Creating")
    return current.get(key)


def _rule(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    name = props.get("Name") or d.physical_name(logical)
    rule: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if "ScheduleExpression" in props:
        rule["ScheduleExpression"] = props["ScheduleExpression"]
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if props.get("Description"):
        rule["Description"] = props["Description"]
    targets = [
        {k: t[k] for k in ("Id", "Arn", "Input", "InputPath") if k in t}
        for t in props.get("Targets") or []
    ]
    arn = _put_rule(d, rule, targets)
    d.resolver.refs[logical] = name
    d.resolver.attrs[(logical, "Arn")] = arn


def _put_rule(d: Deployment, rule: dict[str, Any], targets: list[dict[str, Any]]) -> str:
    from botocore.exceptions import ClientError

    events = d.clients("events")
    try:
        try:
            before = events.describe_rule(Name=rule["Name"])
        except events.exceptions.ResourceNotFoundException:
            before = None
        arn = str(events.put_rule(**rule)["RuleArn"])
        if targets:
            events.put_targets(Rule=rule["Name"], Targets=targets)
    except ClientError as exc:
        if _unserved(exc):
            raise NotServed("EventBridge PutRule/PutTargets") from exc
        raise
    what = rule.get("ScheduleExpression") or rule.get("EventPattern")
    if before is None:
        d.echo(f"  + rule {rule['Name']} ({what}) -> {', '.join(t['Arn'] for t in targets)}")
    else:
        same = all(before.get(k) == v for k, v in rule.items() if k != "Name")
        d.echo(f"  {'=' if same else '~'} rule {rule['Name']} ({what})")
    return arn


def _schedule(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    """ScheduleV2: EventBridge Scheduler is not emulated; the same expression as a rule."""
    expression = str(props.get("ScheduleExpression", ""))
    if expression.startswith("at("):
        raise NotServed("one-time at() schedules")
    name = d.physical_name(str(props.get("Name") or logical))
    target = props.get("Target") or {}
    rule = {"Name": name, "ScheduleExpression": expression}
    if props.get("State") == "DISABLED":
        rule["State"] = "DISABLED"
    entry = {"Id": "ScheduleV2Target", "Arn": target.get("Arn")}
    if "Input" in target:
        entry["Input"] = target["Input"]
    arn = _put_rule(d, rule, [entry])
    d.resolver.refs[logical] = name
    d.resolver.attrs[(logical, "Arn")] = arn
    d.notes.append("ScheduleV2 events run as EventBridge rules with the same schedule expression")


def _url(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    target = str(props["TargetFunctionArn"])
    function, qualifier = target, None
    parts = target.split(":")
    if target.startswith("arn:") and len(parts) == 8:
        function, qualifier = ":".join(parts[:7]), parts[7]
    where = {"FunctionName": function, **({"Qualifier": qualifier} if qualifier else {})}
    settings = {k: props[k] for k in ("AuthType", "Cors", "InvokeMode") if k in props}
    try:
        try:
            current = d.lam.get_function_url_config(**where)
        except d.lam.exceptions.ResourceNotFoundException:
            current = None
        if current is None:
            out = d.lam.create_function_url_config(**where, **settings)
            d.echo(f"  + function URL {out['FunctionUrl']}")
        elif any(current.get(k) != v for k, v in settings.items()):
            out = d.lam.update_function_url_config(**where, **settings)
            d.echo(f"  ~ function URL {out['FunctionUrl']}")
        else:
            out = current
            d.echo(f"  = function URL {out['FunctionUrl']} unchanged")
    except ClientError as exc:
        if _unserved(exc):
            raise NotServed("CreateFunctionUrlConfig") from exc
        raise
    d.resolver.refs[logical] = out["FunctionArn"]
    d.resolver.attrs[(logical, "FunctionUrl")] = out["FunctionUrl"]
    d.resolver.attrs[(logical, "FunctionArn")] = out["FunctionArn"]


def _queue(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    sqs = d.clients("sqs")
    name = props.get("QueueName") or d.physical_name(
        logical, 80 - (5 if props.get("FifoQueue") else 0)
    )
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        k: json.dumps(v)
        if isinstance(v, dict)
        else str(v).lower()
        if isinstance(v, bool)
        else str(v)
        for k, v in props.items()
        if k not in ("QueueName", "Tags")
    }
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    d.echo(f"  + queue {name} ready")
    d.resolver.refs[logical] = url
    d.resolver.attrs[(logical, "Arn")] = arn
    d.resolver.attrs[(logical, "QueueName")] = name
    d.resolver.attrs[(logical, "QueueUrl")] = url


def _bucket(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    """A bucket is a host folder in Lamina (docs/triggers.md): `Metadata: {Lamina: {Path: DIR}}`
    names it, else `.lamina/buckets/<name>` beside the template."""
    import click

    from lamina.cli.client import lamina_request

    name = props.get("BucketName") or d.physical_name(logical, 63).lower()
    d.resolver.refs[logical] = name
    d.resolver.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"
    meta = (res.get("Metadata") or {}).get("Lamina") or {}
    base = d.template.path.parent
    folder = (base / str(meta.get("Path") or f".lamina/buckets/{name}")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    base_path = f"/lamina/v1/buckets/{name}"
    try:
        before = lamina_request(d.endpoint, "GET", base_path)
    except click.ClickException as exc:
        if "UnknownOperation" in exc.message:
            raise NotServed("object events (buckets)") from exc
        before = None
    lamina_request(d.endpoint, "PUT", base_path, {"Path": str(folder)})
    configs = [
        _lambda_configuration(c)
        for c in (props.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or []
    ]
    current = lamina_request(d.endpoint, "GET", base_path + "/notification") if before else None
    wanted = {"LambdaFunctionConfigurations": configs}
    if current is None or _comparable(current) != _comparable(wanted):
        lamina_request(d.endpoint, "PUT", base_path + "/notification", wanted)
        changed = True
    else:
        changed = False
    sign = "+" if before is None else "~" if changed else "="
    d.echo(f"  {sign} bucket {name} (folder {folder}), {len(configs)} notification(s)")


def _lambda_configuration(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's LambdaConfiguration -> S3's LambdaFunctionConfiguration."""
    out: dict[str, Any] = {"LambdaFunctionArn": cfn["Function"], "Events": [cfn["Event"]]}
    rules = ((cfn.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
    if rules:
        out["Filter"] = {
            "Key": {
                "FilterRules": [{"Name": r["Name"].lower(), "Value": r["Value"]} for r in rules]
            }
        }
    return out


def _comparable(config: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    out = []
    for c in config.get("LambdaFunctionConfigurations") or []:
        rules = ((c.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
        out.append(
            (
                c["LambdaFunctionArn"],
                tuple(sorted(c.get("Events") or [])),
                json.dumps(sorted((r["Name"].lower(), r["Value"]) for r in rules)),
            )
        )
    return sorted(out)


HANDLERS: dict[str, Handler] = {
    "AWS::Lambda::Permission": _permission,
    "AWS::Lambda::EventSourceMapping": _event_source_mapping,
    "AWS::Events::Rule": _rule,
    "AWS::Scheduler::Schedule": _schedule,
    "AWS::Lambda::Url": _url,
    "AWS::SQS::Queue": _queue,
    "AWS::S3::Bucket": _bucket,
}

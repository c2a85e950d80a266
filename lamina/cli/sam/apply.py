"""Apply a transformed template through Lamina's own API (boto3), in dependency order.

Each resource type has one function that creates it or updates it in place and says what it did:
`+` created, `~` changed (and what), `=` unchanged, `!` not supported here (and why). Nothing is
left out silently: resources of kinds Lamina cannot honour are listed with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from lamina.cli.sam import NotServed, shift
from lamina.cli.sam.intrinsics import Resolver, references
from lamina.cli.sam.template import LOCAL_BUCKET, Template

HOT_RELOAD_BUCKET = "hot-reload"

# Resource kinds Lamina has no counterpart for, and what to tell the user.
_NOT_HONOURED = {
    "AWS::ApiGateway::": "API Gateway is not emulated by Lamina (use a function URL)",
    "AWS::ApiGatewayV2::": "API Gateway is not emulated by Lamina (use a function URL)",
    "AWS::SNS::": "SNS is not emulated by Lamina",
    "AWS::DynamoDB::": "DynamoDB is not emulated by Lamina",
    "AWS::Kinesis::": "Kinesis is not emulated by Lamina",
    "AWS::Logs::": "log groups are created by Lamina itself on first use",
    "AWS::Cognito::": "Cognito is not emulated by Lamina",
    "AWS::StepFunctions::": "Step Functions are not emulated by Lamina",
}
_ROLES_NOTE = "roles are synthesised (Lamina does not enforce IAM)"
_UNSUPPORTED_CODES = ("UnknownOperationException", "UnknownOperation", "InvalidAction")
_CONFIG_DEFAULTS: dict[str, Any] = {
    "MemorySize": 128,
    "Timeout": 3,
    "Description": "",
    "Environment": {"Variables": {}},
    "Layers": [],
}
_CONFIG_KEYS = (
    "Handler",
    "Runtime",
    "Role",
    "MemorySize",
    "Timeout",
    "Description",
    "Environment",
    "Layers",
    "EphemeralStorage",
    "TracingConfig",
    "DeadLetterConfig",
    "LoggingConfig",
)


@dataclass
class Deployment:
    template: Template
    clients: Callable[[str], Any]  # service name -> boto3 client
    stack: str
    region: str
    account_id: str
    shift_scale: float = 1.0
    endpoint: str = ""  # for Lamina's own REST routes (buckets)
    hot_reload: bool = False  # `lamina dev -t`: function code folders are read live
    echo: Callable[[str], None] = click.echo
    changed: dict[str, bool] = field(default_factory=dict)  # function logical id -> changed
    functions: dict[str, str] = field(default_factory=dict)  # logical id -> function name
    deploy_configs: dict[str, str] = field(default_factory=dict)  # deployment group -> config
    notes: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # logical id -> what happened

    def __post_init__(self) -> None:
        cfn = self.template.cfn
        params = {
            name: spec.get("Default")
            for name, spec in (cfn.get("Parameters") or {}).items()
            if isinstance(spec, dict)
        }
        params.update(
            {
                "AWS::Region": self.region,
                "AWS::AccountId": self.account_id,
                "AWS::StackName": self.stack,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack}/lamina",
            }
        )
        self.resolver = Resolver(
            parameters=params,
            conditions=cfn.get("Conditions") or {},
            mappings=cfn.get("Mappings") or {},
        )
        self.lam = self.clients("lambda")

    def set_parameters(self, values: dict[str, str]) -> None:
        self.resolver.refs.update(values)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        resources: dict[str, Any] = self.template.cfn["Resources"]
        for logical in deploy_order(resources):
            res = resources[logical]
            kind = res.get("Type", "")
            cond = res.get("Condition")
            if cond is not None and not self.resolver.condition(cond):
                self.echo(f"  - {logical} ({kind}): condition {cond} is false")
                continue
            self._apply(logical, kind, res)
        self._events()
        self._outputs()
        for note in dict.fromkeys(self.notes):
            self.echo(f"note: {note}")

    def _apply(self, logical: str, kind: str, res: dict[str, Any]) -> None:
        handler = _HANDLERS.get(kind)
        if handler is None:
            reason = next(
                (why for prefix, why in _NOT_HONOURED.items() if kind.startswith(prefix)),
                "not a resource kind Lamina deploys",
            )
            self._skip(logical, kind, reason)
            return
        from botocore.exceptions import ClientError

        try:
            props = self.resolver.resolve(res.get("Properties") or {})
            handler(self, logical, props, res)
            self.outcomes.setdefault(logical, "applied")
        except NotServed as exc:
            self._skip(logical, kind, f"not yet supported by this Lamina server ({exc})")
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code") in _UNSUPPORTED_CODES:
                self._skip(logical, kind, "not yet supported by this Lamina server")
                return
            raise click.ClickException(
                f"{logical} ({kind}): {err.get('Code')}: {err.get('Message')}"
            ) from exc

    def _skip(self, logical: str, kind: str, reason: str) -> None:
        self.echo(f"  ! {logical} ({kind}): {reason}")
        self.outcomes[logical] = reason
        placeholder = f"<{logical}: not deployed>"
        self.resolver.refs.setdefault(logical, placeholder)
        self.resolver.skipped.add(logical)

    def _events(self) -> None:
        """One line per SAM event: how Lamina honours it, or why it does not."""
        lines = []
        for fn, res in self.template.sam["Resources"].items():
            if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
                continue
            for event, spec in ((res.get("Properties") or {}).get("Events") or {}).items():
                kind = spec.get("Type") if isinstance(spec, dict) else None
                lines.append(f"  {fn}.{event} ({kind}): {self._event_outcome(fn, event, spec)}")
        if lines:
            self.echo("Events:")
            for line in lines:
                self.echo(line)

    def _event_outcome(self, fn: str, event: str, spec: dict[str, Any]) -> str:
        kind = spec.get("Type")
        if kind in ("Api", "HttpApi"):
            return "not supported: API Gateway is not emulated by Lamina (use FunctionUrlConfig)"
        related = [
            logical
            for logical in self.outcomes
            if logical.startswith(fn + event)
            and not logical[len(fn + event) :].startswith("Permission")
            and not logical[len(fn + event) :].startswith("Role")
        ]
        if kind == "S3":
            bucket = (spec.get("Properties") or {}).get("Bucket")
            related = [bucket["Ref"]] if isinstance(bucket, dict) and "Ref" in bucket else []
        if not related:
            return f"not supported by Lamina ({kind} events)"
        return self.outcomes[related[0]]

    def _outputs(self) -> None:
        outputs = self.template.cfn.get("Outputs") or {}
        if not outputs:
            return
        self.echo("Outputs:")
        for name, spec in outputs.items():
            try:
                value = self.resolver.resolve(spec.get("Value"))
            except click.ClickException as exc:
                value = f"(not available: {exc.message})"
            self.echo(f"  {name} = {value}")

    # -- helpers ---------------------------------------------------------------------------------

    def physical_name(self, logical: str, limit: int = 64) -> str:
        return f"{self.stack}-{logical}"[:limit]

    def code(self, code: Any, logical: str, runtime: str | None = None) -> bytes:
        if isinstance(code, dict) and code.get("S3Bucket") == LOCAL_BUCKET:
            return self.template.artifacts[code["S3Key"]]
        if isinstance(code, dict) and "ZipFile" in code:  # inline code, as CloudFormation packs it
            name = "index.js" if (runtime or "").startswith("nodejs") else "index.py"
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o100644 << 16
                zf.writestr(info, str(code["ZipFile"]))
            return buf.getvalue()
        if isinstance(code, dict) and code.get("S3Bucket") and code.get("S3Key"):
            return self.s3_object(str(code["S3Bucket"]), str(code["S3Key"]), logical)
        raise click.ClickException(
            f"{logical}: code from {code} is not supported by Lamina; give a local folder"
        )

    def s3_object(self, bucket: str, key: str, logical: str) -> bytes:
        """Code at an S3 location: read from Lamina's own S3 API (docs/s3.md)."""
        from botocore.exceptions import ClientError

        try:
            data: bytes = self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise click.ClickException(
                f"{logical}: code at s3://{bucket}/{key}: {error.get('Code')}: "
                f"{error.get('Message')}"
            ) from exc
        return data

    def hot_folder(self, code: Any) -> str | None:
        """With hot reloading, the folder a function's code came from (None: not a folder)."""
        if not self.hot_reload or not isinstance(code, dict):
            return None
        folder = self.template.local_dirs.get(str(code.get("S3Key")))
        return str(folder) if code.get("S3Bucket") == LOCAL_BUCKET and folder else None

    def wait_updated(self, name: str) -> None:
        self.lam.get_waiter("function_updated_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def deploy_order(resources: dict[str, Any]) -> list[str]:
    """Resources after everything they refer to (Ref, GetAtt, Sub, DependsOn, UpdatePolicy)."""
    deps: dict[str, set[str]] = {}
    for logical, res in resources.items():
        found = set(references(res)) & set(resources)
        depends = res.get("DependsOn") or []
        found |= set([depends] if isinstance(depends, str) else depends) & set(resources)
        found.discard(logical)
        deps[logical] = found
    out: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise click.ClickException(f"circular dependency: {' -> '.join((*path, node))}")
        state[node] = 1
        for dep in sorted(deps[node]):
            visit(dep, (*path, node))
        state[node] = 2
        out.append(node)

    for logical in resources:
        visit(logical, ())
    return out


# -- one function per resource kind ----------------------------------------------------------------

Handler = Callable[[Deployment, str, dict[str, Any], dict[str, Any]], None]


def _role(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    name = props.get("RoleName") or d.physical_name(logical)
    d.resolver.refs[logical] = name
    d.resolver.attrs[(logical, "Arn")] = f"arn:aws:iam::{d.account_id}:role/{name}"
    d.notes.append(_ROLES_NOTE)


def _layer_version(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    data = d.code(props.get("Content"), logical)
    name = props.get("LayerName") or logical
    want = {
        "Description": props.get("Description", ""),
        "CompatibleRuntimes": props.get("CompatibleRuntimes") or [],
        "CompatibleArchitectures": props.get("CompatibleArchitectures") or [],
        "LicenseInfo": props.get("LicenseInfo"),
    }
    latest = d.lam.list_layer_versions(LayerName=name, MaxItems=1)["LayerVersions"]
    if latest:
        current = d.lam.get_layer_version(LayerName=name, VersionNumber=latest[0]["Version"])
        have = {k: current.get(k, [] if k.startswith("Compatible") else None) for k in want}
        have["Description"] = current.get("Description", "")
        if current["Content"]["CodeSha256"] == sha256_b64(data) and have == want:
            arn = current["LayerVersionArn"]
            d.echo(f"  = layer {name}:{current['Version']} unchanged")
            d.resolver.refs[logical] = arn
            return
    kwargs = {k: v for k, v in want.items() if v}
    out = d.lam.publish_layer_version(LayerName=name, Content={"ZipFile": data}, **kwargs)
    d.echo(f"  + layer {name}:{out['Version']} published ({len(data)} bytes)")
    d.resolver.refs[logical] = out["LayerVersionArn"]


def _describe(value: Any, key: str = "") -> str:
    if key == "Layers" and isinstance(value, list):  # name:version reads better than ARNs
        return "[" + ", ".join(str(v).split(":layer:")[-1] for v in value) + "]"
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _function(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    lam = d.lam
    name = props.get("FunctionName") or d.physical_name(logical)
    runtime = props.get("Runtime")
    data = d.code(props.get("Code"), logical, runtime)
    folder = d.hot_folder(props.get("Code"))
    code_arg: dict[str, Any] = {"ZipFile": data}
    if folder is not None:
        code_arg = {"S3Bucket": HOT_RELOAD_BUCKET, "S3Key": folder}
    desired = {k: props[k] for k in _CONFIG_KEYS if k in props}
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except lam.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        tags = {
            t["Key"]: t["Value"] for t in props.get("Tags") or [] if not t["Key"].startswith("aws:")
        }
        extra = {k: props[k] for k in ("Architectures", "PackageType") if k in props}
        cfg = lam.create_function(FunctionName=name, Code=code_arg, Tags=tags, **desired, **extra)
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )
        d.echo(f"  + function {name} created ({len(data)} bytes)")
        d.changed[logical] = True
    else:
        what: list[str] = []
        if folder is not None:
            location = lam.get_function(FunctionName=name)["Code"].get("Location", "")
            if location != f"file://{folder}":
                lam.update_function_code(FunctionName=name, **code_arg)
                d.wait_updated(name)
                what.append(f"code read live from {folder}")
        elif current["CodeSha256"] != sha256_b64(data) or (
            "Architectures" in props and props["Architectures"] != current.get("Architectures")
        ):
            archs = {"Architectures": props["Architectures"]} if "Architectures" in props else {}
            lam.update_function_code(FunctionName=name, ZipFile=data, **archs)
            d.wait_updated(name)
            what.append("code")
        changes: dict[str, Any] = {}
        for key in _CONFIG_KEYS:
            want = desired.get(key, _CONFIG_DEFAULTS.get(key))
            if want is None:
                continue
            have = _current_value(current, key)
            if have != want:
                changes[key] = want
                what.append(f"{key} {_describe(have, key)} -> {_describe(want, key)}")
        if changes:
            lam.update_function_configuration(FunctionName=name, **changes)
            d.wait_updated(name)
        cfg = current
        if what:
            d.echo(f"  ~ function {name}: " + "; ".join(what))
        else:
            d.echo(f"  = function {name} unchanged")
        d.changed[logical] = bool(what)
    reserved = props.get("ReservedConcurrentExecutions")
    if reserved is not None:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(reserved))
    d.functions[logical] = name
    d.resolver.refs[logical] = name
    d.resolver.attrs[(logical, "Arn")] = cfg["FunctionArn"].split(":$LATEST")[0]


def _current_value(current: dict[str, Any], key: str) -> Any:
    if key == "Layers":
        return [layer["Arn"] for layer in current.get("Layers") or []]
    if key == "Environment":
        return {"Variables": (current.get("Environment") or {}).get("Variables") or {}}
    if key == "DeadLetterConfig":
        return current.get(key) or {}
    return current.get(key, _CONFIG_DEFAULTS.get(key))


def _version(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    raw = (res.get("Properties") or {}).get("FunctionName")
    fn_logical = raw.get("Ref") if isinstance(raw, dict) else None
    function = props["FunctionName"]
    published = [
        v
        for page in d.lam.get_paginator("list_versions_by_function").paginate(FunctionName=function)
        for v in page["Versions"]
        if v["Version"] != "$LATEST"
    ]
    latest = d.lam.get_function_configuration(FunctionName=function)
    newest = max(published, key=lambda v: int(v["Version"])) if published else None
    changed = d.changed.get(fn_logical or "", True)
    if newest is not None and not changed and newest["CodeSha256"] == latest["CodeSha256"]:
        version = newest
        d.echo(f"  = version {function}:{version['Version']} (nothing changed, none published)")
    else:
        kwargs = {"Description": props["Description"]} if props.get("Description") else {}
        version = d.lam.publish_version(FunctionName=function, **kwargs)
        d.echo(f"  + version {function}:{version['Version']} published")
    d.resolver.refs[logical] = version["FunctionArn"]
    d.resolver.attrs[(logical, "Version")] = version["Version"]


def _deployment_group(
    d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]
) -> None:
    d.deploy_configs[logical] = str(props.get("DeploymentConfigName") or "AllAtOnce")
    d.resolver.refs[logical] = d.physical_name(logical)
    if props.get("AlarmConfiguration"):
        d.notes.append("DeploymentPreference alarms are not watched by Lamina")


def _codedeploy_application(
    d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]
) -> None:
    d.resolver.refs[logical] = d.physical_name(logical)


def _alias(d: Deployment, logical: str, props: dict[str, Any], res: dict[str, Any]) -> None:
    lam = d.lam
    function, name, version = props["FunctionName"], props["Name"], str(props["FunctionVersion"])
    routing = props.get("RoutingConfig")
    try:
        current = lam.get_alias(FunctionName=function, Name=name)
    except lam.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        kwargs = {"RoutingConfig": routing} if routing else {}
        out = lam.create_alias(FunctionName=function, Name=name, FunctionVersion=version, **kwargs)
        d.echo(f"  + alias {function}:{name} -> version {version}")
    elif current["FunctionVersion"] != version:
        policy = (res.get("UpdatePolicy") or {}).get("CodeDeployLambdaAliasUpdate") or {}
        group = (policy.get("DeploymentGroupName") or {}).get("Ref")
        config = d.deploy_configs.get(group or "", "AllAtOnce")
        d.echo(
            f"  ~ alias {function}:{name}: version {current['FunctionVersion']} -> {version} ({shift.short_name(config)})"
        )
        for hook in ("BeforeAllowTrafficHook", "AfterAllowTrafficHook"):
            if policy.get(hook):
                d.notes.append(f"DeploymentPreference {hook} functions are not run by Lamina")
        shift.shift(
            lam,
            function=function,
            alias=name,
            old=current["FunctionVersion"],
            new=version,
            config_name=config,
            scale=d.shift_scale,
            echo=d.echo,
        )
        out = lam.get_alias(FunctionName=function, Name=name)
    else:
        out = current
        d.echo(f"  = alias {function}:{name} -> version {version} unchanged")
    d.resolver.refs[logical] = out["AliasArn"]


HANDLERS_BASE: dict[str, Handler] = {
    "AWS::IAM::Role": _role,
    "AWS::Lambda::LayerVersion": _layer_version,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Version": _version,
    "AWS::Lambda::Alias": _alias,
    "AWS::CodeDeploy::Application": _codedeploy_application,
    "AWS::CodeDeploy::DeploymentGroup": _deployment_group,
}


def _handlers() -> dict[str, Handler]:
    from lamina.cli.sam.events import HANDLERS as EVENT_HANDLERS

    return {**HANDLERS_BASE, **EVENT_HANDLERS}


_HANDLERS = _handlers()

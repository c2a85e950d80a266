"""CreateFunction, GetFunction(Configuration), UpdateFunctionCode/Configuration, DeleteFunction,
ListFunctions: the wire side. Rules live in control/registry.py and control/validation.py."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lamina.api import shapes
from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.api.wire import function_configuration
from lamina.control import hot_reload, listing, validation
from lamina.control.code_store import CodeStore
from lamina.control.model import CodeRef, FunctionConfig
from lamina.control.names import NAME_RE, check_scope, merge_qualifier, parse_function_ref
from lamina.control.registry import Registry
from lamina.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    ValidationException,
)
from lamina.triggers.s3_errors import S3Error

# Members Lamina stores and echoes without acting on them.
_STORED_ONLY = (
    "VpcConfig",
    "KMSKeyArn",
    "FileSystemConfigs",
    "ImageConfig",
    "CodeSigningConfigArn",
    "SnapStart",
    "TenancyConfig",
    "CapacityProviderConfig",
    "DurableConfig",
    "RuntimeConfig",
    "AcceleratorConfig",
)


# Reads (bucket, key) from Lamina's own S3 API (triggers/object_store.py), for S3 code locations.
ObjectReader = Callable[[str, str, int], Awaitable[bytes]]
# The largest package Lamina reads from a bucket: Lambda's unzipped limit bounds the zip too.
MAX_S3_PACKAGE_BYTES = 262_144_000


async def read_s3_location(
    objects: ObjectReader | None, bucket: Any, key: Any, member: str
) -> bytes:
    """A zip named by `S3Bucket`/`S3Key`, read from Lamina's buckets; Lambda's error wording."""
    if objects is None:
        raise InvalidParameterValueException(
            f"Lamina accepts {member}.ZipFile only here (no S3 API)."
        )
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise InvalidParameterValueException(f"{member}.S3Bucket and {member}.S3Key are required.")
    try:
        return await objects(bucket, key, MAX_S3_PACKAGE_BYTES)
    except S3Error as exc:
        raise InvalidParameterValueException(
            f"Error occurred while GetObject. S3 Error Code: {exc.code}. S3 Error Message: "
            f"{exc.message}"
        ) from exc


async def _zip_bytes(code: Any, objects: ObjectReader | None) -> bytes:
    if not isinstance(code, dict):
        raise InvalidParameterValueException("Code must be an object with ZipFile.")
    if "ZipFile" not in code:
        if "ImageUri" in code:
            raise InvalidParameterValueException(
                "Lamina accepts deployment packages as Code.ZipFile or Code.S3Bucket/S3Key only "
                "(images are not supported)."
            )
        if "S3Bucket" in code or "S3Key" in code:
            return await read_s3_location(objects, code.get("S3Bucket"), code.get("S3Key"), "Code")
        raise InvalidParameterValueException("Please provide a source for function code.")
    try:
        return base64.b64decode(code["ZipFile"], validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise InvalidParameterValueException("Code.ZipFile is not valid base64.") from exc


def _config_fields(body: dict[str, Any], runtime: str, *, creating: bool) -> dict[str, Any]:
    """Map wire members to FunctionConfig fields, validating each with Lambda's limits."""
    f: dict[str, Any] = {}
    if "Role" in body or creating:
        f["role"] = validation.role(body.get("Role"))
    if "Handler" in body or creating:
        f["handler"] = validation.handler(body.get("Handler"), runtime)
    if "Description" in body:
        f["description"] = validation.description(body["Description"])
    if "Timeout" in body:
        f["timeout_s"] = validation.timeout_s(body["Timeout"])
    if "MemorySize" in body:
        f["memory_mb"] = validation.memory_mb(body["MemorySize"])
    if "EphemeralStorage" in body:
        f["ephemeral_mb"] = validation.ephemeral_mb(body["EphemeralStorage"])
    if "Environment" in body:
        f["environment"] = validation.environment(body["Environment"])
    if "Layers" in body:
        f["layers"] = validation.layers(body["Layers"])
    if "TracingConfig" in body:
        f["tracing_mode"] = validation.tracing_mode(body["TracingConfig"])
    if "DeadLetterConfig" in body:
        f["dead_letter_target"] = validation.dead_letter_target(body["DeadLetterConfig"])
    if "LoggingConfig" in body:
        lc = validation.logging_config(body["LoggingConfig"])
        f["log_format"] = lc["LogFormat"]
        f["log_group"] = lc.get("LogGroup")
        f["application_log_level"] = lc.get("ApplicationLogLevel")
        f["system_log_level"] = lc.get("SystemLogLevel")
    extra = {k: body[k] for k in _STORED_ONLY if k in body}
    if extra:
        # Not acted on, but echoed: a value off the model would reach clients that cannot
        # parse it (GetFunction would fail in every SDK).
        shapes.check_members(
            "CreateFunction" if creating else "UpdateFunctionConfiguration", extra, _STORED_ONLY
        )
        f["extra"] = extra
    return f


# ListFunctions entries leave out the state members and RuntimeVersionConfig, as AWS does.
_NOT_LISTED = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


def list_limit(req: Request) -> int | None:
    """The MaxItems query member of a list operation (1-10000; pages hold at most 50)."""
    max_items = req.query_one("MaxItems")
    if max_items is None:
        return None
    if not max_items.isdecimal():
        raise validation.constraint_error(max_items, "maxItems", "Member must be an integer")
    return validation.int_in_range(int(max_items), "maxItems", 1, 10000)


def _flag(body: dict[str, Any], member: str) -> bool:
    value = body.get(member, False)
    if not isinstance(value, bool):
        raise validation.constraint_error(
            value, member[0].lower() + member[1:], "Member must be a boolean"
        )
    return value


def list_entry(cfg: FunctionConfig, *, qualified: bool = False) -> dict[str, Any]:
    out = function_configuration(cfg, qualified=qualified)
    for key in _NOT_LISTED:
        out.pop(key, None)
    return out


class FunctionsAPI:
    def __init__(
        self, registry: Registry, code: CodeStore, objects: ObjectReader | None = None
    ) -> None:
        self.registry = registry
        self.code = code
        self.objects = objects

    def mount(self, router: Router) -> None:
        base = "/2015-03-31/functions"
        router.add("POST", base, self.create)
        router.add("GET", base, self.list)
        router.add("GET", base + "/", self.list)
        router.add("GET", base + "/{name}", self.get)
        router.add("GET", base + "/{name}/configuration", self.get_configuration)
        router.add("PUT", base + "/{name}/code", self.update_code)
        router.add("PUT", base + "/{name}/configuration", self.update_configuration)
        router.add("DELETE", base + "/{name}", self.delete)
        router.add("GET", "/_lamina/code/{sha}.zip", self.download)

    async def _code_source(self, code: Any) -> bytes | CodeRef:
        """A zip (given, or in one of Lamina's buckets), or a hot-reloaded folder (LocalStack's
        `hot-reload` bucket convention)."""
        if isinstance(code, dict) and code.get("S3Bucket") == hot_reload.BUCKET:
            return hot_reload.local_code(
                code.get("S3Key"), enabled=self.registry.hot_reload, data_dir=self.code.root.parent
            )
        return await _zip_bytes(code, self.objects)

    async def create(self, req: Request) -> Response:
        body = req.json()
        name = body.get("FunctionName")
        if not isinstance(name, str):
            raise validation.constraint_error(name, "functionName", "Member must not be null")
        ref = parse_function_ref(name, allow_qualifier=False)
        check_scope(ref, req.region, self.registry.account_id)  # an ARN may name another region
        if not NAME_RE.fullmatch(ref.name):
            raise validation.constraint_error(
                name, "functionName", "Member must have length less than or equal to 64"
            )
        package_type = body.get("PackageType", "Zip")
        if package_type != "Zip":
            raise InvalidParameterValueException("Lamina supports PackageType Zip only.")
        runtime = body.get("Runtime")
        if runtime is None:
            raise InvalidParameterValueException("Runtime is required for a Zip package.")
        validation.runtime(runtime, self.registry.runtimes)
        fields = _config_fields(body, runtime, creating=True)
        fields["name"] = ref.name
        fields["runtime"] = runtime
        if "Architectures" in body:
            fields["architectures"] = validation.architectures(body["Architectures"])
        tags = validation.tags(body.get("Tags"))
        if tags:
            fields.setdefault("extra", {})["Tags"] = tags
        zip_bytes = await self._code_source(body.get("Code"))
        publish = _flag(body, "Publish")
        cfg = await self.registry.create(req.region, fields, zip_bytes, publish=publish)
        return json_response(function_configuration(cfg), 201)

    async def get(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        record = self.registry.record(req.region, ref)
        qualifier = merge_qualifier(ref, req.query_one("Qualifier"))
        cfg = self.registry.resolve(req.region, ref, qualifier)
        named_arn = cfg.arn if qualifier is None else f"{cfg.arn}:{qualifier}"
        out: dict[str, Any] = {
            # A read that names a qualifier (even $LATEST) returns the qualified ARN, as AWS
            # does; through an alias GetFunction shows the alias's ARN (the version's number
            # stays in Version), while GetFunctionConfiguration shows the version's.
            "Configuration": function_configuration(cfg, arn=named_arn),
            "Code": {
                "RepositoryType": "S3",
                "Location": (
                    f"file://{cfg.code.local_path}"
                    if cfg.code.local_path
                    else f"http://{req.host}/_lamina/code/{cfg.code.sha256_hex}.zip"
                ),
            },
        }
        if record.tags:
            out["Tags"] = record.tags
        if record.reserved_concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": record.reserved_concurrency}
        return json_response(out)

    async def get_configuration(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        qualifier = merge_qualifier(ref, req.query_one("Qualifier"))
        cfg = self.registry.resolve(req.region, ref, qualifier)
        return json_response(function_configuration(cfg, qualified=qualifier is not None))

    async def update_code(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        body = req.json()
        self.registry.record(req.region, ref)  # a missing function is a 404 whatever the zip
        zip_bytes = await self._code_source(
            {k: v for k, v in body.items() if k in ("ZipFile", "S3Bucket", "S3Key", "ImageUri")}
        )
        archs = validation.architectures(body["Architectures"]) if "Architectures" in body else None
        if _flag(body, "DryRun"):
            self.registry.record(req.region, ref)
            return json_response(function_configuration(self.registry.resolve(req.region, ref)))
        cfg = await self.registry.update_code(
            req.region,
            ref,
            zip_bytes,
            revision_id=body.get("RevisionId"),
            architectures=archs,
            publish=_flag(body, "Publish"),
        )
        return json_response(function_configuration(cfg))

    async def update_configuration(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"], allow_qualifier=False)
        body = req.json()
        current = self.registry.resolve(req.region, ref)
        runtime = body.get("Runtime", current.runtime)
        if "Runtime" in body:  # before the handler is checked against it
            validation.runtime(runtime, self.registry.runtimes)
        changes = _config_fields(body, runtime, creating=False)
        if "Runtime" in body:
            changes["runtime"] = runtime
        cfg = await self.registry.update_configuration(
            req.region, ref, changes, revision_id=body.get("RevisionId")
        )
        return json_response(function_configuration(cfg))

    async def delete(self, req: Request) -> Response:
        ref = parse_function_ref(req.params["name"])
        await self.registry.delete(req.region, ref, req.query_one("Qualifier"))
        return empty(204)

    async def list(self, req: Request) -> Response:
        limit = list_limit(req)
        version = req.query_one("FunctionVersion")
        if version is not None and version != "ALL":
            raise ValidationException(
                f"1 validation error detected: Value '{version}' at 'functionVersion' failed to "
                "satisfy constraint: Member must satisfy enum value set: [ALL]"
            )
        configs, marker = listing.functions_page(
            self.registry.functions(req.region),
            req.query_one("Marker"),
            limit,
            all_versions=version == "ALL",
        )
        # With FunctionVersion=ALL every entry, $LATEST's too, carries its qualified ARN.
        out: dict[str, Any] = {
            "Functions": [list_entry(c, qualified=version == "ALL") for c in configs]
        }
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

    async def download(self, req: Request) -> Response:
        sha = req.params["sha"]
        path: Path = self.code.zip_path(sha)
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            raise ResourceNotFoundException("The resource you requested does not exist.")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ResourceNotFoundException("The resource you requested does not exist.") from exc
        return Response(200, data, [], "application/zip")

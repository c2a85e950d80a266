"""PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions, DeleteLayerVersion:
the wire side. The rules live in control/layers.py."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lamina.api.functions import ObjectReader, read_s3_location
from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.control.layers import Layers
from lamina.control.layers_store import LayerVersion
from lamina.control.validation import ARCHITECTURES
from lamina.errors import InvalidParameterValueException, ValidationException

BASE = "/2018-10-31/layers"


class LayersAPI:
    def __init__(self, layers: Layers, objects: ObjectReader | None = None) -> None:
        self.layers = layers
        self.objects = objects

    def mount(self, router: Router) -> None:
        router.add("GET", BASE, self.get_by_arn, query={"find": "LayerVersion"})
        router.add("GET", BASE, self.list_layers)
        router.add("POST", BASE + "/{name}/versions", self.publish)
        router.add("GET", BASE + "/{name}/versions", self.list_versions)
        router.add("GET", BASE + "/{name}/versions/{number}", self.get)
        router.add("DELETE", BASE + "/{name}/versions/{number}", self.delete)

    async def publish(self, req: Request) -> Response:
        name = self.layers.layer_name(req.region, req.params["name"])
        body = req.json()
        errors: list[str] = []
        fields: dict[str, Any] = {}
        description = body.get("Description", "")
        if not isinstance(description, str) or len(description) > 256:
            errors.append(
                _violation(
                    description, "description", "Member must have length less than or equal to 256"
                )
            )
        fields["description"] = description
        if "LicenseInfo" in body and body["LicenseInfo"] is not None:
            licence = body["LicenseInfo"]
            if not isinstance(licence, str) or len(licence) > 512:
                errors.append(
                    _violation(
                        licence, "licenseInfo", "Member must have length less than or equal to 512"
                    )
                )
            fields["license_info"] = licence
        runtimes = body.get("CompatibleRuntimes") or []
        if not isinstance(runtimes, list) or len(runtimes) > 15:
            errors.append(
                _violation(
                    runtimes,
                    "compatibleRuntimes",
                    "Member must have length less than or equal to 15",
                )
            )
        elif any(not isinstance(r, str) or r not in self.layers.runtimes for r in runtimes):
            errors.append(
                _violation(
                    _listed(runtimes),
                    "compatibleRuntimes",
                    "Member must satisfy constraint: [Member must satisfy enum value set: "
                    f"[{', '.join(sorted(self.layers.runtimes))}]]",
                )
            )
        fields["compatible_runtimes"] = tuple(runtimes) if isinstance(runtimes, list) else ()
        archs = body.get("CompatibleArchitectures") or []
        if not isinstance(archs, list) or len(archs) > 2:
            errors.append(
                _violation(
                    archs,
                    "compatibleArchitectures",
                    "Member must have length less than or equal to 2",
                )
            )
        elif any(not isinstance(a, str) or a not in ARCHITECTURES for a in archs):
            errors.append(
                _violation(
                    _listed(archs),
                    "compatibleArchitectures",
                    "Member must satisfy constraint: [Member must satisfy enum value set: "
                    "[x86_64, arm64]]",
                )
            )
        fields["compatible_architectures"] = tuple(archs) if isinstance(archs, list) else ()
        if errors:
            count = "1 validation error" if len(errors) == 1 else f"{len(errors)} validation errors"
            raise ValidationException(f"{count} detected: {'; '.join(errors)}")
        zip_bytes = await _content_bytes(body.get("Content"), self.objects)
        version = await self.layers.publish(req.region, name, zip_bytes, **fields)
        return json_response(layer_version(version, req.host), 201)

    async def get(self, req: Request) -> Response:
        name = self.layers.layer_name(req.region, req.params["name"])
        version = self.layers.get(req.region, name, version_number(req.params["number"]))
        return json_response(layer_version(version, req.host))

    async def get_by_arn(self, req: Request) -> Response:
        arn = req.query_one("Arn")
        if not arn:
            raise ValidationException(
                "1 validation error detected: Value null at 'arn' failed to satisfy constraint: "
                "Member must not be null"
            )
        return json_response(layer_version(self.layers.get_by_arn(req.region, arn), req.host))

    async def delete(self, req: Request) -> Response:
        name = self.layers.layer_name(req.region, req.params["name"])
        await self.layers.delete(req.region, name, version_number(req.params["number"]))
        return empty(204)

    async def list_layers(self, req: Request) -> Response:
        items, marker = self.layers.list_layers(req.region, **self._filters(req))
        out: dict[str, Any] = {
            "Layers": [
                {
                    "LayerName": v.name,
                    "LayerArn": v.layer_arn,
                    "LatestMatchingVersion": list_item(v),
                }
                for v in items
            ]
        }
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

    async def list_versions(self, req: Request) -> Response:
        name = self.layers.layer_name(req.region, req.params["name"])
        items, marker = self.layers.list_versions(req.region, name, **self._filters(req))
        out: dict[str, Any] = {"LayerVersions": [list_item(v) for v in items]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)

    def _filters(self, req: Request) -> dict[str, Any]:
        runtime = req.query_one("CompatibleRuntime")
        if runtime is not None and runtime not in self.layers.runtimes:
            raise ValidationException(
                f"1 validation error detected: Value '{runtime}' at 'compatibleRuntime' failed "
                "to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(sorted(self.layers.runtimes))}]"
            )
        arch = req.query_one("CompatibleArchitecture")
        if arch is not None and arch not in ARCHITECTURES:
            raise ValidationException(
                f"1 validation error detected: Value '{arch}' at 'compatibleArchitecture' failed "
                "to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]"
            )
        raw = req.query_one("MaxItems")
        max_items = None
        if raw is not None:
            if not raw.lstrip("-").isdecimal():
                raise ValidationException(f"Invalid value for MaxItems: {raw}")
            max_items = int(raw)
            if not 1 <= max_items <= 50:
                bound = (
                    "greater than or equal to 1" if max_items < 1 else "less than or equal to 50"
                )
                raise ValidationException(
                    f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
                    f"satisfy constraint: Member must have value {bound}"
                )
        return {
            "runtime": runtime,
            "architecture": arch,
            "marker": req.query_one("Marker"),
            "max_items": max_items,
        }


def layer_version(v: LayerVersion, host: str) -> dict[str, Any]:
    """PublishLayerVersionResponse / GetLayerVersionResponse."""
    return {
        "Content": {
            "Location": f"http://{host}/_lamina/code/{v.code.sha256_hex}.zip",
            "CodeSha256": v.code.sha256_b64,
            "CodeSize": v.code.size,
        },
        "LayerArn": v.layer_arn,
        **list_item(v),
    }


def list_item(v: LayerVersion) -> dict[str, Any]:
    """LayerVersionsListItem: members that were never set are left out, as AWS does."""
    out: dict[str, Any] = {
        "LayerVersionArn": v.arn,
        "Version": v.version,
        "Description": v.description,
        "CreatedDate": v.created_date,
    }
    if v.compatible_runtimes:
        out["CompatibleRuntimes"] = list(v.compatible_runtimes)
    if v.compatible_architectures:
        out["CompatibleArchitectures"] = list(v.compatible_architectures)
    if v.license_info is not None:
        out["LicenseInfo"] = v.license_info
    return out


def version_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidParameterValueException(f"Invalid layer version number: {raw}") from exc


async def _content_bytes(content: Any, objects: ObjectReader | None) -> bytes:
    if not isinstance(content, dict):
        raise ValidationException(
            "1 validation error detected: Value null at 'content' failed to satisfy constraint: "
            "Member must not be null"
        )
    if "ZipFile" not in content:
        if "S3Bucket" in content or "S3Key" in content:
            return await read_s3_location(
                objects, content.get("S3Bucket"), content.get("S3Key"), "Content"
            )
        raise InvalidParameterValueException("Please provide a source for layer content.")
    try:
        return base64.b64decode(content["ZipFile"], validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise InvalidParameterValueException("Content.ZipFile is not valid base64.") from exc


def _violation(value: object, member: str, constraint: str) -> str:
    return f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"


def _listed(values: list[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"

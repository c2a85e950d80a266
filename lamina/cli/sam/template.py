"""Read a SAM template, package its local code, and transform it to CloudFormation.

The semantics of SAM (Globals, AutoPublishAlias, DeploymentPreference, Events, FunctionUrlConfig,
...) are aws-sam-translator's, the library AWS's own transform uses. Local `CodeUri`/`ContentUri`
folders are zipped here first and stand in the template as `s3://lamina-local/<sha256>` (the
translator accepts only S3 locations), to be swapped back for the zip when applied; other S3
locations are read from Lamina's own S3 API then (docs/s3.md).
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

LOCAL_BUCKET = "lamina-local"


@dataclass
class Template:
    path: Path
    sam: dict[str, Any]  # as written (Events are read from here, for reporting)
    cfn: dict[str, Any]  # after the transform
    artifacts: dict[str, bytes] = field(default_factory=dict)  # S3Key -> zip
    local_dirs: dict[str, Path] = field(default_factory=dict)  # S3Key -> folder it came from


def pack(path: Path) -> bytes:
    """A folder becomes a zip (executable bits kept, stable bytes for the same files); a .zip file
    is taken as it is."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise click.ClickException(f"{path} is neither a folder nor a zip file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git", ".aws-sam"))
            for name in sorted(files):
                full = Path(root) / name
                info = zipfile.ZipInfo(str(full.relative_to(path)))
                info.external_attr = (full.stat().st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, full.read_bytes())
    return buf.getvalue()


def load(
    path: Path, *, region: str, account_id: str, stack: str, parameters: dict[str, str]
) -> Template:
    from samtranslator.yaml_helper import yaml_parse

    try:
        sam = yaml_parse(path.read_text())
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    except Exception as exc:  # yaml's and json's errors
        raise click.ClickException(f"{path} is not a valid template: {exc}") from exc
    if not isinstance(sam, dict) or not isinstance(sam.get("Resources"), dict):
        raise click.ClickException(f"{path} has no Resources")
    tpl = Template(path=path, sam=sam, cfn={})
    work = copy.deepcopy(sam)
    _package(work, tpl)
    tpl.cfn = _transform(
        work, region=region, account_id=account_id, stack=stack, parameters=parameters
    )
    return tpl


def _package(template: dict[str, Any], tpl: Template) -> None:
    """Zip every local code location and put an S3 stand-in in its place."""
    base = tpl.path.parent
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    for logical, res in template["Resources"].items():
        if not isinstance(res, dict):
            continue
        props = res.setdefault("Properties", {}) or {}
        res["Properties"] = props
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function":
            if "InlineCode" in props or (props.get("PackageType") == "Image"):
                continue
            uri = props.get("CodeUri", globals_fn.get("CodeUri"))
            if uri is None:
                raise click.ClickException(f"{logical}: a function needs CodeUri or InlineCode")
            props["CodeUri"] = _local(uri, base, tpl, logical)
        elif kind == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = _local(props.get("ContentUri"), base, tpl, logical)
        elif kind == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            props["Code"] = _s3_location(_local(props["Code"], base, tpl, logical))
        elif kind == "AWS::Lambda::LayerVersion" and isinstance(props.get("Content"), str):
            props["Content"] = _s3_location(_local(props["Content"], base, tpl, logical))


def _s3_location(uri: str) -> dict[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return {"S3Bucket": bucket, "S3Key": key}


def _local(uri: Any, base: Path, tpl: Template, logical: str) -> Any:
    """A local folder or zip, packed; an S3 location (`s3://bucket/key`, or `{Bucket, Key}`) is
    left as it is: the code is read from Lamina's own S3 API when applied."""
    if isinstance(uri, dict) and isinstance(uri.get("Bucket"), str) and "Key" in uri:
        return uri
    if not isinstance(uri, str):
        raise click.ClickException(
            f"{logical}: code must be a local folder or zip, or an s3://bucket/key location"
        )
    if uri.startswith("s3://"):
        return uri
    folder = (base / uri).resolve()
    data = pack(folder)
    key = hashlib.sha256(data).hexdigest()
    tpl.artifacts[key] = data
    if folder.is_dir():
        tpl.local_dirs[key] = folder
    return f"s3://{LOCAL_BUCKET}/{key}"


def _transform(
    template: dict[str, Any],
    *,
    region: str,
    account_id: str,
    stack: str,
    parameters: dict[str, str],
) -> dict[str, Any]:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    if "AWS::Serverless-2016-10-31" not in transforms:
        return template  # plain CloudFormation: nothing to transform
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    session = boto3.session.Session(
        region_name=region, aws_access_key_id="lamina", aws_secret_access_key="lamina"
    )
    translator = Translator(None, Parser(), boto_session=session)
    values = {
        "AWS::AccountId": account_id,
        "AWS::StackName": stack,
        "AWS::Region": region,
        **parameters,
    }
    try:
        out: dict[str, Any] = translator.translate(
            template, parameter_values=values, get_managed_policy_map=dict
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(c) for c in exc.causes) or str(exc)
        raise click.ClickException(f"invalid SAM template: {causes}") from exc
    return out

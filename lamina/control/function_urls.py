"""Function URL configurations: one per function and qualifier (an alias, or none for $LATEST).

Each configuration owns a stable url id (32 characters of [0-9a-z], as on AWS) by which the URL
gateway finds it. Configurations live in their own table and are read from memory; a deleted
function takes its configurations with it.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from lamina.control.model import now_lambda_timestamp
from lamina.control.names import FunctionRef, merge_qualifier
from lamina.control.registry import Registry
from lamina.db import Database
from lamina.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)

AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
LIST_PAGE_MAX = 50
URL_ID_CHARS = string.digits + string.ascii_lowercase
URL_ID_RE = re.compile(r"[0-9a-z]{32}")
_QUALIFIER_RE = re.compile(r"(?!\d+$)[0-9a-zA-Z\-_]{1,128}")

metadata = sa.MetaData()

function_url_configs = sa.Table(
    "function_url_configs",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),  # "" when unqualified
    sa.Column("url_id", sa.String(32), nullable=False, unique=True),
    sa.Column("config", sa.Text, nullable=False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cors:
    allow_credentials: bool | None = None
    allow_headers: tuple[str, ...] | None = None
    allow_methods: tuple[str, ...] | None = None
    allow_origins: tuple[str, ...] | None = None
    expose_headers: tuple[str, ...] | None = None
    max_age_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionUrlConfig:
    region: str
    account_id: str
    function_name: str
    qualifier: str | None  # an alias name, or None for the unqualified function ($LATEST)
    url_id: str
    auth_type: str
    cors: Cors | None = None
    invoke_mode: str | None = None  # None: never given (BUFFERED, and not echoed)
    creation_time: str
    last_modified_time: str

    @property
    def function_arn(self) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"
        return arn if self.qualifier is None else f"{arn}:{self.qualifier}"

    @property
    def streaming(self) -> bool:
        return self.invoke_mode == "RESPONSE_STREAM"


class FunctionUrls:
    def __init__(self, db: Database, registry: Registry) -> None:
        self.db = db
        self.registry = registry
        db.create(metadata)
        self._by_target: dict[tuple[str, str, str | None], FunctionUrlConfig] = {}
        self._by_id: dict[str, FunctionUrlConfig] = {}

    async def load(self) -> None:
        """Read every configuration; those of functions deleted meanwhile are dropped now."""
        for text in await self.db.run(self._load_rows):
            cfg = _decode(text)
            if self.registry.find(cfg.region, cfg.function_name) is None:
                await self.db.run(self._remove, cfg)
                continue
            self._remember(cfg)

    # -- reads -----------------------------------------------------------------------------------

    def by_url_id(self, url_id: str) -> FunctionUrlConfig | None:
        """The gateway's lookup, from memory."""
        return self._by_id.get(url_id)

    def get(self, region: str, ref: FunctionRef, qualifier: str | None) -> FunctionUrlConfig:
        name, q = self._target(region, ref, qualifier, missing_function=_no_resource)
        found = self._by_target.get((region, name, q))
        if found is None:
            raise _no_resource()
        return found

    def list_page(
        self, region: str, ref: FunctionRef, marker: str | None, max_items: int | None
    ) -> tuple[list[FunctionUrlConfig], str | None]:
        if ref.qualifier is not None:
            raise _qualifier_invalid(ref.qualifier)
        name, _ = self._target(region, ref, None, missing_function=_no_function)
        found = sorted(
            (c for (r, n, _), c in self._by_target.items() if r == region and n == name),
            key=lambda c: c.qualifier or "",
        )
        if marker:  # opaque to clients: "q:" + the last qualifier of the previous page
            after = marker.removeprefix("q:")
            found = [c for c in found if (c.qualifier or "") > after]
        limit = min(max_items or LIST_PAGE_MAX, LIST_PAGE_MAX)
        page = found[:limit]
        return page, (f"q:{page[-1].qualifier or ''}" if len(found) > limit and page else None)

    # -- writes ----------------------------------------------------------------------------------

    async def create(
        self, region: str, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]
    ) -> FunctionUrlConfig:
        name, q = self._target(region, ref, qualifier, missing_function=_no_function, new=True)
        auth_type = _auth_type(body.get("AuthType"))
        cors = _cors(body["Cors"]) if body.get("Cors") is not None else None
        invoke_mode = _invoke_mode(body.get("InvokeMode"))
        if (region, name, q) in self._by_target:
            raise self._exists(region, name, q)
        url_id = "".join(secrets.choice(URL_ID_CHARS) for _ in range(32))
        while url_id in self._by_id:  # pragma: no cover - 36**32 ids
            url_id = "".join(secrets.choice(URL_ID_CHARS) for _ in range(32))
        now = now_lambda_timestamp()
        cfg = FunctionUrlConfig(
            region=region,
            account_id=self.registry.account_id,
            function_name=name,
            qualifier=q,
            url_id=url_id,
            auth_type=auth_type,
            cors=cors,
            invoke_mode=invoke_mode,
            creation_time=now,
            last_modified_time=now,
        )
        self._remember(cfg)  # before the await: a concurrent create sees it and conflicts
        try:
            await self.db.run(self._write, cfg)
        except BaseException:
            self._forget(cfg)
            raise
        return cfg

    async def update(
        self, region: str, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]
    ) -> FunctionUrlConfig:
        name, q = self._target(region, ref, qualifier, missing_function=_no_function)
        changes: dict[str, Any] = {}
        if body.get("AuthType") is not None:
            changes["auth_type"] = _auth_type(body["AuthType"])
        if body.get("Cors") is not None:
            changes["cors"] = _cors(body["Cors"])
        if body.get("InvokeMode") is not None:
            changes["invoke_mode"] = _invoke_mode(body["InvokeMode"])
        old = self._by_target.get((region, name, q))
        if old is None:
            raise _no_resource()
        new = replace(old, **changes, last_modified_time=now_lambda_timestamp())
        await self.db.run(self._write, new)
        if self._by_target.get((region, name, q)) is old:
            self._remember(new)
        return new

    async def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        found = self.get(region, ref, qualifier)
        self._forget(found)
        await self.db.run(self._remove, found)

    def forget_deleted(self, region: str, name: str, _version: str) -> None:
        """Registry listener: a deleted function takes its URL configurations with it.

        A deleted alias does not (as on AWS): its URL stays configured and answers again once an
        alias of that name exists.
        """
        if self.registry.find(region, name) is not None:
            return
        for key in [k for k in self._by_target if k[0] == region and k[1] == name]:
            cfg = self._by_target[key]
            self._forget(cfg)
            self.db.submit(self._remove, cfg)

    # -- internals -------------------------------------------------------------------------------

    def _target(
        self,
        region: str,
        ref: FunctionRef,
        qualifier: str | None,
        *,
        missing_function: Any,
        new: bool = False,
    ) -> tuple[str, str | None]:
        """The function's name and the URL's qualifier (an alias), both checked."""
        q = merge_qualifier(ref, qualifier)
        if q is not None and not _QUALIFIER_RE.fullmatch(q):
            raise _qualifier_invalid(q)
        try:
            record = self.registry.record(region, ref)
        except ResourceNotFoundException as exc:
            raise missing_function() from exc
        if q is not None and new:
            # The pattern left only alias names: a new URL must name one of the function's.
            # An existing URL outlives its alias (as on AWS), so Get/Update/Delete do not ask.
            self.registry.alias(region, FunctionRef(record.latest.name, None, None, None), q)
        return record.latest.name, q

    def _exists(self, region: str, name: str, q: str | None) -> ResourceConflictException:
        arn = f"arn:aws:lambda:{region}:{self.registry.account_id}:function:{name}"
        if q is not None:
            arn += f":{q}"
        return ResourceConflictException(
            f"Failed to create function url config for [functionArn = {arn}]. "
            "Error message:  FunctionUrlConfig exists for this Lambda function"
        )

    def _remember(self, cfg: FunctionUrlConfig) -> None:
        self._by_target[(cfg.region, cfg.function_name, cfg.qualifier)] = cfg
        self._by_id[cfg.url_id] = cfg

    def _forget(self, cfg: FunctionUrlConfig) -> None:
        self._by_target.pop((cfg.region, cfg.function_name, cfg.qualifier), None)
        self._by_id.pop(cfg.url_id, None)

    def _load_rows(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(sa.select(function_url_configs.c.config)).scalars())

    def _write(self, cfg: FunctionUrlConfig) -> None:
        t = function_url_configs
        with self.db.engine.begin() as conn:
            conn.execute(t.delete().where(*_row_key(cfg)))
            conn.execute(
                t.insert().values(
                    region=cfg.region,
                    function_name=cfg.function_name,
                    qualifier=cfg.qualifier or "",
                    url_id=cfg.url_id,
                    config=json.dumps(asdict(cfg)),
                )
            )

    def _remove(self, cfg: FunctionUrlConfig) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(function_url_configs.delete().where(*_row_key(cfg)))


def _row_key(cfg: FunctionUrlConfig) -> tuple[Any, ...]:
    t = function_url_configs
    return (
        t.c.region == cfg.region,
        t.c.function_name == cfg.function_name,
        t.c.qualifier == (cfg.qualifier or ""),
    )


def _decode(text: str) -> FunctionUrlConfig:
    data = json.loads(text)
    cors = data.pop("cors")
    if cors is not None:
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in cors.items()
        }
        cors = Cors(**fields)
    return FunctionUrlConfig(**data, cors=cors)


# -- validation (messages as AWS words them) -----------------------------------------------------


def _no_resource() -> ResourceNotFoundException:
    return ResourceNotFoundException("The resource you requested does not exist.")


def _no_function() -> ResourceNotFoundException:
    return ResourceNotFoundException("Function does not exist")


def _qualifier_invalid(value: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at 'qualifier' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)"
    )


def _enum(value: Any, member: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    return str(value)


def _auth_type(value: Any) -> str:
    if value is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'authType' failed to satisfy "
            "constraint: Member must not be null"
        )
    return _enum(value, "authType", AUTH_TYPES)


def _invoke_mode(value: Any) -> str | None:
    return None if value is None else _enum(value, "invokeMode", INVOKE_MODES)


_CORS_LISTS = {
    # member: (field, wire name, most items, longest item, shortest item)
    "AllowHeaders": ("allow_headers", "cors.allowHeaders", 100, 1024, 0),
    "AllowMethods": ("allow_methods", "cors.allowMethods", 6, 6, 0),
    "AllowOrigins": ("allow_origins", "cors.allowOrigins", 100, 253, 1),
    "ExposeHeaders": ("expose_headers", "cors.exposeHeaders", 100, 1024, 0),
}


def _cors(value: Any) -> Cors:
    if not isinstance(value, dict):
        raise InvalidParameterValueException("Cors must be an object.")
    fields: dict[str, Any] = {}
    for member, (field, wire, most, longest, shortest) in _CORS_LISTS.items():
        items = value.get(member)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValidationException(
                f"1 validation error detected: Value '{items}' at '{wire}' failed to satisfy "
                "constraint: Member must be a list of strings"
            )
        if len(items) > most:
            raise ValidationException(
                f"1 validation error detected: Value '[{', '.join(items)}]' at '{wire}' failed "
                f"to satisfy constraint: Member must have length less than or equal to {most}"
            )
        for item in items:
            if len(item) > longest or len(item) < shortest:
                bound = (
                    f"length less than or equal to {longest}"
                    if len(item) > longest
                    else f"length greater than or equal to {shortest}"
                )
                raise ValidationException(
                    f"1 validation error detected: Value '[{', '.join(items)}]' at '{wire}' "
                    f"failed to satisfy constraint: Member must satisfy constraint: "
                    f"[Member must have {bound}]"
                )
        if member == "AllowMethods":
            bad = [m for m in items if m != "*" and m.upper() not in _HTTP_METHODS]
            if bad:
                raise InvalidParameterValueException(
                    f"Invalid Cors: Method {bad[0]} is not supported in AllowMethods"
                )
        fields[field] = tuple(items)
    credentials = value.get("AllowCredentials")
    if credentials is not None:
        if not isinstance(credentials, bool):
            raise ValidationException(
                f"1 validation error detected: Value '{credentials}' at 'cors.allowCredentials' "
                "failed to satisfy constraint: Member must be a boolean"
            )
        fields["allow_credentials"] = credentials
    max_age = value.get("MaxAge")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            raise ValidationException(
                f"1 validation error detected: Value '{max_age}' at 'cors.maxAge' failed to "
                "satisfy constraint: Member must be an integer"
            )
        if not 0 <= max_age <= 86_400:
            bound = "less than or equal to 86400" if max_age > 0 else "greater than or equal to 0"
            raise ValidationException(
                f"1 validation error detected: Value '{max_age}' at 'cors.maxAge' failed to "
                f"satisfy constraint: Member must have value {bound}"
            )
        fields["max_age_s"] = max_age
    return Cors(**fields)


_HTTP_METHODS = frozenset({"GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"})

"""JSON types of request members, checked against botocore's Lambda model.

Some members are stored and echoed back rather than acted on; one of the wrong JSON type (a list
where the model has a structure) would be echoed to clients that then cannot parse the answer.
Only the types are checked here: each operation's own rules (ranges, enums, messages) stay where
they are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

from lamina.errors import InvalidParameterValueException

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "blob": (str,),
    "timestamp": (str, int, float),
    "structure": (dict,),
    "list": (list,),
    "map": (dict,),
}


@lru_cache(maxsize=1)
def _lambda_model() -> ServiceModel:
    """Loaded on first use (about 30 ms): most requests never need it."""
    return botocore.session.get_session().get_service_model("lambda")


def check_container_members(operation: str, body: dict[str, Any]) -> None:
    """The structure, list and map members of `body` have the model's JSON types, all the way
    down; scalars at the top are left to the operation's own checks (and their messages)."""
    shape = _lambda_model().operation_model(operation).input_shape
    if not isinstance(shape, StructureShape):
        return
    for name, value in body.items():
        member = shape.members.get(name)
        if member is not None and value is not None and member.type_name in _CONTAINERS:
            _check(value, member, name)


_CONTAINERS = ("structure", "list", "map")


def _check(value: Any, shape: Shape, path: str) -> None:
    kind = shape.type_name
    types = _JSON_TYPES.get(kind)
    if types is None:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InvalidParameterValueException(
            f"Invalid type for parameter {path}: the model's type is {kind}."
        )
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, item in value.items():
            member = shape.members.get(name)
            if member is not None and item is not None:
                _check(item, member, f"{path}.{name}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, shape.member, f"{path}[{i}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}")

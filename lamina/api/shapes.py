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


def check_members(operation: str, body: dict[str, Any], names: tuple[str, ...]) -> None:
    """The members `names` of `body` (those present) have the model's types and meet its
    constraints (enums, lengths, ranges): for members Lamina stores without acting on them."""
    shape = _lambda_model().operation_model(operation).input_shape
    if not isinstance(shape, StructureShape):
        return
    for name in names:
        member = shape.members.get(name)
        value = body.get(name)
        if member is not None and value is not None:
            _check(value, member, name, constraints=True)


_CONTAINERS = ("structure", "list", "map")


def _violation(value: Any, path: str, constraint: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _check_constraints(value: Any, shape: Shape, path: str) -> None:
    meta = shape.metadata
    if isinstance(value, str) and shape.enum and value not in shape.enum:
        raise _violation(
            value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        )
    if isinstance(value, str | list | dict):
        if "max" in meta and len(value) > meta["max"]:
            raise _violation(
                value, path, f"Member must have length less than or equal to {meta['max']}"
            )
        if "min" in meta and len(value) < meta["min"]:
            raise _violation(
                value, path, f"Member must have length greater than or equal to {meta['min']}"
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "max" in meta and value > meta["max"]:
            raise _violation(
                value, path, f"Member must have value less than or equal to {meta['max']}"
            )
        if "min" in meta and value < meta["min"]:
            raise _violation(
                value, path, f"Member must have value greater than or equal to {meta['min']}"
            )


def _check(value: Any, shape: Shape, path: str, *, constraints: bool = False) -> None:
    kind = shape.type_name
    types = _JSON_TYPES.get(kind)
    if types is None:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InvalidParameterValueException(
            f"Invalid type for parameter {path}: the model's type is {kind}."
        )
    if constraints:
        _check_constraints(value, shape, path)
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, item in value.items():
            member = shape.members.get(name)
            if member is not None and item is not None:
                _check(item, member, f"{path}.{name}", constraints=constraints)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, shape.member, f"{path}[{i}]", constraints=constraints)
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}", constraints=constraints)

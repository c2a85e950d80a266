"""CloudFormation's intrinsic functions, resolved on the client against what was deployed.

Lamina has no CloudFormation: `lamina deploy -t` applies the transformed template itself, so it
resolves `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If` (with
`Conditions`), `Fn::Equals`/`And`/`Or`/`Not`, `Fn::FindInMap` and `Fn::Base64` in resource order.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from typing import Any

import click

NO_VALUE = object()  # Ref AWS::NoValue: the member is left out
_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolved(click.ClickException):
    pass


class Resolver:
    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
    ) -> None:
        self.refs: dict[str, Any] = dict(parameters)  # logical id or parameter -> Ref value
        self.attrs: dict[tuple[str, str], Any] = {}  # (logical id, attribute) -> value
        self.skipped: set[str] = set()  # resources not deployed: their attributes are placeholders
        self.mappings = mappings
        self._condition_defs = conditions
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_defs:
                raise Unresolved(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._condition_defs[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            fn = _FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def _ref(self, name: Any) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in self.refs:
            raise Unresolved(f"cannot resolve Ref {name}")
        return self.refs[name]

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical, attribute = self.resolve(arg[0]), self.resolve(arg[1])
        if logical in self.skipped:
            return f"<{logical}: not deployed>"
        if (logical, attribute) not in self.attrs:
            raise Unresolved(f"cannot resolve Fn::GetAtt {logical}.{attribute}")
        return self.attrs[(logical, attribute)]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in variables:
                return str(variables[name])
            if name not in self.refs and "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        return _SUB_RE.sub(one, text).replace("${!", "${")

    def _if(self, arg: Any) -> Any:
        name, then, otherwise = arg
        return self.resolve(then if self.condition(name) else otherwise)

    def _find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(a) for a in arg)
        try:
            return self.mappings[name][top][second]
        except KeyError as exc:
            raise Unresolved(f"Fn::FindInMap: no {name}.{top}.{second}") from exc


def _join(r: Resolver, arg: Any) -> str:
    sep, items = arg
    return str(sep).join(str(i) for i in r.resolve(items))


def _select(r: Resolver, arg: Any) -> Any:
    index, items = arg
    return r.resolve(items)[int(r.resolve(index))]


def _split(r: Resolver, arg: Any) -> list[str]:
    sep, text = arg
    return str(r.resolve(text)).split(str(sep))


def _unsupported(name: str) -> Any:
    def fail(_r: Resolver, _arg: Any) -> Any:
        raise Unresolved(f"{name} is not supported by `lamina deploy` (no CloudFormation exports)")

    return fail


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, a: r._ref(a),
    "Fn::GetAtt": lambda r, a: r._get_att(a),
    "Fn::Sub": lambda r, a: r._sub(a),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": lambda r, a: r._if(a),
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Fn::FindInMap": lambda r, a: r._find_in_map(a),
    "Fn::Base64": lambda r, a: base64.b64encode(str(r.resolve(a)).encode()).decode(),
    "Fn::GetAZs": lambda r, a: [],
    "Fn::ImportValue": _unsupported("Fn::ImportValue"),
}


def references(value: Any) -> Iterator[str]:
    """The logical ids and parameters a value refers to (for ordering resources)."""
    if isinstance(value, list):
        for v in value:
            yield from references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                first = arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
                if isinstance(first, str):
                    yield first
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                local = set(arg[1]) if isinstance(arg, list) and isinstance(arg[1], dict) else set()
                for m in _SUB_RE.finditer(text):
                    name = m.group(1).split(".", 1)[0]
                    if name not in local:
                        yield name
                if isinstance(arg, list):
                    yield from references(arg[1])
            else:
                yield from references(arg)

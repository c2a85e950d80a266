"""Lambda's event filtering (FilterCriteria): patterns checked once, then matched against records.

A pattern is a JSON object. Each key names a field of the record; its value is either a nested
pattern (an object) or a list of rules, any of which may match. Every key must match (AND); `$or`
takes a list of patterns of which one must match. A rule is a literal (string, number, boolean,
null: equal values match), or one of `prefix`, `suffix`, `equals-ignore-case`, `wildcard`,
`anything-but`, `numeric` (comparisons, joined by AND), `exists`. Where the record holds a list,
a rule matches when it matches one of its elements. A record passes FilterCriteria when any of its
filters matches (OR); with no filters every record passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lamina.errors import InvalidParameterValueException

MAX_FILTERS = 10
MAX_PATTERN_CHARS = 4096
_MISSING = object()
_OPERATORS = {"<", "<=", "=", ">=", ">"}


class PatternError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Filters:
    patterns: tuple[dict[str, Any], ...]

    def matches(self, view: Any) -> bool:
        if not self.patterns:
            return True
        return any(_match_object(p, view) for p in self.patterns)


def compile_filters(patterns: Sequence[str]) -> Filters:
    """Parse and check the Pattern strings of FilterCriteria.Filters."""
    parsed = []
    for text in patterns:
        try:
            pattern = json.loads(text)
            check_pattern(pattern)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidParameterValueException(
                f"Invalid filter pattern definition. {exc}".strip()
            ) from exc
        parsed.append(pattern)
    return Filters(tuple(parsed))


def validate_criteria(criteria: Any) -> tuple[str, ...]:
    """FilterCriteria from a request: the Pattern strings, checked. `{}` or no Filters: none."""
    if criteria is None:
        return ()
    if not isinstance(criteria, dict):
        raise InvalidParameterValueException("Invalid filter criteria definition.")
    filters = criteria.get("Filters")
    if filters is None:
        return ()
    if not isinstance(filters, list):
        raise InvalidParameterValueException("Invalid filter criteria definition.")
    if len(filters) > MAX_FILTERS:
        raise InvalidParameterValueException(
            f"Number of filters exceeds the limit of {MAX_FILTERS}."
        )
    out = []
    for item in filters:
        text = item.get("Pattern") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text:
            raise InvalidParameterValueException("Invalid filter pattern definition.")
        if len(text) > MAX_PATTERN_CHARS:
            raise InvalidParameterValueException(
                f"1 validation error detected: Value at 'filterCriteria.filters.pattern' failed "
                f"to satisfy constraint: Member must have length less than or equal to "
                f"{MAX_PATTERN_CHARS}"
            )
        out.append(text)
    compile_filters(out)
    return tuple(out)


# -- checking --------------------------------------------------------------------------------


def check_pattern(pattern: Any) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise PatternError("A filter pattern must be a non-empty JSON object.")
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise PatternError("$or must be a list of at least two patterns.")
            for sub in value:
                check_pattern(sub)
        elif isinstance(value, dict):
            check_pattern(value)
        elif isinstance(value, list):
            if not value:
                raise PatternError(f"Empty list of rules for '{key}'.")
            for rule in value:
                _check_rule(key, rule)
        else:
            raise PatternError(f"Rules for '{key}' must be a list or an object.")


def _check_rule(key: str, rule: Any) -> None:
    if rule is None or isinstance(rule, str | int | float | bool):
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise PatternError(f"Invalid rule for '{key}'.")
    ((op, arg),) = rule.items()
    if op in ("prefix", "suffix"):
        if isinstance(arg, dict) and set(arg) == {"equals-ignore-case"}:
            arg = arg["equals-ignore-case"]
        if not isinstance(arg, str):
            raise PatternError(f"{op} takes a string.")
    elif op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError("equals-ignore-case takes a string.")
    elif op == "wildcard":
        if not isinstance(arg, str) or "**" in arg:
            raise PatternError("wildcard takes a string without consecutive '*'.")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false.")
    elif op == "numeric":
        _check_numeric(arg)
    elif op == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case"):
                raise PatternError("anything-but takes values, or one prefix/suffix rule.")
            _check_rule(key, arg)
        elif isinstance(arg, list):
            if not arg or not all(isinstance(v, str | int | float) for v in arg):
                raise PatternError("anything-but takes a list of strings or numbers.")
        elif not isinstance(arg, str | int | float) or isinstance(arg, bool):
            raise PatternError("anything-but takes values, or one prefix/suffix rule.")
    else:
        raise PatternError(f"Unrecognized match type {op}.")


def _check_numeric(arg: Any) -> None:
    if not isinstance(arg, list) or not arg or len(arg) % 2:
        raise PatternError("numeric takes pairs of an operator and a number.")
    for i in range(0, len(arg), 2):
        op, num = arg[i], arg[i + 1]
        if op not in _OPERATORS or isinstance(num, bool) or not isinstance(num, int | float):
            raise PatternError("numeric takes pairs of an operator and a number.")
    if len(arg) > 4 or (len(arg) == 4 and "=" in (arg[0], arg[2])):
        raise PatternError("numeric takes one equality or at most a lower and an upper bound.")


# -- matching --------------------------------------------------------------------------------


def _match_object(pattern: dict[str, Any], data: Any) -> bool:
    for key, rules in pattern.items():
        if key == "$or":
            if not any(_match_object(sub, data) for sub in rules):
                return False
            continue
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(rules, dict):
            if isinstance(value, list):
                if not any(_match_object(rules, v) for v in value if isinstance(v, dict)):
                    return False
            elif not isinstance(value, dict) or not _match_object(rules, value):
                return False
        elif not _match_rules(rules, value):
            return False
    return True


def _match_rules(rules: list[Any], value: Any) -> bool:
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            present = value is not _MISSING and not (isinstance(value, list) and not value)
            if present == rule["exists"]:
                return True
            continue
        if value is _MISSING:
            continue
        values = value if isinstance(value, list) else [value]
        if any(_match_rule(rule, v) for v in values):
            return True
    return False


def _match_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _equal(rule, value)
    ((op, arg),) = rule.items()
    if op == "prefix":
        return isinstance(value, str) and _affix(arg, value, str.startswith)
    if op == "suffix":
        return isinstance(value, str) and _affix(arg, value, str.endswith)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if op == "wildcard":
        return isinstance(value, str) and _wildcard(arg).fullmatch(value) is not None
    if op == "numeric":
        return _numeric(arg, value)
    if op == "anything-but":
        if isinstance(arg, dict):
            return isinstance(value, str) and not _match_rule(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return value is not None and not any(_equal(x, value) for x in excluded)
    return False


def _equal(rule: Any, value: Any) -> bool:
    if rule is None or value is None:
        return rule is None and value is None
    if isinstance(rule, bool) or isinstance(value, bool):
        return isinstance(rule, bool) and isinstance(value, bool) and rule == value
    if isinstance(rule, int | float) and isinstance(value, int | float):
        return float(rule) == float(value)
    return type(rule) is type(value) and bool(rule == value)


def _affix(arg: Any, value: str, test: Any) -> bool:
    if isinstance(arg, dict):
        return bool(test(value.casefold(), arg["equals-ignore-case"].casefold()))
    return bool(test(value, arg))


def _numeric(arg: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    for i in range(0, len(arg), 2):
        op, bound = arg[i], float(arg[i + 1])
        v = float(value)
        ok = {
            "<": v < bound,
            "<=": v <= bound,
            "=": v == bound,
            ">=": v >= bound,
            ">": v > bound,
        }[op]
        if not ok:
            return False
    return True


_WILDCARDS: dict[str, re.Pattern[str]] = {}


def _wildcard(arg: str) -> re.Pattern[str]:
    found = _WILDCARDS.get(arg)
    if found is None:
        found = re.compile(".*".join(re.escape(part) for part in arg.split("*")), re.DOTALL)
        if len(_WILDCARDS) < 1024:
            _WILDCARDS[arg] = found
    return found


def json_view(text: str) -> Any:
    """A body or data field as Lambda filters it: parsed when it is JSON, else the text."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to filter on
        return text

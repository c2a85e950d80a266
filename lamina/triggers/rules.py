"""EventBridge rules and their targets on the default event bus: validation as EventBridge does
it, persisted in two tables and served from memory.

A rule's schedule state is `next_fire_ms` (when it runs next; None when disabled, without a
schedule, or past its last year) and `anchor_ms` (when a rate schedule started: rate runs fall
one period apart from it). The scheduler (scheduler.py) moves `next_fire_ms` on when it fires.
Every change takes `lock`, which the scheduler also holds while it fires, so the two never race.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lamina.db import Database
from lamina.triggers.errors import (
    InvalidEventPatternException,
    LimitExceededException,
    ResourceNotFoundException,
    ValidationException,
)
from lamina.triggers.schedule_expressions import Rate, Schedule, ScheduleError, parse

NAME_RE = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")
INPUT_PATH_RE = re.compile(r"\$(\.[A-Za-z0-9_\-]+|\[\d+\])*")
STATES = ("ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")
DEFAULT_BUS = "default"
TARGETS_PER_RULE = 5  # EventBridge's quota
PAGE_MAX = 100

metadata = sa.MetaData()

event_rules = sa.Table(
    "event_rules",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("schedule", sa.Text, nullable=True),
    sa.Column("event_pattern", sa.Text, nullable=True),
    sa.Column("state", sa.String(48), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("role_arn", sa.Text, nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("anchor_ms", sa.BigInteger, nullable=False),
    sa.Column("next_fire_ms", sa.BigInteger, nullable=True),
    sa.Column("last_fire_ms", sa.BigInteger, nullable=True),
)

event_targets = sa.Table(
    "event_targets",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # the Target as it was put (JSON)
)

event_rule_tags = sa.Table(
    "event_rule_tags",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
)
RULE_ARN_RE = re.compile(
    r"arn:aws[\w-]*:events:([a-z0-9-]+):(\d{12}):rule/(?:default/)?([\.\-_A-Za-z0-9]+)"
)


@dataclass(frozen=True, slots=True)
class Rule:
    region: str
    name: str
    schedule: str | None
    event_pattern: str | None
    state: str
    description: str | None
    role_arn: str | None
    created_ms: int
    anchor_ms: int
    next_fire_ms: int | None
    last_fire_ms: int | None

    @property
    def key(self) -> tuple[str, str]:
        return self.region, self.name

    @property
    def enabled(self) -> bool:
        return self.state != "DISABLED"


@lru_cache(maxsize=1024)
def schedule_of(expression: str) -> Schedule:
    return parse(expression)


def invalid(member: str, value: Any, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def check_name(value: Any, member: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(member, value, "Member must have length greater than or equal to 1")
    if len(value) > 64:
        raise invalid(member, value, "Member must have length less than or equal to 64")
    if not NAME_RE.fullmatch(value):
        raise invalid(
            member, value, r"Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+"
        )
    return value


def check_bus(value: Any) -> None:
    """Lamina has the default event bus only; scheduled rules live there on AWS too."""
    if value is None:
        return
    if not isinstance(value, str) or value.rsplit("/", 1)[-1] != DEFAULT_BUS:
        raise ResourceNotFoundException(f"Event bus {value} does not exist.")


def optional_str(body: dict[str, Any], member: str, limit: int) -> str | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SerializationError(member)
    if len(value) > limit:
        raise invalid(
            member[0].lower() + member[1:],
            value,
            f"Member must have length less than or equal to {limit}",
        )
    return value


class SerializationError(ValidationException):
    def __init__(self, member: str) -> None:
        super().__init__(f"The value of {member} has the wrong type.")


def not_found(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Rule {name} does not exist on EventBus {DEFAULT_BUS}.")


def page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def after_token(token: Any) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(str(token).encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationException("The NextToken provided is not valid.") from exc


def limit_of(value: Any) -> int:
    if value is None:
        return PAGE_MAX
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PAGE_MAX:
        raise invalid("limit", value, "Member must have value between 1 and 100")
    return value


class Rules:
    def __init__(
        self,
        db: Database,
        *,
        account_id: str,
        clock_ms: Callable[[], int],
        time_scale: float = 1.0,
    ) -> None:
        self.db = db
        self.account_id = account_id
        self.clock_ms = clock_ms
        self.time_scale = time_scale
        db.create(metadata)
        self.lock = asyncio.Lock()
        self._rules: dict[tuple[str, str], Rule] = {}
        self._targets: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._tags: dict[tuple[str, str], dict[str, str]] = {}
        self.on_change: Callable[[], None] | None = None  # wakes the scheduler

    async def load(self) -> None:
        rules, targets, tags = await self.db.run(self._load_rows)
        for rule in rules:
            self._rules[rule.key] = rule
        for region, rule_name, key, value in tags:
            self._tags.setdefault((region, rule_name), {})[key] = value
        for region, rule_name, spec in targets:
            self._targets.setdefault((region, rule_name), {})[spec["Id"]] = spec

    def _load_rows(
        self,
    ) -> tuple[list[Rule], list[tuple[str, str, dict[str, Any]]], list[tuple[str, str, str, str]]]:
        with self.db.engine.connect() as conn:
            rules = [Rule(**r._mapping) for r in conn.execute(sa.select(event_rules))]
            t = event_targets.c
            targets = [
                (r.region, r.rule, json.loads(r.spec))
                for r in conn.execute(sa.select(event_targets).order_by(t.seq))
            ]
            tags = [
                (r.region, r.rule, r.tag_key, r.tag_value)
                for r in conn.execute(sa.select(event_rule_tags))
            ]
        return rules, targets, tags

    # -- reads -----------------------------------------------------------------------------------

    def arn(self, region: str, name: str) -> str:
        return f"arn:aws:events:{region}:{self.account_id}:rule/{name}"

    def get(self, region: str, name: Any) -> Rule:
        name = check_name(name, "name")
        found = self._rules.get((region, name))
        if found is None:
            raise not_found(name)
        return found

    def current(self, key: tuple[str, str]) -> Rule | None:
        return self._rules.get(key)

    def targets(self, rule: Rule) -> list[dict[str, Any]]:
        return list(self._targets.get(rule.key, {}).values())

    def list_page(
        self, region: str, prefix: str | None, token: Any, limit: Any
    ) -> tuple[list[Rule], str | None]:
        after = after_token(token)
        size = limit_of(limit)
        names = sorted(
            n for (r, n) in self._rules if r == region and (not prefix or n.startswith(prefix))
        )
        if after is not None:
            names = [n for n in names if n > after]
        page = names[:size]
        more = page_token(page[-1]) if len(names) > size else None
        return [self._rules[(region, n)] for n in page], more

    def rule_names_by_target(
        self, region: str, arn: str, token: Any, limit: Any
    ) -> tuple[list[str], str | None]:
        after = after_token(token)
        size = limit_of(limit)
        names = sorted(
            n
            for (r, n), targets in self._targets.items()
            if r == region and any(t["Arn"] == arn for t in targets.values())
        )
        if after is not None:
            names = [n for n in names if n > after]
        page = names[:size]
        return page, (page_token(page[-1]) if len(names) > size else None)

    def scheduled(self) -> list[Rule]:
        return [r for r in self._rules.values() if r.next_fire_ms is not None]

    def plan(self, rule: Rule, after_ms: int) -> int | None:
        """When `rule` runs next after `after_ms`, by its schedule and state."""
        if not rule.enabled or rule.schedule is None:
            return None
        schedule = schedule_of(rule.schedule)
        if isinstance(schedule, Rate):
            return schedule.next_after(rule.anchor_ms, after_ms, self.time_scale)
        return schedule.next_after(after_ms)

    # -- writes ----------------------------------------------------------------------------------

    async def put_rule(self, region: str, body: dict[str, Any]) -> Rule:
        name = check_name(body.get("Name"), "name")
        check_bus(body.get("EventBusName"))
        schedule = optional_str(body, "ScheduleExpression", 256)
        pattern = optional_str(body, "EventPattern", 4096)
        description = optional_str(body, "Description", 512)
        role_arn = optional_str(body, "RoleArn", 1600)
        state = body.get("State", "ENABLED")
        if state not in STATES:
            raise invalid(
                "state", state, f"Member must satisfy enum value set: [{', '.join(STATES)}]"
            )
        if not schedule and not pattern:
            raise ValidationException(
                "Parameter(s) EventPattern or ScheduleExpression must be specified."
            )
        if schedule:
            try:
                schedule_of(schedule)
            except ScheduleError as exc:
                raise ValidationException("Parameter ScheduleExpression is not valid.") from exc
        if pattern:
            check_pattern(pattern)
        tags = check_tags(body.get("Tags"))
        async with self.lock:
            now = self.clock_ms()
            old = self._rules.get((region, name))
            restart = (
                old is None
                or old.schedule != (schedule or None)
                or old.enabled != (state != "DISABLED")
            )
            rule = Rule(
                region=region,
                name=name,
                schedule=schedule or None,
                event_pattern=pattern or None,
                state=state,
                description=description,
                role_arn=role_arn,
                created_ms=old.created_ms if old else now,
                anchor_ms=now if restart or old is None else old.anchor_ms,
                next_fire_ms=None if old is None else old.next_fire_ms,
                last_fire_ms=None if old is None else old.last_fire_ms,
            )
            if restart:
                rule = replace(rule, next_fire_ms=self.plan(rule, now))
            await self.db.run(self._write_rule, rule, old is None)
            self._rules[rule.key] = rule
            if tags:
                await self._merge_tags(rule.key, tags)
        self._changed()
        return rule

    # -- tags ------------------------------------------------------------------------------------

    def _by_arn(self, arn: Any) -> tuple[str, str]:
        m = RULE_ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
        if m is None:
            raise ValidationException(f"Parameter ResourceARN is not valid: {arn}")
        if m[2] != self.account_id or (m[1], m[3]) not in self._rules:
            raise not_found(m[3])
        return m[1], m[3]

    def tags(self, arn: Any) -> dict[str, str]:
        return dict(self._tags.get(self._by_arn(arn), {}))

    async def tag(self, arn: Any, tags: Any) -> None:
        async with self.lock:
            await self._merge_tags(self._by_arn(arn), check_tags(tags))

    async def untag(self, arn: Any, keys: Any) -> None:
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise invalid("tagKeys", keys, "Member must not be null")
        async with self.lock:
            key = self._by_arn(arn)
            current = {k: v for k, v in self._tags.get(key, {}).items() if k not in keys}
            await self.db.run(self._write_tags, key, current)
            self._tags[key] = current

    async def _merge_tags(self, key: tuple[str, str], tags: dict[str, str]) -> None:
        current = {**self._tags.get(key, {}), **tags}
        await self.db.run(self._write_tags, key, current)
        self._tags[key] = current

    async def set_state(self, region: str, name: Any, state: str) -> None:
        async with self.lock:
            rule = self.get(region, name)
            if rule.state == state:
                return
            now = self.clock_ms()
            rule = replace(rule, state=state, anchor_ms=now)
            rule = replace(rule, next_fire_ms=self.plan(rule, now))
            await self.db.run(self._write_rule, rule, False)
            self._rules[rule.key] = rule
        self._changed()

    async def delete_rule(self, region: str, name: Any) -> None:
        name = check_name(name, "name")
        async with self.lock:
            rule = self._rules.get((region, name))
            if rule is None:
                return  # as EventBridge: deleting a rule that is not there succeeds
            if self._targets.get(rule.key):
                raise ValidationException("Rule can't be deleted since it has targets.")
            await self.db.run(self._delete_rule, rule)
            self._rules.pop(rule.key, None)
            self._targets.pop(rule.key, None)
            self._tags.pop(rule.key, None)
        self._changed()

    async def put_targets(
        self, region: str, rule_name: Any, targets: list[dict[str, Any]]
    ) -> list[dict[str, str]]:
        """Add or replace targets; returns the failed entries (EventBridge's FailedEntries)."""
        async with self.lock:
            rule = self.get(region, rule_name)
            current = dict(self._targets.get(rule.key, {}))
            failed: list[dict[str, str]] = []
            accepted: list[dict[str, Any]] = []
            for target in targets:
                problem = target_problem(target)
                if problem is not None:
                    failed.append(
                        {
                            "TargetId": str(target.get("Id", "")),
                            "ErrorCode": "ValidationException",
                            "ErrorMessage": problem,
                        }
                    )
                    continue
                accepted.append(target)
                current[target["Id"]] = target
            if len(current) > TARGETS_PER_RULE:
                raise LimitExceededException(
                    f"The requested resource exceeds the maximum number allowed: a rule has at "
                    f"most {TARGETS_PER_RULE} targets."
                )
            if accepted:
                await self.db.run(self._write_targets, rule, list(current.values()))
                self._targets[rule.key] = current
        return failed

    async def remove_targets(self, region: str, rule_name: Any, ids: list[str]) -> None:
        async with self.lock:
            rule = self.get(region, rule_name)
            current = dict(self._targets.get(rule.key, {}))
            for target_id in ids:
                current.pop(target_id, None)
            await self.db.run(self._write_targets, rule, list(current.values()))
            self._targets[rule.key] = current

    def fired(self, rule: Rule, next_fire_ms: int | None) -> None:
        """The scheduler committed a run of `rule` (it holds `lock`)."""
        current = self._rules.get(rule.key)
        if current is not None and current.next_fire_ms == rule.next_fire_ms:
            self._rules[rule.key] = replace(
                current, next_fire_ms=next_fire_ms, last_fire_ms=rule.next_fire_ms
            )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- the database thread ---------------------------------------------------------------------

    def _write_rule(self, rule: Rule, new: bool) -> None:
        values = asdict(rule)
        t = event_rules.c
        with self.db.engine.begin() as conn:
            if new:
                conn.execute(event_rules.insert().values(**values))
            else:
                conn.execute(
                    event_rules.update()
                    .where(t.region == rule.region, t.name == rule.name)
                    .values(**values)
                )

    def _delete_rule(self, rule: Rule) -> None:
        t = event_rules.c
        g = event_rule_tags.c
        with self.db.engine.begin() as conn:
            conn.execute(event_rules.delete().where(t.region == rule.region, t.name == rule.name))
            conn.execute(
                event_rule_tags.delete().where(g.region == rule.region, g.rule == rule.name)
            )
            _clear_targets(conn, rule)

    def _write_tags(self, key: tuple[str, str], tags: dict[str, str]) -> None:
        g = event_rule_tags.c
        with self.db.engine.begin() as conn:
            conn.execute(event_rule_tags.delete().where(g.region == key[0], g.rule == key[1]))
            if tags:
                conn.execute(
                    event_rule_tags.insert(),
                    [
                        {"region": key[0], "rule": key[1], "tag_key": k, "tag_value": v}
                        for k, v in tags.items()
                    ],
                )

    def _write_targets(self, rule: Rule, targets: list[dict[str, Any]]) -> None:
        with self.db.engine.begin() as conn:
            _clear_targets(conn, rule)
            if targets:
                conn.execute(
                    event_targets.insert(),
                    [
                        {
                            "region": rule.region,
                            "rule": rule.name,
                            "target_id": target["Id"],
                            "seq": i,
                            "spec": json.dumps(target),
                        }
                        for i, target in enumerate(targets)
                    ],
                )


def _clear_targets(conn: Connection, rule: Rule) -> None:
    t = event_targets.c
    conn.execute(event_targets.delete().where(t.region == rule.region, t.rule == rule.name))


def fence_fire(conn: Connection, rule: Rule, next_fire_ms: int | None) -> bool:
    """Move `rule` on to its next run, if it still is where the scheduler saw it."""
    t = event_rules.c
    return bool(
        conn.execute(
            event_rules.update()
            .where(
                t.region == rule.region,
                t.name == rule.name,
                t.next_fire_ms == rule.next_fire_ms,
            )
            .values(next_fire_ms=next_fire_ms, last_fire_ms=rule.next_fire_ms)
        ).rowcount
    )


def check_tags(raw: Any) -> dict[str, str]:
    """EventBridge's Tag list ([{Key, Value}], keys 1-128, values 0-256 characters)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise invalid("tags", raw, "Member must be a list")
    out: dict[str, str] = {}
    for item in raw:
        key = item.get("Key") if isinstance(item, dict) else None
        value = item.get("Value") if isinstance(item, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise invalid("tags.member.key", key, "Member must have length between 1 and 128")
        if not isinstance(value, str) or len(value) > 256:
            raise invalid(
                "tags.member.value", value, "Member must have length less than or equal to 256"
            )
        out[key] = value
    return out


def check_pattern(pattern: str) -> None:
    """Stored, not evaluated (Lamina has no PutEvents yet): it must be a JSON object."""
    try:
        parsed = json.loads(pattern)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidEventPatternException(
            f"Event pattern is not valid. Reason: {exc.__class__.__name__}: {exc}"
        ) from exc
    if not isinstance(parsed, dict):
        raise InvalidEventPatternException(
            "Event pattern is not valid. Reason: Filter is not an object"
        )


def check_targets(targets: Any) -> list[dict[str, Any]]:
    """The request's Targets list, shape-checked; duplicate ids are refused."""
    if not isinstance(targets, list) or not targets:
        raise invalid("targets", targets, "Member must have length greater than or equal to 1")
    if len(targets) > 100:
        raise invalid("targets", "[...]", "Member must have length less than or equal to 100")
    seen: set[str] = set()
    for target in targets:
        if not isinstance(target, dict):
            raise ValidationException("Each target must be an object.")
        target_id = check_name(target.get("Id"), "targets.member.id")
        arn = target.get("Arn")
        if not isinstance(arn, str) or not 1 <= len(arn) <= 1600:
            raise invalid("targets.member.arn", arn, "Member must not be null")
        if target_id in seen:
            raise ValidationException(f"The target id {target_id} is given more than once.")
        seen.add(target_id)
    return targets


def target_problem(target: dict[str, Any]) -> str | None:
    """Why Lamina cannot deliver to `target`, or None."""
    arn = target["Arn"]
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        return f"Lamina delivers scheduled events to Lambda functions only; {arn} is not a function ARN."
    given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
    if len(given) > 1:
        return "Only one of Input, InputPath, or InputTransformer must be provided."
    if "InputTransformer" in given:
        return "Lamina does not support InputTransformer; use Input or InputPath."
    text = target.get("Input")
    if text is not None:
        if not isinstance(text, str) or len(text) > 8192:
            return "Input must be a JSON text of at most 8192 characters."
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return "Input is not valid JSON text."
    path = target.get("InputPath")
    if path is not None and (not isinstance(path, str) or not INPUT_PATH_RE.fullmatch(path)):
        return "InputPath must be a JSONPath such as $.detail or $.resources[0]."
    return None

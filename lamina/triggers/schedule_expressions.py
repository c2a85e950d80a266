"""EventBridge schedule expressions: `rate(N unit)` and the six-field `cron(...)`, in UTC.

EventBridge's cron differs from classic (Vixie) cron, which croniter evaluates; each expression is
checked against EventBridge's rules and translated field by field:
- six fields: minutes hours day-of-month month day-of-week year;
- exactly one of day-of-month and day-of-week is `?` (classic cron ORs the two when both are set);
- day-of-week runs 1-7 with 1 = Sunday (classic: 0-6, 0 = Sunday), or SUN-SAT;
- `L` (last day of the month; alone in day-of-week it is Saturday, the week's last day),
  `nL` in day-of-week (the last such weekday of the month), `nW` (the weekday nearest day n),
  `n#k` (the k-th such weekday of the month);
- a year field (1970-2199), which classic cron lacks: Lamina filters croniter's times by it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from croniter import croniter

UTC = dt.UTC
_RATE_RE = re.compile(r"rate\((\d+) +(minute|minutes|hour|hours|day|days)\)")
_CRON_RE = re.compile(r"cron\((.*)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # EventBridge numbers them 1-7
YEAR_MIN, YEAR_MAX = 1970, 2199


class ScheduleError(ValueError):
    """The expression is not one EventBridge accepts."""


@dataclass(frozen=True, slots=True)
class Rate:
    period_s: int

    def next_after(self, anchor_ms: int, after_ms: int, scale: float = 1.0) -> int:
        """The first run after `after_ms` of a rate that started at `anchor_ms` (epoch ms).

        `scale` > 1 shortens the period (a test-only setting: 60 makes a minute last a second).
        """
        period_ms = max(1, round(self.period_s * 1000 / scale))
        if after_ms < anchor_ms:
            return anchor_ms + period_ms
        return anchor_ms + ((after_ms - anchor_ms) // period_ms + 1) * period_ms


@dataclass(frozen=True, slots=True)
class Cron:
    classic: str  # the five-field expression croniter evaluates
    years: frozenset[int] | None  # None: every year

    def next_after(self, after_ms: int) -> int | None:
        """The first run strictly after `after_ms` (epoch ms), or None if there is none."""
        start = dt.datetime.fromtimestamp(after_ms / 1000, UTC)
        while True:
            found: dt.datetime = croniter(self.classic, start).get_next(dt.datetime)
            if self.years is None or found.year in self.years:
                return int(found.timestamp() * 1000)
            later = [y for y in self.years if y > found.year]
            if not later:
                return None
            # Just before 1 January of the next allowed year, so that a run at 00:00 counts.
            start = dt.datetime(min(later), 1, 1, tzinfo=UTC) - dt.timedelta(seconds=1)


Schedule = Rate | Cron


def parse(expression: str) -> Schedule:
    rate = _RATE_RE.fullmatch(expression)
    if rate is not None:
        value, unit = int(rate[1]), rate[2]
        # EventBridge wants the singular for 1 and the plural above it.
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(expression)
        return Rate(value * _UNIT_S[unit.rstrip("s")])
    cron = _CRON_RE.fullmatch(expression)
    if cron is None:
        raise ScheduleError(expression)
    return _parse_cron(cron[1])


def _parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(body)
    minute, hour, dom, month, dow, year = (f.upper() for f in fields)
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be ?")
    classic = " ".join(
        (
            _numeric(minute, 0, 59),
            _numeric(hour, 0, 23),
            "*" if dom == "?" else _day_of_month(dom),
            _numeric(month, 1, 12, names=_MONTHS),
            "*" if dow == "?" else _day_of_week(dow),
        )
    )
    if not croniter.is_valid(classic):
        raise ScheduleError(body)
    years = None if year == "*" else frozenset(_expand(year, YEAR_MIN, YEAR_MAX))
    if years is not None and not years:
        raise ScheduleError(body)
    return Cron(classic, years)


def _number(text: str, low: int, high: int, names: tuple[str, ...] = (), base: int = 1) -> int:
    if text in names:
        return names.index(text) + base
    if not text.isdecimal() or not low <= int(text) <= high:
        raise ScheduleError(text)
    return int(text)


def _items(field: str) -> list[str]:
    items = field.split(",")
    if any(not i for i in items):
        raise ScheduleError(field)
    return items


def _range_step(item: str, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    """`*`, `n`, `a-b`, each optionally `/step`, checked and written with numbers."""
    head, slash, step = item.partition("/")
    if slash and not (step.isdecimal() and int(step) >= 1):
        raise ScheduleError(item)
    if head == "*":
        out = "*"
    elif "-" in head:
        a, _, b = head.partition("-")
        out = f"{_number(a, low, high, names)}-{_number(b, low, high, names)}"
    else:
        out = str(_number(head, low, high, names))
    return out + (f"/{step}" if slash else "")


def _numeric(field: str, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    return ",".join(_range_step(i, low, high, names) for i in _items(field))


def _day_of_month(field: str) -> str:
    out = []
    for item in _items(field):
        if item == "L":
            out.append("L")
        elif item.endswith("W"):
            out.append(f"{_number(item[:-1], 1, 31)}W")
        else:
            out.append(_range_step(item, 1, 31))
    if len(out) > 1 and any(i == "L" or i.endswith("W") for i in out):
        raise ScheduleError(field)  # L and W stand alone, as in EventBridge
    return ",".join(out)


def _weekday(text: str) -> int:
    """An EventBridge day of week (1-7 or SUN-SAT) as classic cron's 0-6."""
    return _number(text, 1, 7, _DAYS) - 1


def _day_of_week(field: str) -> str:
    out = []
    for item in _items(field):
        if item == "L":
            out.append("6")  # the last day of the week: Saturday
        elif item.endswith("L"):
            out.append(f"L{_weekday(item[:-1])}")  # croniter writes "last Friday" as L5
        elif "#" in item:
            day, _, nth = item.partition("#")
            if not (nth.isdecimal() and 1 <= int(nth) <= 5):
                raise ScheduleError(item)
            out.append(f"{_weekday(day)}#{nth}")
        else:
            head, slash, step = item.partition("/")
            if slash and not (step.isdecimal() and int(step) >= 1):
                raise ScheduleError(item)
            if head == "*":
                part = "*"
            elif "-" in head:
                a, _, b = head.partition("-")
                part = f"{_weekday(a)}-{_weekday(b)}"
            else:
                part = str(_weekday(head))
            out.append(part + (f"/{step}" if slash else ""))
    if len(out) > 1 and any("L" in i or "#" in i for i in out):
        raise ScheduleError(field)
    return ",".join(out)


def _expand(field: str, low: int, high: int) -> set[int]:
    years: set[int] = set()
    for item in _items(field):
        spec = _range_step(item, low, high)
        head, _, step = spec.partition("/")
        if head == "*":
            a, b = low, high
        elif "-" in head:
            a, b = (int(x) for x in head.split("-"))
        else:
            a = int(head)
            b = high if step else a
        if a > b:
            raise ScheduleError(item)
        years.update(range(a, b + 1, int(step or 1)))
    return years

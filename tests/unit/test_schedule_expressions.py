"""EventBridge schedule expressions, and where they differ from classic cron."""

from __future__ import annotations

import datetime as dt

import pytest

from lamina.triggers.schedule_expressions import Cron, Rate, ScheduleError, parse

UTC = dt.UTC


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


def runs(expression: str, start: dt.datetime, count: int) -> list[str | None]:
    schedule = parse(expression)
    assert isinstance(schedule, Cron)
    out: list[str | None] = []
    at: int | None = int(start.timestamp() * 1000)
    for _ in range(count):
        assert at is not None
        at = schedule.next_after(at)
        out.append(
            None
            if at is None
            else dt.datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d %a %H:%M")
        )
        if at is None:
            break
    return out


JAN_2026 = dt.datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("expression", "period_s"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_rates(expression: str, period_s: int) -> None:
    assert parse(expression) == Rate(period_s)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",  # 1 takes the singular
        "rate(5 minute)",  # more than 1 takes the plural
        "rate(0 minutes)",
        "rate(-1 minutes)",
        "rate(1 second)",
        "rate(1 week)",
        "rate(1.5 hours)",
        "rate(minutes)",
        "cron(0 10 * * ?)",  # five fields: classic cron, not EventBridge
        "cron(0 0 10 * * ? *)",  # seven fields (seconds)
        "cron(0 10 * * * *)",  # neither day field is ?
        "cron(0 10 ? * ? *)",  # both are
        "cron(0 10 1 * MON *)",  # both set: classic cron would OR them
        "cron(60 10 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 10 32 * ? *)",
        "cron(0 10 ? 13 * *)",
        "cron(0 10 ? * 0 *)",  # EventBridge's week runs 1-7
        "cron(0 10 ? * 8 *)",
        "cron(0 10 ? * 2#6 *)",
        "cron(0 10 * * ? 1969)",
        "cron(0 10 * * ? 2200)",
        "cron(0 10 L,15 * ? *)",
        "cron(0 10 * JANUARY ? *)",
        "cron(0/0 * * * ? *)",
        "cron(0 10 ,1 * ? *)",
        "every day",
        "",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expression)


def test_rate_runs_keep_to_their_anchor() -> None:
    rate = Rate(60)
    anchor = ms(2026, 1, 1, 12, 0, 30)
    assert rate.next_after(anchor, anchor) == anchor + 60_000
    assert rate.next_after(anchor, anchor + 60_000) == anchor + 120_000
    # Long after (Lamina was down): the next run is the first on the grid after now.
    assert rate.next_after(anchor, anchor + 10 * 60_000 + 5) == anchor + 11 * 60_000
    # The test-only time scale shortens the period.
    assert rate.next_after(anchor, anchor, scale=60) == anchor + 1000


def test_daily_at_ten_utc() -> None:
    assert runs("cron(0 10 * * ? *)", JAN_2026, 2) == [
        "2026-01-01 Thu 10:00",
        "2026-01-02 Fri 10:00",
    ]


def test_day_of_week_one_is_sunday() -> None:
    # Classic cron's 1 is Monday; EventBridge's 1 is Sunday and 7 Saturday.
    assert runs("cron(0 10 ? * 1 *)", JAN_2026, 1) == ["2026-01-04 Sun 10:00"]
    assert runs("cron(0 10 ? * 7 *)", JAN_2026, 1) == ["2026-01-03 Sat 10:00"]
    assert runs("cron(0 10 ? * 2-6 *)", JAN_2026, 3) == [
        "2026-01-01 Thu 10:00",
        "2026-01-02 Fri 10:00",
        "2026-01-05 Mon 10:00",
    ]


def test_day_names_and_month_names() -> None:
    assert runs("cron(0 18 ? * MON-FRI *)", JAN_2026, 3) == [
        "2026-01-01 Thu 18:00",
        "2026-01-02 Fri 18:00",
        "2026-01-05 Mon 18:00",
    ]
    assert runs("cron(0 8 1 JAN,JUL ? *)", JAN_2026, 3) == [
        "2026-01-01 Thu 08:00",
        "2026-07-01 Wed 08:00",
        "2027-01-01 Fri 08:00",
    ]
    assert runs("cron(0 8 1 jan ? *)", JAN_2026, 1) == ["2026-01-01 Thu 08:00"]  # any case


def test_steps_ranges_and_lists() -> None:
    assert runs("cron(0/15 * * * ? *)", JAN_2026, 3) == [
        "2026-01-01 Thu 00:15",
        "2026-01-01 Thu 00:30",
        "2026-01-01 Thu 00:45",
    ]
    assert runs("cron(5,35 14 * * ? *)", JAN_2026, 2) == [
        "2026-01-01 Thu 14:05",
        "2026-01-01 Thu 14:35",
    ]
    assert runs("cron(0 9-10 ? * 3 *)", JAN_2026, 2) == [
        "2026-01-06 Tue 09:00",
        "2026-01-06 Tue 10:00",
    ]


def test_last_day_of_month() -> None:
    assert runs("cron(0 10 L * ? *)", JAN_2026, 3) == [
        "2026-01-31 Sat 10:00",
        "2026-02-28 Sat 10:00",
        "2026-03-31 Tue 10:00",
    ]


def test_nearest_weekday() -> None:
    # 15 Feb 2026 is a Sunday: the nearest weekday is Monday the 16th; 1 Feb is a Sunday
    # too, and W does not leave the month: Monday the 2nd.
    assert runs("cron(0 10 15W * ? *)", JAN_2026, 2) == [
        "2026-01-15 Thu 10:00",
        "2026-02-16 Mon 10:00",
    ]
    assert runs("cron(0 10 1W 2 ? *)", JAN_2026, 1) == ["2026-02-02 Mon 10:00"]


def test_last_weekday_of_month_and_nth_weekday() -> None:
    # 6L: the last Friday (6 in EventBridge's week); 2#1: the first Monday.
    assert runs("cron(0 10 ? * 6L *)", JAN_2026, 2) == [
        "2026-01-30 Fri 10:00",
        "2026-02-27 Fri 10:00",
    ]
    assert runs("cron(0 10 ? * 2#1 *)", JAN_2026, 2) == [
        "2026-01-05 Mon 10:00",
        "2026-02-02 Mon 10:00",
    ]
    assert runs("cron(0 10 ? * FRI#3 *)", JAN_2026, 1) == ["2026-01-16 Fri 10:00"]
    # L alone in day-of-week is the week's last day, Saturday.
    assert runs("cron(0 10 ? * L *)", JAN_2026, 1) == ["2026-01-03 Sat 10:00"]


def test_the_year_field() -> None:
    assert runs("cron(0 10 1 1 ? 2027-2028)", JAN_2026, 3) == [
        "2027-01-01 Fri 10:00",
        "2028-01-01 Sat 10:00",
        None,
    ]
    # Midnight on 1 January of an allowed year counts.
    assert runs("cron(0 0 1 1 ? 2030)", JAN_2026, 2) == ["2030-01-01 Tue 00:00", None]
    assert runs("cron(0 10 1 1 ? 2026/2)", JAN_2026, 2) == [
        "2026-01-01 Thu 10:00",
        "2028-01-01 Sat 10:00",
    ]
    # A schedule that lies in the past is valid, and never runs.
    assert runs("cron(0 10 1 1 ? 2025)", JAN_2026, 1) == [None]

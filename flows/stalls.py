"""Norms in Dutch working days: Monday to Friday, minus public holidays and the closing days."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@cache
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NL", years=year))


def is_working_day(day: date, closing_days: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in _public_holidays(day.year) and day not in closing_days


def working_days_between(start: datetime, end: datetime, closing_days: Collection[date] = ()) -> int:
    """Whole working days after ``start``'s day up to and including ``end``'s day (Amsterdam time)."""
    first = start.astimezone(AMSTERDAM).date()
    last = end.astimezone(AMSTERDAM).date()
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        count += is_working_day(day, closing_days)
        day += timedelta(days=1)
    return count

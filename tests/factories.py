"""Builders shared by the advice and note tests: a steady runner, changed one fact at a time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from strava_massage.advice import METRES_PER_MILE, PastRun, TrainingState
from strava_massage.advice.history import totals_around, week_start

MI = METRES_PER_MILE
KM = 1000.0
DAY = date(2025, 6, 11)  # a Wednesday
RUN_DAYS = (0, 2, 4, 6)  # Monday, Wednesday, Friday, Sunday


def unit_of(units: str) -> float:
    """Metres in one of the units."""
    return MI if units == "mi" else KM


def steady_runs(
    weekly_m: float, *, first: date | None = None, last: date | None = None
) -> list[PastRun]:
    """Four runs a week (Mon, Wed, Fri, Sun) of a quarter of `weekly_m` each, first..last."""
    first = first or week_start(DAY) - timedelta(weeks=12)
    last = last or DAY - timedelta(days=2)
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [PastRun(d, weekly_m / 4) for d in days if d.weekday() in RUN_DAYS]


def make_state(
    units: str = "km",
    *,
    runs: Iterable[PastRun] | None = None,
    distance: float | None = None,
    day: date = DAY,
    workout_type: int | None = None,
    **overrides: Any,
) -> TrainingState:
    """A run (default 10 km or 6.25 mi) of a steady runner (40 km or 25 mi a week, four runs,
    twelve weeks) that fires no session rule; `runs` replaces the history, and the totals
    always follow the runs. Distances in metres."""
    unit = unit_of(units)
    weekly = (40 if units == "km" else 25) * unit
    past = sorted(runs if runs is not None else steady_runs(weekly), key=lambda r: r.local_date)
    distance = weekly / 4 if distance is None else distance
    every = [*past, PastRun(day, distance, workout_type)]
    fields: dict[str, Any] = {
        "activity_id": 1001,
        "local_date": day,
        "distance_m": distance,
        "moving_time_s": round(distance / unit * (330 if units == "km" else 530)),
        "workout_type": workout_type,
        "units": units,
        **totals_around(every, day),
        "past_runs": tuple(r for r in past if r.local_date <= day),
        "history_days": (day - past[0].local_date).days if past else 0,
        "since_massage_m": 50 * unit,
        "since_massage_days": 10,
        "last_massage_date": day - timedelta(days=10),
        "next_race_date": None,
        "recent_notes": (),
    }
    fields.update(overrides)
    return TrainingState(**fields)

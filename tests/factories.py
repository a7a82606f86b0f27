"""Builders shared by the advice and note tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from strava_massage.advice import METRES_PER_MILE, TrainingState

MI = METRES_PER_MILE
KM = 1000.0
DAY = date(2025, 6, 11)  # a Wednesday


def make_state(units: str = "km", **overrides: Any) -> TrainingState:
    """An ordinary easy run (8 units in a quiet week) that fires no session rule, plus overrides.

    Distances scale with the units, so the same state reads 8 km or 8 mi; overrides are metres.
    """
    unit = MI if units == "mi" else KM
    fields: dict[str, Any] = {
        "activity_id": 1001,
        "local_date": DAY,
        "distance_m": 8 * unit,
        "moving_time_s": 2400,
        "workout_type": None,
        "units": units,
        "week_m": 20 * unit,
        "month_m": 60 * unit,
        "year_m": 600 * unit,
        "rolling7_m": 20 * unit,
        "rolling28_m": 80 * unit,  # chronic 20 a week: acute:chronic 1.0
        "recent_runs_m": (8 * unit,) * 10,
        "history_days": 365,
        "since_massage_m": 50 * unit,
        "since_massage_days": 10,
        "last_massage_date": DAY - timedelta(days=10),
        "next_race_date": None,
        "recent_notes": (),
    }
    fields.update(overrides)
    return TrainingState(**fields)

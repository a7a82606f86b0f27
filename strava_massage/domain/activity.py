"""An activity as the service sees it: the few fields it reads from Strava, nothing more."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from strava_massage.advice import RUN_TYPES


@dataclass(frozen=True)
class ActivityInfo:
    """The activity fields the service reads; nothing else leaves this module."""

    id: int
    athlete_id: int
    sport_type: str
    distance_m: float
    moving_time_s: int
    start_date_local: dt.datetime  # local wall time, naive
    timezone: str | None
    workout_type: int | None
    description: str
    private_note: str | None

    @property
    def is_run(self) -> bool:
        """Whether this activity counts toward running mileage."""
        return self.sport_type in RUN_TYPES

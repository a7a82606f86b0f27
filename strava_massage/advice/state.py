"""What the advice rules see about one processed run, and what they return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

Units = Literal["mi", "km"]

METRES_PER_MILE = 1609.344
METRES_PER_KM = 1000.0


def metres_per_unit(units: Units) -> float:
    """How many metres one of the runner's units holds."""
    return METRES_PER_MILE if units == "mi" else METRES_PER_KM


def to_units(metres: float, units: Units) -> float:
    """Convert metres to the runner's units."""
    return metres / metres_per_unit(units)


def format_distance(metres: float, units: Units) -> str:
    """Format a distance in the runner's units with one decimal, e.g. "31.4 mi"."""
    return f"{to_units(metres, units):.1f} {units}"


@dataclass(frozen=True)
class PastNote:
    """A note written earlier for the same runner (newest first in TrainingState.recent_notes)."""

    local_date: date
    kind: str
    tip_id: str | None
    is_session: bool
    # Optional so older callers keep working; when set, a note written for the very activity being
    # (re)processed is ignored, so a repeated job gets the same advice as the first run.
    activity_id: int | None = None


@dataclass(frozen=True)
class TrainingState:
    """Everything the rules may look at for one processed run (distances in metres)."""

    activity_id: int
    local_date: date
    distance_m: float
    moving_time_s: int
    workout_type: int | None  # Strava: 1 race, 2 long run, 3 workout
    units: Units
    week_m: float  # ISO week (Mon-Sun, local dates), including this run
    month_m: float
    year_m: float
    rolling7_m: float  # 7 local days ending on local_date, including this run
    rolling28_m: float  # 28 local days ending on local_date, including this run
    recent_runs_m: tuple[float, ...]  # runs in the 28 days before this run, excluding it
    history_days: int  # days between the runner's first known run and local_date
    since_massage_m: float  # since the last logged massage, or since connecting
    since_massage_days: int
    last_massage_date: date | None
    next_race_date: date | None
    recent_notes: tuple[PastNote, ...]  # newest first
    # The last monthly check-in note, however long ago (recent_notes may not reach back that far).
    last_checkin_date: date | None = None


@dataclass(frozen=True)
class Advice:
    """The single note proposed for one run."""

    kind: str  # rule id, see rules.KINDS
    is_session: bool  # a session suggestion (book a massage) rather than a recovery tip
    headline: str
    reason: str  # one line with the numbers that made the rule fire, in the runner's units
    body: str
    fact_ids: tuple[str, ...]  # ids from docs/recovery-knowledge.md
    tip_id: str | None

"""What the advice rules see about one processed run, and what they return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Units = Literal["mi", "km"]

METRES_PER_MILE = 1609.344
METRES_PER_KM = 1000.0

# The rules, by the kind a note records; rules.KINDS lists them in priority order.
POST_RACE = "post_race"
PRE_RACE = "pre_race"
LOAD_SPIKE = "load_spike"
COMEBACK = "comeback"
LONG_RUN = "long_run"
HIGH_VOLUME = "high_volume"
MONTHLY_CHECKIN = "monthly_checkin"
RECOVERY_TIP = "recovery_tip"

# Strava's workout_type values for runs.
WORKOUT_RACE = 1
WORKOUT_LONG_RUN = 2
WORKOUT_WORKOUT = 3
# Strava's sport types that count as running.
RUN_TYPES = ("Run", "TrailRun", "VirtualRun")

# The sore areas a runner can report (a "niggle"), with the words a note uses for each.
NIGGLE_AREAS: dict[str, str] = {
    "calves": "calves",
    "achilles": "Achilles",
    "shins": "shins",
    "hamstrings": "hamstrings",
    "it_band": "IT band and outer knee",
    "foot": "foot and arch",
    "hips": "hips and glutes",
    "lower_back": "lower back",
}


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
class PastRun:
    """A run of the same runner before this one (TrainingState.past_runs, oldest first)."""

    local_date: date
    distance_m: float
    workout_type: int | None = None


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
    # Which of the rule's wordings it used, so the next note of the kind uses another.
    wording_id: str | None = None


@dataclass(frozen=True)
class Niggle:
    """A sore area the runner reported, and the day they reported it."""

    area: str  # a key of NIGGLE_AREAS
    since: date


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
    # The runner's other runs dated in the weeks before this one, up to its day, oldest first:
    # at least AdviceSettings.history_days() of them (the rules look back that far at most).
    past_runs: tuple[PastRun, ...]
    history_days: int  # days between the runner's first known run and local_date
    since_massage_m: float  # since the last logged massage, or since connecting
    since_massage_days: int
    last_massage_date: date | None
    next_race_date: date | None
    recent_notes: tuple[PastNote, ...]  # newest first
    # The last monthly check-in note, however long ago (recent_notes may not reach back that far).
    last_checkin_date: date | None = None
    # The wording each rule used last (kind -> wording id), however long ago.
    last_wordings: Mapping[str, str] = field(default_factory=dict)
    race_distance_m: float | None = None  # the distance of the race the runner set, if given
    niggle: Niggle | None = None
    clinic: str | None = None  # the runner's clinic's name, when they joined one


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
    wording_id: str | None = None  # the session rule's wording, when not a tip

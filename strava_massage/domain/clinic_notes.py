"""What a clinic may change about its runners' notes, checked before it is kept (no Flask).

A sample runner per rule, made by the real rules from a training state that makes the rule
fire, so the wording editor previews the very note such a runner would get; the check a clinic
template passes before it is saved (it renders, and the whole note with the booking line fits
the feed); and the clinic's thresholds, which must be numbers in a sensible range.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strava_massage.advice import (
    COMEBACK,
    DEFAULTS,
    HIGH_VOLUME,
    KINDS,
    LOAD_SPIKE,
    LONG_RUN,
    MONTHLY_CHECKIN,
    POST_RACE,
    PRE_RACE,
    RECOVERY_TIP,
    WORKOUT_RACE,
    Advice,
    AdviceSettings,
    PastRun,
    TrainingState,
    Units,
    advise,
    history,
)
from strava_massage.advice.settings import with_overrides
from strava_massage.advice.state import metres_per_unit
from strava_massage.domain.note_templates import TemplateRefused
from strava_massage.domain.notes import Wording, render_note
from strava_massage.models import Clinic

UNITS: tuple[Units, ...] = ("km", "mi")
SAMPLE_DAY = dt.date(2026, 4, 16)  # a Thursday, mid-week: the week totals have room either way
HALF_MARATHON_M = 21_097.5
# Seconds per unit at an easy pace (5:30 per km, 8:50 per mile), for believable moving times.
_PACE = {"km": 330, "mi": 530}
# A sample runner's usual week: runs on Monday, Wednesday, Friday and Sunday, 40 km or 25 mi.
_RUN_DAYS = (0, 2, 4, 6)
_USUAL_WEEK = {"km": 40, "mi": 25}


# --- sample runners ----------------------------------------------------------------------------


def _usual_runs(day: dt.date, weekly_m: float, *, until: int = 1) -> list[PastRun]:
    """Twelve weeks of the usual week before `day`, the last run `until` days before it."""
    first = history.week_start(day) - dt.timedelta(weeks=12)
    last = day - dt.timedelta(days=until)
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    return [PastRun(d, weekly_m / len(_RUN_DAYS)) for d in days if d.weekday() in _RUN_DAYS]


def _state(
    units: Units, day: dt.date, runs: list[PastRun], distance_m: float, **fields: Any
) -> TrainingState:
    """A sample runner's state for a run of `distance_m` on `day` after `runs`, totals summed."""
    every = [*runs, PastRun(day, distance_m, fields.get("workout_type"))]
    u = metres_per_unit(units)
    values: dict[str, Any] = {
        "activity_id": 1,
        "local_date": day,
        "distance_m": distance_m,
        "moving_time_s": round(distance_m / u * _PACE[units]),
        "workout_type": None,
        "units": units,
        **history.totals_around(every, day),
        "past_runs": tuple(runs),
        "history_days": (day - runs[0].local_date).days if runs else 0,
        "since_massage_m": 50 * u,
        "since_massage_days": 12,
        "last_massage_date": day - dt.timedelta(days=12),
        "next_race_date": None,
        "recent_notes": (),
    }
    values.update(fields)
    return TrainingState(**values)


def sample_state(
    kind: str, units: Units = "km", settings: AdviceSettings = DEFAULTS
) -> TrainingState:
    """A training state that makes the rule `kind` fire under `settings` (KeyError if unknown).

    A steady runner (the usual week for twelve weeks); each rule's runner differs from it just
    enough for that rule to be the one that fires.
    """
    u = metres_per_unit(units)
    weekly = _USUAL_WEEK[units] * u
    day = SAMPLE_DAY
    usual = _usual_runs(day, weekly, until=3)  # Monday: this run takes Wednesday's place
    if kind == POST_RACE:
        return _state(
            units, day, usual, HALF_MARATHON_M, workout_type=WORKOUT_RACE, moving_time_s=6_330
        )
    if kind == PRE_RACE:
        race_in = max(settings.pre_race_min_days, min(5, settings.pre_race_max_days))
        return _state(
            units, day, usual, weekly / 4, next_race_date=day + dt.timedelta(days=race_in)
        )
    if kind == LOAD_SPIKE:
        # Four runs this week that take it a quarter past the jump mark over the usual week.
        size = (settings.week_jump + 0.25) * weekly / 4
        this_week = [PastRun(day - dt.timedelta(days=n), size) for n in (3, 2, 1)]
        return _state(units, day, _usual_runs(day, weekly, until=4) + this_week, size)
    if kind == COMEBACK:
        # Sixteen days off, two weeks ago, then two short runs.
        back = [PastRun(day - dt.timedelta(days=3), weekly / 8)]
        return _state(units, day, _usual_runs(day, weekly, until=20) + back, weekly / 8)
    if kind == LONG_RUN:
        # On a Sunday after a week of rest, so only the long run rule has a say; untagged, so
        # the note explains it against the runner's average run.
        shortest = max(settings.long_run_factor * weekly / 4, settings.long_run_min_m(units))
        distance = (math.ceil(shortest / u) + 2) * u
        sunday = day + dt.timedelta(days=3)
        return _state(units, sunday, _usual_runs(sunday, max(weekly, distance), until=7), distance)
    if kind == HIGH_VOLUME:
        # Every week past the mark, so the last 7 days are as big as the biggest.
        big = max(weekly, math.ceil(settings.high_volume_m(units) / u + 2) * u)
        return _state(units, day, _usual_runs(day, big), big / 4)
    if kind == MONTHLY_CHECKIN:
        days = settings.checkin_days + 4
        return _state(
            units, day, usual, weekly / 4, since_massage_days=days,
            since_massage_m=settings.checkin_m(units) + 15 * u,
            last_massage_date=day - dt.timedelta(days=days),
        )  # fmt: skip
    if kind == RECOVERY_TIP:
        return _state(units, day, usual, weekly / 4)
    raise KeyError(kind)


@functools.lru_cache(maxsize=256)
def sample_advice(kind: str, units: Units = "km", settings: AdviceSettings = DEFAULTS) -> Advice:
    """The advice the real rules give the sample runner of `kind` (KeyError for an unknown kind)."""
    advice = advise(sample_state(kind, units, settings), settings)
    if advice.kind != kind:  # a state built to fire the rule did not: a bug here, not the clinic's
        raise RuntimeError(f"the sample runner for {kind} gets a {advice.kind} note")
    return advice


# --- the wording check -------------------------------------------------------------------------


def normalise_source(text: str) -> str:
    """A template as typed in a browser: line ends as newlines, no blank edges."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def check_template(
    kind: str,
    source: str,
    clinic_name: str,
    booking_url: str | None,
    settings: AdviceSettings = DEFAULTS,
    units: Units = "km",
) -> str:
    """The sample runner's whole note with this wording, after checking it in miles and km.

    TemplateRefused, with a reason fit for the clinic, if it fails to compile or render or the
    note with the booking line would not fit the feed. KeyError for an unknown rule kind.
    """
    if kind not in KINDS:
        raise KeyError(kind)
    wording = Wording(clinic_name, booking_url, {kind: source})
    # notes.py would drop the booking link to make an over-long note fit: the link is what the
    # clinic is there for, so strict mode refuses the wording instead, saying how much to cut.
    shown = render_note(sample_advice(kind, units, settings), wording=wording, strict=True)
    # The numbers read a little differently in the other units: that runner must fit too.
    for other in UNITS:
        if other != units:
            render_note(sample_advice(kind, other, settings), wording=wording, strict=True)
    return shown


# --- thresholds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One AdviceSettings number a clinic may set for its runners, and its sensible range."""

    name: str
    low: float
    high: float
    whole: bool = False  # a count of days

    @property
    def default(self) -> float:
        """The service's own value."""
        return float(getattr(DEFAULTS, self.name))


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("high_volume_week_km", 10, 250),
    Threshold("high_volume_week_mi", 6, 155),
    Threshold("long_run_factor", 1.1, 4),
    Threshold("long_run_min_km", 5, 60),
    Threshold("long_run_min_mi", 3, 40),
    Threshold("acwr_spike", 1.1, 3),
    Threshold("checkin_days", 7, 120, whole=True),
    Threshold("checkin_km", 20, 1000),
    Threshold("checkin_mi", 12, 620),
    Threshold("week_jump", 1.1, 3),
    Threshold("session_gap_days", 1, 60, whole=True),
    Threshold("peak_session_gap_days", 1, 30, whole=True),
)
THRESHOLD_NAMES = frozenset(t.name for t in THRESHOLDS)


def check_thresholds(
    raw: Mapping[str, str],
) -> tuple[dict[str, int | float], dict[str, Threshold]]:
    """A clinic's overrides from form text (empty means the default) and the fields refused.

    A value is refused unless it is a finite number inside its threshold's range (a whole one
    for days); the caller words the message, as the range is all it needs to say.
    """
    overrides: dict[str, int | float] = {}
    refused: dict[str, Threshold] = {}
    for threshold in THRESHOLDS:
        text = (raw.get(threshold.name) or "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            refused[threshold.name] = threshold
            continue
        in_range = math.isfinite(value) and threshold.low <= value <= threshold.high
        if not in_range or (threshold.whole and not value.is_integer()):
            refused[threshold.name] = threshold
        else:
            overrides[threshold.name] = int(value) if threshold.whole else value
    return overrides, refused


def clinic_settings(overrides: Mapping[str, Any] | None) -> AdviceSettings:
    """The defaults with a clinic's overrides, as its runners get them before their own."""
    return with_overrides(DEFAULTS, overrides or {})


def wordings_that_no_longer_fit(clinic: Clinic) -> list[str]:
    """The rule kinds whose saved wording the clinic's current name, link or thresholds break.

    A wording is checked when saved; a longer clinic name or booking link changed later can
    push it over the note's limits, and its runners' notes would then lose the link.
    """
    settings = clinic_settings(clinic.advice_overrides)
    broken = []
    for kind, source in sorted((clinic.note_templates or {}).items()):
        try:
            check_template(kind, source, clinic.name, clinic.booking_url, settings)
        except (TemplateRefused, KeyError):
            broken.append(kind)
    return broken

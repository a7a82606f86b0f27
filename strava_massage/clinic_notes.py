"""What a clinic may change about its runners' notes, checked before it is kept (no Flask).

A sample runner per rule, made by the real rules from a training state that makes the rule
fire, so the wording editor previews the very note such a runner would get; the check a clinic
template passes before it is saved (it renders, and the whole note with the booking line fits
the feed); and the clinic's thresholds, which must be numbers in a sensible range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strava_massage.advice import (
    DEFAULTS,
    KINDS,
    Advice,
    AdviceSettings,
    TrainingState,
    Units,
    rules,
)
from strava_massage.advice.state import metres_per_unit
from strava_massage.models import Clinic
from strava_massage.note_templates import TemplateRefused
from strava_massage.notes import Wording, render_note

UNITS: tuple[Units, ...] = ("km", "mi")
SAMPLE_DAY = dt.date(2026, 4, 16)  # a Thursday, mid-week: the week totals have room either way
HALF_MARATHON_M = 21_097.5
# Seconds per unit at an easy pace (5:30 per km, 8:50 per mile), for believable moving times.
_PACE = {"km": 330, "mi": 530}
# The session rules by kind; the recovery tip has its own signature and is called apart.
_SESSION_RULES: dict[str, rules.Rule] = {
    rules.POST_RACE: rules.post_race,
    rules.PRE_RACE: rules.pre_race,
    rules.LOAD_SPIKE: rules.load_spike,
    rules.LONG_RUN: rules.long_run,
    rules.HIGH_VOLUME: rules.high_volume,
    rules.MONTHLY_CHECKIN: rules.monthly_checkin,
}


# --- sample runners ----------------------------------------------------------------------------


def _easy_week(units: Units) -> dict[str, Any]:
    """An ordinary 8-unit run in a quiet 20-unit week, a year of history, no race, no cooldown."""
    u = metres_per_unit(units)
    return {
        "activity_id": 1,
        "local_date": SAMPLE_DAY,
        "distance_m": 8 * u,
        "moving_time_s": 8 * _PACE[units],
        "workout_type": None,
        "units": units,
        "week_m": 20 * u,
        "month_m": 60 * u,
        "year_m": 400 * u,
        "rolling7_m": 20 * u,
        "rolling28_m": 80 * u,  # a steady 20 a week: acute:chronic 1.0
        "recent_runs_m": (8 * u,) * 10,
        "history_days": 365,
        "since_massage_m": 50 * u,
        "since_massage_days": 12,
        "last_massage_date": SAMPLE_DAY - dt.timedelta(days=12),
        "next_race_date": None,
        "recent_notes": (),
    }


def _steady(week_m: float) -> dict[str, float]:
    """Week, 7 and 28 days for a runner whose weeks are all about this long (ratio 1.0)."""
    return {"week_m": week_m, "rolling7_m": week_m, "rolling28_m": 4 * week_m}


def sample_state(
    kind: str, units: Units = "km", settings: AdviceSettings = DEFAULTS
) -> TrainingState:
    """A training state that makes the rule `kind` fire under `settings` (KeyError if unknown)."""
    u = metres_per_unit(units)
    fields = _easy_week(units)
    if kind == rules.POST_RACE:
        fields.update(
            distance_m=HALF_MARATHON_M, moving_time_s=6_330, workout_type=rules.WORKOUT_RACE,
            **_steady(12 * u + HALF_MARATHON_M),
        )  # fmt: skip
    elif kind == rules.PRE_RACE:
        race_in = max(settings.pre_race_min_days, min(5, settings.pre_race_max_days))
        fields.update(next_race_date=SAMPLE_DAY + dt.timedelta(days=race_in))
    elif kind == rules.LOAD_SPIKE:
        # Three steady 20-unit weeks, then a 7-day load that puts the ratio 0.25 past the spike
        # mark: r7 / ((r7 + 60) / 4) = ratio solves to r7 = 60 * ratio / (4 - ratio).
        ratio = settings.acwr_spike + 0.25
        last7 = 60 * u * ratio / (4 - ratio)
        fields.update(
            distance_m=10 * u, moving_time_s=10 * _PACE[units], week_m=0.8 * last7,
            rolling7_m=last7, rolling28_m=last7 + 60 * u,
        )  # fmt: skip
    elif kind == rules.LONG_RUN:
        # Untagged, so the note explains it against the runner's average run.
        shortest = max(settings.long_run_factor * 8 * u, settings.long_run_min_m(units))
        distance = (math.ceil(shortest / u) + 2) * u
        fields.update(
            distance_m=distance, moving_time_s=round(distance / u * _PACE[units]),
            **_steady(distance + 12 * u),
        )  # fmt: skip
    elif kind == rules.HIGH_VOLUME:
        # This 10-unit run crosses the weekly mark by 2; recent runs as long, so not a long run.
        threshold = settings.high_volume_m(units)
        fields.update(
            distance_m=10 * u, moving_time_s=10 * _PACE[units], recent_runs_m=(10 * u,) * 12,
            **_steady(threshold + 2 * u),
        )  # fmt: skip
    elif kind == rules.MONTHLY_CHECKIN:
        days = settings.checkin_days + 4
        fields.update(
            since_massage_days=days, since_massage_m=settings.checkin_m(units) + 15 * u,
            last_massage_date=SAMPLE_DAY - dt.timedelta(days=days),
        )  # fmt: skip
    elif kind != rules.RECOVERY_TIP:
        raise KeyError(kind)
    return TrainingState(**fields)


@functools.lru_cache(maxsize=256)
def sample_advice(kind: str, units: Units = "km", settings: AdviceSettings = DEFAULTS) -> Advice:
    """The advice the real rule `kind` gives its sample runner (KeyError for an unknown kind)."""
    state = sample_state(kind, units, settings)
    if kind == rules.RECOVERY_TIP:
        return rules.recovery_tip(state, settings)
    advice = _SESSION_RULES[kind](state, settings)
    if advice is None:  # a state built to fire the rule did not: a bug here, not the clinic's
        raise RuntimeError(f"the sample runner for {kind} does not fire the rule")
    return advice


# --- the wording check -------------------------------------------------------------------------


def normalise_source(text: str) -> str:
    """A template as typed in a browser: line ends as newlines, no blank edges."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _note_for(advice: Advice, wording: Wording) -> str:
    """The note for one sample runner, or TemplateRefused saying why it cannot be used.

    notes.py would drop the booking link to make an over-long note fit: the link is what the
    clinic is there for, so its strict mode refuses the wording instead, saying how much to cut.
    """
    return render_note(advice, wording=wording, strict=True)


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
    shown = _note_for(sample_advice(kind, units, settings), wording)
    # The numbers read a little differently in the other units: that runner must fit too.
    for other in UNITS:
        if other != units:
            _note_for(sample_advice(kind, other, settings), wording)
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
    Threshold("cooldown_days", 1, 30, whole=True),
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


_SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(AdviceSettings))


def clinic_settings(overrides: Mapping[str, Any] | None) -> AdviceSettings:
    """The defaults with a clinic's overrides, as its runners get them before their own."""
    known = {k: v for k, v in (overrides or {}).items() if k in _SETTING_NAMES}
    return dataclasses.replace(DEFAULTS, **known) if known else DEFAULTS


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

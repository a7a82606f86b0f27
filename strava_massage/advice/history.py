"""What the rules read off a runner's recent runs: weeks, layoffs, comebacks, peaks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from strava_massage.advice.settings import AdviceSettings
from strava_massage.advice.state import (
    POST_RACE,
    WORKOUT_LONG_RUN,
    WORKOUT_RACE,
    PastRun,
    TrainingState,
)

Span = tuple[date, date]  # first and last day, inclusive


def week_start(day: date) -> date:
    """Monday of the ISO week holding `day`."""
    return day - timedelta(days=day.weekday())


def first_run(state: TrainingState) -> date:
    """The runner's first known run."""
    return state.local_date - timedelta(days=state.history_days)


def distance_between(state: TrainingState, first: date, last: date) -> float:
    """Metres run from `first` to `last` inclusive, this run included when it falls inside."""
    total = sum(r.distance_m for r in state.past_runs if first <= r.local_date <= last)
    if first <= state.local_date <= last:
        total += state.distance_m
    return total


def layoffs(state: TrainingState, settings: AdviceSettings) -> list[Span]:
    """Stretches of layoff_days or more without a run, up to this run, oldest first."""
    days = sorted({r.local_date for r in state.past_runs} | {state.local_date})
    return [
        (before + timedelta(days=1), after - timedelta(days=1))
        for before, after in pairwise(days)
        if (after - before).days - 1 >= settings.layoff_days
    ]


def usable(span: Span, state: TrainingState, breaks: list[Span]) -> bool:
    """Whether a stretch of days can serve as a baseline: all after the runner's first run and
    clear of any layoff (a layoff's weeks do not count as zero)."""
    first, last = span
    if first < first_run(state):
        return False
    return not any(b_first <= last and first <= b_last for b_first, b_last in breaks)


def complete_weeks(
    state: TrainingState, settings: AdviceSettings, count: int, breaks: list[Span]
) -> list[float]:
    """Totals of the usable complete ISO weeks among the `count` before this run's, newest first."""
    monday = week_start(state.local_date)
    totals = []
    for back in range(1, count + 1):
        first = monday - timedelta(weeks=back)
        span = (first, first + timedelta(days=6))
        if usable(span, state, breaks):
            totals.append(distance_between(state, *span))
    return totals


def week_jump(
    state: TrainingState, settings: AdviceSettings, breaks: list[Span]
) -> tuple[float, float] | None:
    """L2: (this week so far, the last usable complete week) when the first is over week_jump
    times the second; None otherwise."""
    weeks = complete_weeks(state, settings, settings.baseline_weeks, breaks)
    if not weeks or weeks[0] <= 0:
        return None
    return (state.week_m, weeks[0]) if state.week_m > settings.week_jump * weeks[0] else None


def acute_chronic(
    state: TrainingState, settings: AdviceSettings, breaks: list[Span]
) -> tuple[float, float] | None:
    """L1: (the 7-day distance, the weekly average of the four weeks before) when the ratio is
    over acwr_spike; layoff weeks are left out of the average. None otherwise."""
    blocks = []
    for back in range(1, settings.baseline_weeks + 1):
        last = state.local_date - timedelta(days=7 * back)
        span = (last - timedelta(days=6), last)
        if usable(span, state, breaks):
            blocks.append(distance_between(state, *span))
    if len(blocks) < 2:
        return None
    chronic = sum(blocks) / len(blocks)
    if chronic <= 0 or state.rolling7_m <= settings.acwr_spike * chronic:
        return None
    return state.rolling7_m, chronic


@dataclass(frozen=True)
class Comeback:
    """A runner back from a layoff and still below their weekly distance from before it."""

    days_off: int
    weekly_before_m: float


def comeback(state: TrainingState, settings: AdviceSettings, breaks: list[Span]) -> Comeback | None:
    """The comeback this run is part of (rule 3b), or None."""
    recent = [
        b for b in breaks if b[1] >= state.local_date - timedelta(days=settings.comeback_days)
    ]
    if not recent:
        return None
    first, last = recent[-1]
    # The weekly average over the weeks before the break, or as much of them as was run.
    start = max(first - timedelta(weeks=settings.baseline_weeks), first_run(state))
    days = (first - start).days
    if days < 7:
        return None
    weekly = distance_between(state, start, first - timedelta(days=1)) * 7 / days
    if weekly <= 0 or state.rolling7_m >= weekly:
        return None
    return Comeback((last - first).days + 1, weekly)


def peak_week(state: TrainingState, settings: AdviceSettings, breaks: list[Span]) -> bool:
    """Whether the last 7 days rank in the top quarter of the runner's recent weeks."""
    weeks = complete_weeks(state, settings, settings.peak_weeks, breaks)
    if len(weeks) < settings.peak_min_weeks:
        return False
    top = sorted(weeks, reverse=True)[: math.ceil(len(weeks) * settings.peak_share)]
    return state.rolling7_m >= top[-1]


def average_run(state: TrainingState, settings: AdviceSettings) -> float | None:
    """The average run of the baseline weeks before this one, or None if there was none."""
    since = state.local_date - timedelta(weeks=settings.baseline_weeks)
    runs = [r.distance_m for r in state.past_runs if since <= r.local_date]
    return sum(runs) / len(runs) if runs else None


def looks_long(state: TrainingState, settings: AdviceSettings) -> bool:
    """Tagged as a long run, or clearly longer than usual and long in absolute terms."""
    if state.workout_type == WORKOUT_LONG_RUN:
        return True
    average = average_run(state, settings)
    return (
        average is not None
        and average > 0
        and state.distance_m >= settings.long_run_factor * average
        and state.distance_m >= settings.long_run_min_m(state.units)
    )


def longest_recent(state: TrainingState, settings: AdviceSettings) -> float:
    """The longest other run of the last long_run_lookback_days (0 when there was none)."""
    since = state.local_date - timedelta(days=settings.long_run_lookback_days)
    return max((r.distance_m for r in state.past_runs if since <= r.local_date), default=0.0)


def is_race(state: TrainingState, settings: AdviceSettings) -> bool:
    """Tagged as a race, or the main run on a race date the runner set."""
    if state.workout_type == WORKOUT_RACE:
        return True
    if state.next_race_date != state.local_date:
        return False
    same_day: list[PastRun] = [r for r in state.past_runs if r.local_date == state.local_date]
    if any(r.workout_type == WORKOUT_RACE or r.distance_m > state.distance_m for r in same_day):
        return False  # the race was another run of the day
    share = settings.race_day_min_share
    return state.race_distance_m is None or state.distance_m >= share * state.race_distance_m


def last_race(state: TrainingState) -> date | None:
    """The latest race before this run's day: tagged, noted as one, or on the date set."""
    days = {r.local_date for r in state.past_runs if r.workout_type == WORKOUT_RACE}
    days |= {n.local_date for n in state.recent_notes if n.kind == POST_RACE}
    race = state.next_race_date
    if race is not None and any(r.local_date == race for r in state.past_runs):
        days.add(race)
    before = [d for d in days if d < state.local_date]
    return max(before, default=None)


def totals_around(runs: Sequence[PastRun], day: date) -> dict[str, float]:
    """The TrainingState totals for `day` from a list of runs (the ledger's sums, in Python)."""
    monday = week_start(day)

    def between(first: date, last: date) -> float:
        return sum(r.distance_m for r in runs if first <= r.local_date <= last)

    return {
        "week_m": between(monday, monday + timedelta(days=6)),
        "month_m": between(day.replace(day=1), day),
        "year_m": between(day.replace(month=1, day=1), day),
        "rolling7_m": between(day - timedelta(days=6), day),
        "rolling28_m": between(day - timedelta(days=27), day),
    }

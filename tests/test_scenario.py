"""A 16-week marathon build replayed through the ledger and the rules, as the worker decides."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest

from strava_massage.advice import RACE_KINDS
from strava_massage.services.preview import PreviewNote, read_export, replay

from .data import make_export as plan

PHASE_OF_WEEK = [phase for phase, _ in plan.PLAN]


@pytest.fixture(scope="module")
def notes() -> list[PreviewNote]:
    """The notes of the whole build, as a runner in km with a race and three massages."""
    export = read_export(plan.HERE / "activities.csv", plan.TZ)
    return replay(export.runs, units="km", massages=plan.MASSAGE_DAYS, races=[plan.RACE_DAY])


def _week(day: dt.date) -> int:
    """Week number of the plan, from 1."""
    return (day - plan.FIRST_MONDAY).days // 7 + 1


def _phase(day: dt.date) -> str:
    return PHASE_OF_WEEK[_week(day) - 1]


def test_the_shipped_export_matches_its_generator() -> None:
    assert (plan.HERE / "activities.csv").read_text(encoding="utf-8") == plan.render()


def test_every_run_gets_one_note(notes: list[PreviewNote]) -> None:
    planned = sum(1 for _, days in plan.PLAN for km in days if km)
    assert len(notes) == planned == 72


def test_the_sequence_of_session_notes(notes: list[PreviewNote]) -> None:
    """Session suggestions vary and come at the second version's cadence."""
    sessions = [(n.local_date.isoformat(), _phase(n.local_date), n.kind) for n in notes
                if n.is_session]  # fmt: skip
    assert sessions == [
        ("2025-06-26", "build", "load_spike"),  # 50 km in 7 days after 33 a week
        ("2025-07-08", "build", "high_volume"),  # past 48 km, the biggest week so far
        ("2025-07-20", "build", "long_run"),  # 12 days on: outside the peak, 14 would be due
        ("2025-07-27", "peak", "load_spike"),  # 72 km after 55: a real jump
        ("2025-08-03", "peak", "long_run"),  # peak weeks: a week apart
        ("2025-08-10", "peak", "high_volume"),
        ("2025-08-17", "peak", "long_run"),  # the 32 km, the longest of the build
        ("2025-08-31", "taper", "pre_race"),  # race in 7 days; nothing else in the last 10
        ("2025-09-07", "race", "post_race"),
    ]


def test_post_race_after_the_race_and_pre_race_in_race_week(notes: list[PreviewNote]) -> None:
    """The race gets its note, and race week its pre-race note 3-7 days out."""
    race_notes = [n for n in notes if n.local_date == plan.RACE_DAY]
    assert [n.kind for n in race_notes] == ["post_race"]
    assert "42.2 km" in race_notes[0].reason
    (pre,) = [n for n in notes if n.kind == "pre_race"]
    assert 3 <= (plan.RACE_DAY - pre.local_date).days <= 7


def test_load_alarms_only_on_jumps(notes: list[PreviewNote]) -> None:
    """Every load alarm is in a week bigger than the average of the four before it."""
    week_km = Counter[int]()
    for n in notes:
        week_km[_week(n.local_date)] += round(n.distance_m / 1000, 1)
    spikes = [n for n in notes if n.kind == "load_spike"]
    for n in spikes:
        week = _week(n.local_date)
        assert week_km[week] > sum(week_km[week - k] for k in range(1, 5)) / 4, n
    assert [_week(n.local_date) for n in spikes] == [5, 6, 9]


def test_high_volume_only_in_weeks_over_48_km(notes: list[PreviewNote]) -> None:
    """The big-week note comes only when the last 7 days are past 48 km."""
    big = [n for n in notes if n.kind == "high_volume"]
    assert big and all("last 7 days" in n.reason for n in big)
    assert all(float(n.reason.split()[3]) >= 48 for n in big)


def test_tips_otherwise_never_repeated_within_ten_notes(notes: list[PreviewNote]) -> None:
    """No tip twice within ten notes, and many different ones over the build."""
    for i, n in enumerate(notes):
        window = [m.tip_id for m in notes[max(0, i - 10) : i] if m.tip_id]
        assert n.tip_id is None or n.tip_id not in window, (n.local_date, n.tip_id)
    assert len({n.tip_id for n in notes if n.tip_id}) >= 30


def test_session_suggestions_a_week_apart_at_least(notes: list[PreviewNote]) -> None:
    """Outside the race notes, session suggestions are at least 7 days apart."""
    days = [n.local_date for n in notes if n.is_session and n.kind not in RACE_KINDS]
    assert all((b - a).days >= 7 for a, b in itertools.pairwise(days))


def test_every_note_is_short_and_says_why(notes: list[PreviewNote]) -> None:
    """Every note fits the feed and carries its reason."""
    for n in notes:
        assert len(n.text) < 500 and len(n.text.splitlines()) <= 4, n.text
        assert n.reason and n.reason in n.text

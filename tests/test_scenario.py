"""A 16-week marathon build replayed through the ledger and the rules, as the worker decides."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest

from strava_massage.advice import SESSION_KINDS
from strava_massage.preview import PreviewNote, read_export, replay

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
    sessions = [(n.local_date.isoformat(), _phase(n.local_date), n.kind) for n in notes
                if n.is_session]  # fmt: skip
    assert sessions == [
        ("2025-06-29", "build", "load_spike"),  # the jump from 35 to 62 km
        ("2025-07-06", "build", "long_run"),
        ("2025-07-12", "build", "monthly_checkin"),  # 30 days after the June session
        ("2025-07-20", "build", "long_run"),
        ("2025-07-26", "peak", "high_volume"),
        ("2025-08-03", "peak", "long_run"),
        ("2025-08-09", "peak", "high_volume"),
        ("2025-08-14", "peak", "monthly_checkin"),  # 30 days after the July session
        ("2025-08-24", "taper", "long_run"),
        ("2025-08-31", "taper", "pre_race"),  # race in 7 days
        ("2025-09-07", "race", "post_race"),
    ]


def test_post_race_after_the_race_and_pre_race_in_race_week(notes: list[PreviewNote]) -> None:
    race_notes = [n for n in notes if n.local_date == plan.RACE_DAY]
    assert [n.kind for n in race_notes] == ["post_race"]
    assert "42.2 km" in race_notes[0].reason
    (pre,) = [n for n in notes if n.kind == "pre_race"]
    assert 2 <= (plan.RACE_DAY - pre.local_date).days <= 7


def test_load_spike_when_the_build_jumps(notes: list[PreviewNote]) -> None:
    spikes = [n for n in notes if n.kind == "load_spike"]
    assert [_week(n.local_date) for n in spikes] == [5]  # the first build week, and only then
    assert "1.52x" in spikes[0].reason


def test_high_volume_only_in_weeks_over_48_km(notes: list[PreviewNote]) -> None:
    week_km = Counter[int]()
    for n in notes:
        week_km[_week(n.local_date)] += round(n.distance_m / 1000, 1)
    big = [n for n in notes if n.kind == "high_volume"]
    assert big and all(week_km[_week(n.local_date)] > 48 for n in big)
    assert len({_week(n.local_date) for n in big}) == len(big)  # at most once a week


def test_check_ins_come_30_days_after_a_session(notes: list[PreviewNote]) -> None:
    for n in (n for n in notes if n.kind == "monthly_checkin"):
        last = max(d for d in plan.MASSAGE_DAYS if d <= n.local_date)
        assert (n.local_date - last).days >= 30


def test_tips_otherwise_never_repeated_within_ten_notes(notes: list[PreviewNote]) -> None:
    assert {n.kind for n in notes if not n.is_session} == {"recovery_tip"}
    for i, n in enumerate(notes):
        window = [m.tip_id for m in notes[max(0, i - 10) : i] if m.tip_id]
        assert n.tip_id is None or n.tip_id not in window, (n.local_date, n.tip_id)
    # 61 tips over 16 weeks draw on 31 different ones, not a handful on rotation.
    assert len({n.tip_id for n in notes if n.tip_id}) >= 30


def test_at_most_one_session_suggestion_every_five_days(notes: list[PreviewNote]) -> None:
    days = [n.local_date for n in notes if n.kind in SESSION_KINDS]
    assert all((b - a).days >= 5 for a, b in itertools.pairwise(days))


def test_every_note_is_short_and_says_why(notes: list[PreviewNote]) -> None:
    for n in notes:
        assert len(n.text) < 500 and len(n.text.splitlines()) <= 4, n.text
        assert n.reason and n.reason in n.text


def test_firing_counts(notes: list[PreviewNote]) -> None:
    assert Counter(n.kind for n in notes) == {
        "post_race": 1, "pre_race": 1, "load_spike": 1, "long_run": 4, "high_volume": 2,
        "monthly_checkin": 2, "recovery_tip": 61,
    }  # fmt: skip

"""The advice rules, table-driven: every rule's firing and non-firing edges, in miles and km."""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strava_massage import advice as advice_pkg
from strava_massage.advice import (
    DEFAULTS,
    KINDS,
    SESSION_KINDS,
    TIPS,
    Advice,
    AdviceSettings,
    PastNote,
    advise,
    format_distance,
    pick_tip,
)
from strava_massage.advice.tips import KNOWN_TAGS, SITUATION_TAGS, TOPIC_TAGS, recent_tip_ids
from tests.factories import DAY, KM, MI, make_state

KNOWN_FACTS = {f"M{i}" for i in range(1, 8)} | {
    "F1",
    "F2",
    "F3",
    "T1",
    "T2",
    "T3",
    "L1",
    "L2",
    "L3",
}


def note(days_ago: int, kind: str = "long_run", *, session: bool = True, **kw: Any) -> PastNote:
    """A past note dated days_ago before DAY."""
    return PastNote(DAY - timedelta(days=days_ago), kind, kw.pop("tip_id", None), session, **kw)


def test_default_state_is_a_plain_tip() -> None:
    """The helper's defaults fire nothing, so each case below changes only what it tests."""
    assert advise(make_state()).kind == "recovery_tip"


# (overrides, settings overrides, expected kind)
Case = tuple[dict[str, Any], dict[str, Any], str]

CASES: dict[str, Case] = {
    # 1. post-race
    "race-fires": ({"workout_type": 1}, {}, "post_race"),
    "workout-is-not-race": ({"workout_type": 3}, {}, "recovery_tip"),
    "short-race-still-fires": ({"workout_type": 1, "distance_m": 5 * KM}, {}, "post_race"),
    # 2. pre-race: 2-7 days away
    "race-today": ({"next_race_date": DAY}, {}, "recovery_tip"),
    "race-in-1-day": ({"next_race_date": DAY + timedelta(days=1)}, {}, "recovery_tip"),
    "race-in-2-days": ({"next_race_date": DAY + timedelta(days=2)}, {}, "pre_race"),
    "race-in-7-days": ({"next_race_date": DAY + timedelta(days=7)}, {}, "pre_race"),
    "race-in-8-days": ({"next_race_date": DAY + timedelta(days=8)}, {}, "recovery_tip"),
    "race-in-past": ({"next_race_date": DAY - timedelta(days=1)}, {}, "recovery_tip"),
    "pre-race-window-setting": (
        {"next_race_date": DAY + timedelta(days=8)},
        {"pre_race_max_days": 10},
        "pre_race",
    ),
    # 3. load spike: chronic = 80 / 4 = 20 per week
    "acwr-1.51-km": ({"rolling7_m": 30.2 * KM}, {}, "load_spike"),
    "acwr-1.50-exact-km": ({"rolling7_m": 30.0 * KM}, {}, "recovery_tip"),
    "acwr-1.49-km": ({"rolling7_m": 29.8 * KM}, {}, "recovery_tip"),
    "acwr-1.51-mi": (
        {"units": "mi", "rolling7_m": 30.2 * MI, "rolling28_m": 80 * MI},
        {},
        "load_spike",
    ),
    "acwr-1.49-mi": (
        {"units": "mi", "rolling7_m": 29.8 * MI, "rolling28_m": 80 * MI},
        {},
        "recovery_tip",
    ),
    "acwr-history-20-days": ({"rolling7_m": 40 * KM, "history_days": 20}, {}, "recovery_tip"),
    "acwr-history-21-days": ({"rolling7_m": 40 * KM, "history_days": 21}, {}, "load_spike"),
    "acwr-no-chronic-load": (
        {"rolling7_m": 0.0, "rolling28_m": 0.0, "recent_runs_m": ()},
        {},
        "recovery_tip",
    ),
    # 4. long run: tagged, or >= 1.5x the recent average and >= 16 km / 10 mi
    "tagged-long-run-short": ({"workout_type": 2, "distance_m": 5 * KM}, {}, "long_run"),
    "untagged-16.0-km": ({"distance_m": 16.0 * KM}, {}, "long_run"),
    "untagged-15.9-km": ({"distance_m": 15.9 * KM}, {}, "recovery_tip"),
    "untagged-1.5x-exact": (
        {"distance_m": 16.5 * KM, "recent_runs_m": (11 * KM,) * 5},
        {},
        "long_run",
    ),
    "untagged-1.49x": (
        {"distance_m": 16.4 * KM, "recent_runs_m": (11 * KM,) * 5},
        {},
        "recovery_tip",
    ),
    "untagged-no-recent-runs": ({"distance_m": 30 * KM, "recent_runs_m": ()}, {}, "recovery_tip"),
    "untagged-10.0-mi": (
        {"units": "mi", "distance_m": 10.0 * MI, "recent_runs_m": (5 * MI,) * 8},
        {},
        "long_run",
    ),
    "untagged-9.9-mi": (
        {"units": "mi", "distance_m": 9.9 * MI, "recent_runs_m": (5 * MI,) * 8},
        {},
        "recovery_tip",
    ),
    # 16.05 km is long for a km runner but under 10 mi for a miles runner.
    "untagged-16.05-km-for-km-runner": ({"distance_m": 16.05 * KM}, {}, "long_run"),
    "untagged-16.05-km-for-mi-runner": (
        {"units": "mi", "distance_m": 16.05 * KM},
        {},
        "recovery_tip",
    ),
    # 5. high volume: week crosses 48 km / 30 mi with this run
    "week-48.0-km": ({"week_m": 48.0 * KM}, {}, "high_volume"),
    "week-47.9-km": ({"week_m": 47.9 * KM}, {}, "recovery_tip"),
    "week-55.9-km-crossed-now": ({"week_m": 55.9 * KM}, {}, "high_volume"),
    "week-56.0-km-crossed-before": ({"week_m": 56.0 * KM}, {}, "recovery_tip"),
    "week-30.0-mi": ({"units": "mi", "week_m": 30.0 * MI, "distance_m": 5 * MI}, {}, "high_volume"),
    "week-29.9-mi": (
        {"units": "mi", "week_m": 29.9 * MI, "distance_m": 5 * MI},
        {},
        "recovery_tip",
    ),
    "week-48.1-km-for-mi-runner": ({"units": "mi", "week_m": 48.1 * KM}, {}, "recovery_tip"),
    "week-48.1-km-for-km-runner": ({"week_m": 48.1 * KM}, {}, "high_volume"),
    "week-threshold-setting": ({"week_m": 40 * KM}, {"high_volume_week_km": 40.0}, "high_volume"),
    # 6. monthly check-in: >= 30 days and >= 160 km / 100 mi
    "checkin-30-days-160-km": (
        {"since_massage_days": 30, "since_massage_m": 160 * KM},
        {},
        "monthly_checkin",
    ),
    "checkin-29-days": (
        {"since_massage_days": 29, "since_massage_m": 300 * KM},
        {},
        "recovery_tip",
    ),
    "checkin-159.9-km": (
        {"since_massage_days": 45, "since_massage_m": 159.9 * KM},
        {},
        "recovery_tip",
    ),
    "checkin-100-mi": (
        {"units": "mi", "since_massage_days": 30, "since_massage_m": 100 * MI},
        {},
        "monthly_checkin",
    ),
    "checkin-99.9-mi": (
        {"units": "mi", "since_massage_days": 30, "since_massage_m": 99.9 * MI},
        {},
        "recovery_tip",
    ),
    "checkin-since-connecting": (
        {"since_massage_days": 40, "since_massage_m": 200 * KM, "last_massage_date": None},
        {},
        "monthly_checkin",
    ),
    # Not logged after the last reminder: the next one waits a full period, not the cooldown.
    "checkin-reminded-29-days-ago": (
        {
            "since_massage_days": 70,
            "since_massage_m": 500 * KM,
            "last_checkin_date": DAY - timedelta(days=29),
        },
        {},
        "recovery_tip",
    ),
    "checkin-reminded-30-days-ago": (
        {
            "since_massage_days": 70,
            "since_massage_m": 500 * KM,
            "last_checkin_date": DAY - timedelta(days=30),
        },
        {},
        "monthly_checkin",
    ),
}


@pytest.mark.parametrize(("overrides", "settings", "expected"), CASES.values(), ids=CASES.keys())
def test_rule_edges(overrides: dict[str, Any], settings: dict[str, Any], expected: str) -> None:
    """Each rule fires just over its threshold and stays quiet just under it."""
    result = advise(make_state(**overrides), dataclasses.replace(DEFAULTS, **settings))
    assert result.kind == expected
    assert result.is_session == (expected in SESSION_KINDS)


LONG = {"distance_m": 16 * KM}  # fires the long-run rule

COOLDOWN: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "session-4-days-ago": ({**LONG, "recent_notes": (note(4),)}, {}, "recovery_tip"),
    "session-5-days-ago": ({**LONG, "recent_notes": (note(5),)}, {}, "long_run"),
    "session-earlier-today": ({**LONG, "recent_notes": (note(0),)}, {}, "recovery_tip"),
    "tip-yesterday-is-no-session": (
        {**LONG, "recent_notes": (note(1, "recovery_tip", session=False, tip_id="calves-roll"),)},
        {},
        "long_run",
    ),
    "older-session-behind-a-tip": (
        {**LONG, "recent_notes": (note(1, "recovery_tip", session=False), note(3))},
        {},
        "recovery_tip",
    ),
    "session-dated-after-this-run": ({**LONG, "recent_notes": (note(-1),)}, {}, "long_run"),
    "own-note-on-a-repeated-job": (
        {**LONG, "recent_notes": (note(0, activity_id=1001),)},
        {},
        "long_run",
    ),
    "post-race-not-exempt-by-default": (
        {"workout_type": 1, "recent_notes": (note(2, "pre_race"),)},
        {},
        "recovery_tip",
    ),
    "post-race-exempt-when-configured": (
        {"workout_type": 1, "recent_notes": (note(2, "pre_race"),)},
        {"cooldown_exempt": frozenset({"post_race"})},
        "post_race",
    ),
    "cooldown-setting-2-days": (
        {**LONG, "recent_notes": (note(2),)},
        {"cooldown_days": 2},
        "long_run",
    ),
    "monthly-checkin-in-cooldown": (
        {
            "since_massage_days": 40,
            "since_massage_m": 300 * KM,
            "recent_notes": (note(3, "monthly_checkin"),),
        },
        {},
        "recovery_tip",
    ),
}


@pytest.mark.parametrize(
    ("overrides", "settings", "expected"), COOLDOWN.values(), ids=COOLDOWN.keys()
)
def test_session_cooldown(
    overrides: dict[str, Any], settings: dict[str, Any], expected: str
) -> None:
    """At most one session suggestion per 5 days; inside the cooldown a tip is written instead."""
    result = advise(make_state(**overrides), dataclasses.replace(DEFAULTS, **settings))
    assert result.kind == expected


def test_cooldown_fallback_explains_itself() -> None:
    """The fallback tip keeps the held-back rule's numbers and says why it is only a tip."""
    result = advise(make_state(**LONG, recent_notes=(note(3),)))
    assert result.kind == "recovery_tip"
    assert not result.is_session
    assert result.tip_id is not None
    assert result.reason.startswith("16.0 km, 2.0x your average run of 8.0 km")
    assert "3 days ago" in result.reason
    assert result.headline == "Recovery tip after a long run"


def test_pre_race_once_per_race() -> None:
    """A pre-race note already written in this race's window is not repeated."""
    race = DAY + timedelta(days=2)
    inside = note(5, "pre_race")  # race day minus 7: inside the window, outside the cooldown
    outside = note(6, "pre_race")  # race day minus 8: for an earlier race
    assert advise(make_state(next_race_date=race, recent_notes=(inside,))).kind == "recovery_tip"
    assert advise(make_state(next_race_date=race, recent_notes=(outside,))).kind == "pre_race"


@pytest.mark.parametrize(
    ("earlier", "expected"),
    [
        (date(2025, 6, 9), "recovery_tip"),  # Monday of the same ISO week
        (date(2025, 6, 8), "high_volume"),  # Sunday of the week before
    ],
    ids=["same-iso-week", "previous-iso-week"],
)
def test_high_volume_once_per_iso_week(earlier: date, expected: str) -> None:
    """A second crossing in one ISO week (an edited run) writes no second high-volume note."""
    sunday = date(2025, 6, 15)
    past = PastNote(earlier, "high_volume", None, True)  # 6-7 days ago: outside the cooldown
    state = make_state(local_date=sunday, week_m=50 * KM, recent_notes=(past,))
    assert advise(state).kind == expected


ALL_FIRING: dict[str, Any] = {
    "workout_type": 1,
    "next_race_date": DAY + timedelta(days=3),
    "rolling7_m": 40 * KM,
    "distance_m": 20 * KM,
    "week_m": 50 * KM,
    "since_massage_days": 40,
    "since_massage_m": 200 * KM,
}
# Switch the rules off one at a time, top priority first: the next one down must win.
PRIORITY_STEPS: list[tuple[dict[str, Any], str]] = [
    ({}, "post_race"),
    ({"workout_type": None}, "pre_race"),
    ({"next_race_date": None}, "load_spike"),
    ({"rolling7_m": 20 * KM}, "long_run"),
    ({"distance_m": 8 * KM}, "high_volume"),
    ({"week_m": 20 * KM}, "monthly_checkin"),
    ({"since_massage_days": 10}, "recovery_tip"),
]


@pytest.mark.parametrize("step", range(len(PRIORITY_STEPS)), ids=[k for _, k in PRIORITY_STEPS])
def test_priority_order(step: int) -> None:
    """When several rules fire, the highest in the rules table wins."""
    overrides = dict(ALL_FIRING)
    for change, _ in PRIORITY_STEPS[: step + 1]:
        overrides.update(change)
    assert advise(make_state(**overrides)).kind == PRIORITY_STEPS[step][1]
    assert [k for _, k in PRIORITY_STEPS] == list(KINDS)


EXPECTED_FACTS = {
    "post_race": ("T2", "L3"),
    "pre_race": ("T1", "L3"),
    "load_spike": ("L1", "L2", "M3"),
    "long_run": ("T2", "M6"),
    "high_volume": ("F3", "F2"),
}


@pytest.mark.parametrize(("kind", "facts"), EXPECTED_FACTS.items(), ids=EXPECTED_FACTS.keys())
def test_session_advice_cites_its_basis(kind: str, facts: tuple[str, ...]) -> None:
    """Each session rule cites the facts the rules table names for it."""
    overrides = dict(ALL_FIRING)
    for change, step_kind in PRIORITY_STEPS:
        overrides.update(change)
        if step_kind == kind:
            break
    result = advise(make_state(**overrides))
    assert result.kind == kind
    assert result.fact_ids == facts
    assert result.tip_id is None


# Reasons are written in the runner's units, with one decimal.
REASONS: dict[str, tuple[dict[str, Any], str]] = {
    "post-race-km": (
        {"workout_type": 1, "distance_m": 21097.5, "moving_time_s": 5425},
        "race, 21.1 km in 1:30:25",
    ),
    "post-race-mi": (
        {"units": "mi", "workout_type": 1, "distance_m": 5000, "moving_time_s": 1199},
        "race, 3.1 mi in 19:59",
    ),
    "pre-race": (
        {"next_race_date": DAY + timedelta(days=4)},
        "your race on 2025-06-15 is 4 days away",
    ),
    "load-spike-km": (
        {"rolling7_m": 40 * KM},
        "last 7 days 40.0 km, 2.00x your 28-day weekly average of 20.0 km",
    ),
    "long-run-tagged-mi": (
        {"units": "mi", "workout_type": 2, "distance_m": 13.1 * MI},
        "long run, 13.1 mi",
    ),
    "high-volume-mi": (
        {"units": "mi", "week_m": 31.4 * MI, "distance_m": 6 * MI},
        "this week 31.4 mi, past the 30 mi mark with this run",
    ),
    "high-volume-km": (
        {"week_m": 50.25 * KM},
        "this week 50.2 km, past the 48 km mark with this run",
    ),
    "checkin-mi": (
        {"units": "mi", "since_massage_days": 31, "since_massage_m": 120.55 * MI},
        "120.5 mi over 31 days since your last massage",
    ),
    "tip-km": ({}, "this week 20.0 km, last 28 days 80.0 km"),
}


@pytest.mark.parametrize(("overrides", "reason"), REASONS.values(), ids=REASONS.keys())
def test_reason_numbers_in_runner_units(overrides: dict[str, Any], reason: str) -> None:
    """The why-line carries the triggering numbers in the runner's own units."""
    assert advise(make_state(**overrides)).reason == reason


@pytest.mark.parametrize(
    ("metres", "units", "text"),
    [
        (31.4 * MI, "mi", "31.4 mi"),
        (42000, "km", "42.0 km"),
        (1609.344, "mi", "1.0 mi"),
        (0, "km", "0.0 km"),
    ],
    ids=["miles", "km", "one-mile", "zero"],
)
def test_format_distance(metres: float, units: Any, text: str) -> None:
    """Distances print with one decimal and the unit."""
    assert format_distance(metres, units) == text


def test_advice_is_deterministic() -> None:
    """A repeated job for the same run gets exactly the same advice."""
    state = make_state(
        activity_id=987654321, recent_notes=(note(2, "recovery_tip", session=False),)
    )
    assert advise(state) == advise(dataclasses.replace(state))


def test_tips_vary_between_runs() -> None:
    """Different runs get different tips from the library."""
    chosen = {advise(make_state(activity_id=i)).tip_id for i in range(200)}
    assert len(chosen) >= 10


def _simulate(runs: int, state_for: Any) -> list[Advice]:
    """Feed each run's note back as history, as the service does (newest first, 10 notes)."""
    history: list[PastNote] = []
    out: list[Advice] = []
    for i in range(runs):
        state = state_for(i, tuple(history[:10]))
        result = advise(state)
        out.append(result)
        history.insert(0, PastNote(state.local_date, result.kind, result.tip_id, result.is_session))
    return out


@pytest.mark.parametrize(
    "overrides",
    [{}, {"workout_type": 2}, {"next_race_date": DAY + timedelta(days=1)}, {"week_m": 60 * KM}],
    ids=["easy-days", "long-runs", "race-week", "heavy-week"],
)
def test_no_tip_repeats_within_ten_notes(overrides: dict[str, Any]) -> None:
    """Over many runs, no tip comes back within the runner's last 10 notes."""
    notes = _simulate(
        60,
        lambda i, hist: make_state(
            activity_id=5000 + i, local_date=DAY, recent_notes=hist, **overrides
        ),
    )
    tip_ids = [a.tip_id for a in notes]
    assert sum(t is not None for t in tip_ids) >= 50
    for i, tip_id in enumerate(tip_ids):
        assert tip_id is None or tip_id not in tip_ids[max(0, i - 10) : i]


def test_only_the_last_ten_notes_block_a_tip() -> None:
    """The 11th-newest note no longer holds its tip back."""
    old = PastNote(DAY - timedelta(days=20), "recovery_tip", "calves-roll", False)
    filler = tuple(note(1 + n, "recovery_tip", session=False, tip_id=f"x{n}") for n in range(10))
    assert "calves-roll" not in recent_tip_ids(make_state(recent_notes=(*filler, old)), DEFAULTS)
    assert "calves-roll" in recent_tip_ids(make_state(recent_notes=(*filler[:9], old)), DEFAULTS)


@given(
    activity_id=st.integers(min_value=1, max_value=2**63 - 1),
    used=st.lists(st.sampled_from([t.id for t in TIPS]), max_size=10, unique=True),
    tags=st.frozensets(st.sampled_from(sorted(SITUATION_TAGS)), max_size=3),
)
def test_pick_tip_never_repeats_recent(
    activity_id: int, used: list[str], tags: frozenset[str]
) -> None:
    """Whatever was shown recently, the picked tip is fresh and stable."""
    recent = tuple(note(i + 1, "recovery_tip", session=False, tip_id=t) for i, t in enumerate(used))
    state = make_state(activity_id=activity_id, recent_notes=recent)
    tip = pick_tip(state, DEFAULTS, tags)
    assert tip.id not in used
    assert pick_tip(state, DEFAULTS, tags) == tip


@pytest.mark.parametrize("situation", sorted(SITUATION_TAGS))
def test_pick_tip_prefers_fitting_tips(situation: str) -> None:
    """A tip tagged for the run's situation is chosen whenever one is still fresh."""
    for activity_id in range(50):
        tip = pick_tip(make_state(activity_id=activity_id), DEFAULTS, {situation})
        assert situation in tip.tags


def test_pick_tip_falls_back_when_fitting_tips_are_used_up() -> None:
    """With every pre-race tip shown recently, a fresh general tip beats a repeat."""
    used = [t.id for t in TIPS if "pre_race" in t.tags]
    assert len(used) <= DEFAULTS.no_repeat_notes
    recent = tuple(note(i + 1, "recovery_tip", session=False, tip_id=t) for i, t in enumerate(used))
    tip = pick_tip(make_state(recent_notes=recent), DEFAULTS, {"pre_race"})
    assert tip.id not in used


def test_tip_advice_fields() -> None:
    """A recovery tip is not a session, names its tip and cites the tip's facts."""
    result = advise(make_state())
    tip = next(t for t in TIPS if t.id == result.tip_id)
    assert (result.is_session, result.body, result.fact_ids) == (False, tip.text, tip.fact_ids)


# --- the tip library ---------------------------------------------------------------------------

BANNED = ("lactic", "toxin", "flush", "detox", "cure")


def test_tip_library_size_and_uniqueness() -> None:
    """At least 40 tips, with unique ids and unique texts."""
    assert len(TIPS) >= 40
    assert len({t.id for t in TIPS}) == len(TIPS)
    assert len({t.text for t in TIPS}) == len(TIPS)


@pytest.mark.parametrize("tip", TIPS, ids=[t.id for t in TIPS])
def test_tip_is_well_formed(tip: Any) -> None:
    """Short, single-line, free of unsupported claims, citing known facts and tags."""
    assert 40 <= len(tip.text) < 200
    assert "\n" not in tip.text
    assert not any(word in tip.text.lower() for word in BANNED)
    assert not re.search(r"\b(miles?|km|kilomet\w*)\b", tip.text.lower()), "unit-neutral"
    assert tip.fact_ids
    assert set(tip.fact_ids) <= KNOWN_FACTS
    assert tip.tags <= KNOWN_TAGS
    assert tip.tags & SITUATION_TAGS, "every tip suits at least one situation"
    assert tip.tags & TOPIC_TAGS, "every tip is about something"


@pytest.mark.parametrize("situation", sorted(SITUATION_TAGS))
def test_every_situation_has_choice(situation: str) -> None:
    """Each situation has several tips, so rotation has room to move."""
    assert sum(situation in t.tags for t in TIPS) >= 6


def test_settings_are_frozen_and_replaceable() -> None:
    """Overrides go through dataclasses.replace; the defaults cannot be changed in place."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.cooldown_days = 1  # type: ignore[misc]
    custom = dataclasses.replace(DEFAULTS, high_volume_week_mi=40.0)
    assert isinstance(custom, AdviceSettings)
    assert custom.high_volume_m("mi") == pytest.approx(40 * MI)
    assert DEFAULTS.high_volume_m("km") == 48 * KM
    assert DEFAULTS.counts("TrailRun")
    assert not DEFAULTS.counts("Ride")


def test_advice_package_uses_only_the_standard_library() -> None:
    """The rules import neither Flask, SQLAlchemy nor stravalib: only stdlib and themselves."""
    package_dir = Path(advice_pkg.__file__).parent
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                ok = name.split(".")[0] in sys.stdlib_module_names or name.startswith(
                    "strava_massage.advice"
                )
                assert ok, f"{path.name} imports {name}"

"""The advice rules (second version), table-driven: each rule's edges, in miles and km."""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from strava_massage import advice as advice_pkg
from strava_massage.advice import (
    DEFAULTS,
    KINDS,
    SESSION_KINDS,
    TIPS,
    Advice,
    AdviceSettings,
    Niggle,
    PastNote,
    PastRun,
    TrainingState,
    advise,
    format_distance,
)
from strava_massage.advice.wordings import WORDINGS
from tests.factories import DAY, KM, MI, make_state, steady_runs, unit_of

KNOWN_FACTS = {f"M{i}" for i in range(1, 8)} | {"F1", "F2", "F3", "T1", "T2", "T3"}
KNOWN_FACTS |= {"L1", "L2", "L3"}


def note(days_ago: int, kind: str = "long_run", *, session: bool = True, **kw: Any) -> PastNote:
    """A past note dated days_ago before DAY."""
    return PastNote(DAY - timedelta(days=days_ago), kind, kw.pop("tip_id", None), session, **kw)


def ago(days: int) -> Any:
    """The date `days` before DAY."""
    return DAY - timedelta(days=days)


def race_in(days: int, **kw: Any) -> dict[str, Any]:
    """A race the runner set, `days` after DAY."""
    return {"next_race_date": DAY + timedelta(days=days), **kw}


def with_week(units: str, this_week: float, last_week: float) -> TrainingState:
    """A runner whose last complete week was `last_week` units and this week so far (Mon-Wed,
    this run included) `this_week`; the weeks before are steady at `last_week`."""
    u = unit_of(units)
    monday = DAY - timedelta(days=2)
    runs = steady_runs(last_week * u, last=monday - timedelta(days=1))
    runs.append(PastRun(monday, this_week * u / 2))
    return make_state(units, runs=runs, distance=this_week * u / 2)


def layoff(units: str, off_days: int, back_runs: int, run: float = 5) -> TrainingState:
    """A steady 40 km (25 mi) runner off for `off_days`, then `back_runs` runs of `run` units
    on consecutive days, this run the last of them."""
    u = unit_of(units)
    weekly = (40 if units == "km" else 25) * u
    restart = DAY - timedelta(days=back_runs - 1)
    stop = restart - timedelta(days=off_days + 1)
    runs = [*steady_runs(weekly, last=stop - timedelta(days=1)), PastRun(stop, weekly / 4)]
    runs += [PastRun(restart + timedelta(days=n), run * u) for n in range(back_runs - 1)]
    return make_state(units, runs=runs, distance=run * u)


def beginner(units: str = "km", **kw: Any) -> TrainingState:
    """A runner at 12 km a week, three runs."""
    kw.setdefault("distance", 3 * KM)
    return make_state(units, runs=steady_runs(12 * KM), **kw)


def quiet(**kw: Any) -> TrainingState:
    """The steady runner after four days' rest: the last 7 days are no peak."""
    return make_state(runs=steady_runs(40 * KM, last=ago(5)), **kw)


# The L2 cases: this week against last week alone (no long run, no 7-day ratio).
L2_ONLY = {
    "long_run_min_km": 100.0, "long_run_min_mi": 60.0, "acwr_spike": 9.0,
    "high_volume_week_km": 200.0, "high_volume_week_mi": 120.0,
}  # fmt: skip

# name -> (state, settings overrides, expected kind, expected is_session)
Case = tuple[Callable[[], TrainingState], dict[str, Any], str, bool]

CASES: dict[str, Case] = {
    # 1. post-race, by distance; a race on the date the runner set counts untagged
    "race-tagged-10k": (lambda: make_state(workout_type=1), {}, "post_race", True),
    "race-untagged-on-set-date": (lambda: make_state(**race_in(0)), {}, "post_race", True),
    "race-half-untagged": (
        lambda: make_state(distance=21.1 * KM, **race_in(0)), {}, "post_race", True,
    ),
    "race-marathon-tagged": (
        lambda: make_state(distance=42.2 * KM, workout_type=1), {}, "post_race", True,
    ),
    "race-warm-up-is-not-the-race": (
        lambda: make_state(distance=2 * KM, **race_in(0, race_distance_m=21_100.0)),
        {}, "recovery_tip", False,
    ),
    "race-shorter-than-earlier-run-same-day": (
        lambda: make_state(
            runs=[*steady_runs(40 * KM), PastRun(DAY, 21_100.0)], distance=3 * KM, **race_in(0)
        ),
        {}, "recovery_tip", False,
    ),
    "race-ignores-cadence-and-massage": (
        lambda: make_state(
            workout_type=1, recent_notes=(note(1),), since_massage_days=1, last_massage_date=ago(1)
        ),
        {}, "post_race", True,
    ),
    # 2. pre-race, 3-7 days out, once per race; a recent massage: no booking
    "pre-race-3-days": (lambda: make_state(**race_in(3)), {}, "pre_race", True),
    "pre-race-7-days": (lambda: make_state(**race_in(7)), {}, "pre_race", True),
    "pre-race-8-days": (lambda: make_state(**race_in(8)), {}, "recovery_tip", False),
    "pre-race-2-days": (lambda: make_state(**race_in(2)), {}, "recovery_tip", False),
    "pre-race-once-per-race": (
        lambda: make_state(**race_in(4), recent_notes=(note(2, "pre_race"),)),
        {}, "recovery_tip", False,
    ),
    "pre-race-after-a-massage": (
        lambda: make_state(**race_in(5), since_massage_days=2, last_massage_date=ago(2)),
        {}, "pre_race", False,
    ),
    "pre-race-ignores-the-gap": (
        lambda: make_state(**race_in(5), recent_notes=(note(3),)), {}, "pre_race", True,
    ),
    # 48 h before a race: nothing else suggests a session
    "long-run-2-days-before-race": (
        lambda: make_state(distance=20 * KM, workout_type=2, **race_in(2)),
        {}, "recovery_tip", False,
    ),
    # 3. load spike: this week over 1.3x last week (L2), with the edges
    "jump-1.4x-km": (lambda: with_week("km", 56, 40), L2_ONLY, "load_spike", True),
    "jump-1.3x-exact-km": (lambda: with_week("km", 52, 40), L2_ONLY, "recovery_tip", False),
    "jump-1.4x-mi": (lambda: with_week("mi", 35, 25), L2_ONLY, "load_spike", True),
    "jump-needs-3-weeks": (
        lambda: dataclasses.replace(with_week("km", 56, 40), history_days=20),
        L2_ONLY, "recovery_tip", False,
    ),
    "jump-beginner-warns-without-booking": (
        lambda: with_week("km", 20, 12), L2_ONLY, "load_spike", False,
    ),
    "jump-after-a-session-warns-without-booking": (
        lambda: dataclasses.replace(with_week("km", 56, 40), recent_notes=(note(5),)),
        L2_ONLY, "load_spike", False,
    ),
    "jump-once-a-week": (
        lambda: dataclasses.replace(
            with_week("km", 56, 40), recent_notes=(note(3, "load_spike"),)
        ),
        L2_ONLY, "recovery_tip", False,
    ),
    # L1: the 7 days over 1.5x the four weeks before
    "acute-chronic-1.6x": (
        lambda: make_state(
            runs=[*steady_runs(40 * KM, last=ago(7)), PastRun(ago(6), 20 * KM),
                  PastRun(ago(4), 14 * KM), PastRun(ago(2), 14 * KM)],
            distance=16 * KM, day=DAY,
        ),
        {}, "load_spike", True,
    ),
    # 3b. comeback: a layoff's weeks are no baseline; below the old volume, a welcome back
    "comeback-after-16-days": (lambda: layoff("km", 16, 3), {}, "comeback", False),
    "comeback-mi": (lambda: layoff("mi", 12, 2, run=4), {}, "comeback", False),
    "no-comeback-after-9-days": (lambda: layoff("km", 9, 2), {}, "recovery_tip", False),
    "comeback-ends-at-old-volume": (
        lambda: layoff("km", 12, 5, run=9), {}, "recovery_tip", False,
    ),
    # 4. long run: tagged or clearly long, and not a cutback one
    "long-run-tagged": (
        lambda: make_state(distance=12 * KM, workout_type=2), {}, "long_run", True,
    ),
    "long-run-untagged-16.5-km": (lambda: make_state(distance=16.5 * KM), {}, "long_run", True),
    "long-run-untagged-15.9-km": (
        lambda: make_state(distance=15.9 * KM), {}, "recovery_tip", False,
    ),
    "long-run-untagged-10-mi": (lambda: make_state("mi", distance=10 * MI), {}, "long_run", True),
    "long-run-cutback": (
        lambda: make_state(
            runs=[*steady_runs(40 * KM, last=ago(5)), PastRun(ago(7), 30 * KM)],
            distance=25 * KM, workout_type=2,
        ),
        {}, "recovery_tip", False,
    ),
    "long-run-90-percent-of-longest": (
        lambda: make_state(
            runs=[*steady_runs(40 * KM), PastRun(ago(7), 30 * KM)],
            distance=27 * KM, workout_type=2,
        ),
        {}, "long_run", True,
    ),
    "long-run-inside-14-day-gap": (
        lambda: quiet(distance=17 * KM, recent_notes=(note(13),)), {}, "recovery_tip", False,
    ),
    "long-run-after-14-days": (
        lambda: quiet(distance=17 * KM, recent_notes=(note(14),)), {}, "long_run", True,
    ),
    "long-run-peak-week-after-7-days": (
        lambda: make_state(distance=17 * KM, recent_notes=(note(7, "monthly_checkin"),)), {},
        "long_run", True,
    ),
    "long-run-not-two-weeks-running": (
        lambda: make_state(distance=17 * KM, recent_notes=(note(13),)), {}, "recovery_tip", False,
    ),
    "long-run-after-a-massage": (
        lambda: make_state(distance=17 * KM, since_massage_days=3, last_massage_date=ago(3)),
        {}, "recovery_tip", False,
    ),
    "long-run-4-days-after-a-massage": (
        lambda: make_state(distance=17 * KM, since_massage_days=4, last_massage_date=ago(4)),
        {}, "long_run", True,
    ),
    "long-run-beginner": (
        lambda: beginner(distance=17 * KM), {"week_jump": 9.0, "acwr_spike": 9.0},
        "recovery_tip", False,
    ),
    # 5. high volume: past 48 km in 7 days and among the runner's biggest weeks
    "high-volume-peak-km": (
        lambda: make_state(runs=steady_runs(50 * KM), distance=12.5 * KM), {},
        "high_volume", True,
    ),
    "high-volume-peak-mi": (
        lambda: make_state("mi", runs=steady_runs(32 * MI), distance=8 * MI), {},
        "high_volume", True,
    ),
    "high-volume-not-a-peak-week": (
        lambda: make_state(runs=steady_runs(70 * KM), distance=12.5 * KM), {},
        "recovery_tip", False,
    ),
    "high-volume-peak-gap-7-days": (
        lambda: make_state(runs=steady_runs(50 * KM), distance=12.5 * KM,
                           recent_notes=(note(7),)),
        {}, "high_volume", True,
    ),
    "high-volume-peak-gap-6-days": (
        lambda: make_state(runs=steady_runs(50 * KM), distance=12.5 * KM,
                           recent_notes=(note(6),)),
        {}, "recovery_tip", False,
    ),
    # 6. monthly check-in: 30 days and 160 km / 100 mi since the last session
    "checkin-due": (
        lambda: make_state(since_massage_days=30, since_massage_m=160 * KM), {},
        "monthly_checkin", True,
    ),
    "checkin-held-in-the-10-days-before-a-race": (
        lambda: make_state(since_massage_days=30, since_massage_m=160 * KM, **race_in(9)), {},
        "recovery_tip", False,
    ),
    "checkin-29-days": (
        lambda: make_state(since_massage_days=29, since_massage_m=200 * KM), {},
        "recovery_tip", False,
    ),
    "checkin-mi": (
        lambda: make_state("mi", since_massage_days=31, since_massage_m=100 * MI), {},
        "monthly_checkin", True,
    ),
    "checkin-beginner-still-due": (
        lambda: beginner(since_massage_days=40, since_massage_m=170 * KM), {},
        "monthly_checkin", True,
    ),
    "checkin-reminded-20-days-ago": (
        lambda: make_state(since_massage_days=45, since_massage_m=200 * KM,
                           last_checkin_date=ago(20)),
        {}, "recovery_tip", False,
    ),
    # settings move the edges
    "setting-session-gap-5": (
        lambda: quiet(distance=17 * KM, recent_notes=(note(5, "high_volume"),)),
        {"session_gap_days": 5}, "long_run", True,
    ),
    "setting-week-jump-1.5": (
        lambda: with_week("km", 56, 40), {**L2_ONLY, "week_jump": 1.5}, "recovery_tip", False,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("build", "settings", "kind", "session"), CASES.values(), ids=CASES)
def test_rule_edges(build: Callable[[], TrainingState], settings: dict[str, Any], kind: str,
                    session: bool) -> None:  # fmt: skip
    """Each rule fires exactly at its documented edge, with or without a session as the
    cadence allows."""
    advice = advise(build(), dataclasses.replace(DEFAULTS, **settings))
    assert (advice.kind, advice.is_session) == (kind, session), advice


def test_default_state_is_a_plain_tip() -> None:
    """The builder's runner fires nothing, so each case above changes only what it tests."""
    for units in ("km", "mi"):
        advice = advise(make_state(units))
        assert (advice.kind, advice.is_session) == ("recovery_tip", False)


@pytest.mark.parametrize(
    ("km", "size"), [(5, "short"), (10, "short"), (17.9, "short"), (21.1, "half"), (42.2, "long"),
                     (100, "long")],
)  # fmt: skip
def test_post_race_advice_by_distance(km: float, size: str) -> None:
    """Short races, halves and marathons-and-longer each get their own advice."""
    advice = advise(make_state(distance=km * KM, workout_type=1))
    assert advice.wording_id is not None and advice.wording_id.startswith(f"post_race.{size}.")
    if size != "short":
        assert "M5" in advice.fact_ids  # sleep and a mental break after the long ones


def test_a_comeback_is_never_a_load_alarm() -> None:
    """Back from a layoff and climbing fast, but below the old volume: no alarm."""
    for back in range(1, 8):
        assert advise(layoff("km", 14, back, run=5)).kind == "comeback", back


def test_a_layoff_week_is_left_out_of_the_jump_baseline() -> None:
    """Last week was half a layoff: this week is compared with the full week before it."""
    u = KM
    monday = DAY - timedelta(days=2)
    runs = steady_runs(40 * u, last=monday - timedelta(days=14))
    # 11 days off (a layoff), then a short weekend back: last week counts as a layoff week.
    runs += [PastRun(monday - timedelta(days=2), 5 * u), PastRun(monday - timedelta(days=1), 5 * u)]
    runs.append(PastRun(monday, 20 * u))
    state = make_state(runs=runs, distance=20 * u)
    assert advise(state).kind != "load_spike"


def test_session_kinds_and_priority() -> None:
    """The kinds in priority order, and which of them suggest a session."""
    assert KINDS == (
        "post_race", "pre_race", "load_spike", "comeback", "long_run", "high_volume",
        "monthly_checkin", "recovery_tip",
    )  # fmt: skip
    assert set(KINDS) - {"comeback", "recovery_tip"} == SESSION_KINDS


EXPECTED_FACTS = {
    "post_race": {"T2", "L3"},
    "pre_race": {"T1", "L3"},
    "load_spike": {"L1", "L2", "M3"},
    "long_run": {"T2", "M6"},
    "high_volume": {"F3", "F2"},
    "monthly_checkin": {"F1"},
}


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][2] in EXPECTED_FACTS])
def test_session_advice_cites_its_basis(case: str) -> None:
    """Every session note cites the facts its rule rests on."""
    build, settings, kind, _ = CASES[case]
    advice = advise(build(), dataclasses.replace(DEFAULTS, **settings))
    assert EXPECTED_FACTS[kind] <= set(advice.fact_ids) <= KNOWN_FACTS


WORDING_CASES = {
    "post_race.short": "race-tagged-10k",
    "post_race.half": "race-half-untagged",
    "post_race.long": "race-marathon-tagged",
    "pre_race": "pre-race-3-days",
    "pre_race.recent_massage": "pre-race-after-a-massage",
    "load_spike": "acute-chronic-1.6x",
    "load_spike.warning": "jump-beginner-warns-without-booking",
    "comeback": "comeback-after-16-days",
    "long_run": "long-run-tagged",
    "high_volume": "high-volume-peak-km",
    "monthly_checkin": "checkin-due",
}


@pytest.mark.parametrize("key", sorted(WORDINGS))
def test_a_wording_never_comes_twice_in_a_row(key: str) -> None:
    """Whatever wording a rule used last time, the next note of the rule uses another."""
    kind = key.split(".")[0]
    case = CASES[WORDING_CASES[key]]
    seen = set()
    for wording in WORDINGS[key]:
        state = case[0]()
        last = note(20, kind, wording_id=wording.id)
        settings = dataclasses.replace(DEFAULTS, **case[1])
        advice = advise(
            dataclasses.replace(state, recent_notes=(last, *state.recent_notes)), settings
        )
        assert advice.wording_id and advice.wording_id.startswith(key + "."), advice
        assert advice.wording_id != wording.id
        seen.add(advice.wording_id)
    assert len(seen) >= 2


def test_tips_never_repeat_within_ten_notes() -> None:
    """Twenty easy runs in a row: no tip twice within any ten consecutive notes."""
    notes: list[PastNote] = []
    shown: list[str | None] = []
    for n in range(20):
        state = make_state(activity_id=5000 + n, recent_notes=tuple(notes))
        advice = advise(state)
        assert advice.tip_id not in shown[-10:], (n, advice.tip_id)
        shown.append(advice.tip_id)
        notes.insert(0, PastNote(DAY, advice.kind, advice.tip_id, False, 5000 + n))
    assert len(set(shown)) >= 15


def test_the_why_line_says_why_this_tip_today() -> None:
    """A tip's reason names the run's context and the tip's own reason."""
    advice = advise(make_state(**race_in(1)))
    assert advice.reason.startswith("your race is tomorrow; ")
    tip = next(t for t in TIPS if t.id == advice.tip_id)
    assert "race_week" in tip.contexts and advice.reason.endswith(tip.why)
    easy = advise(make_state())
    assert easy.reason.startswith("10.0 km today, 20.0 km this week; ")


@pytest.mark.parametrize("area", ["calves", "achilles", "shins", "hamstrings", "it_band", "foot",
                                  "hips", "lower_back"])  # fmt: skip
def test_a_niggle_shapes_tips_for_three_weeks(area: str) -> None:
    """A sore area picks tips for it, with when to see a professional; after 21 days, not."""
    fresh = advise(make_state(niggle=Niggle(area, ago(3))))
    tip = next(t for t in TIPS if t.id == fresh.tip_id)
    assert area in tip.areas
    assert "physio" in fresh.body and "noted sore" in fresh.reason
    old = advise(make_state(niggle=Niggle(area, ago(21))))
    assert "noted sore" not in old.reason


def test_a_niggle_says_what_to_ask_the_therapist() -> None:
    """A session note names the sore area, and the runner's clinic when they have one."""
    state = make_state(distance=17 * KM, niggle=Niggle("calves", ago(2)))
    assert advise(state).body.endswith("Ask your therapist to look at your calves too.")
    clinic = dataclasses.replace(state, clinic="Riverside Physio")
    assert advise(clinic).body.endswith("Ask Riverside Physio to look at your calves too.")


def test_reasons_use_the_runners_units() -> None:
    """Numbers in a note's reason are in the runner's units, one decimal."""
    assert advise(with_week("mi", 35, 25)).reason.startswith("this week 35.0 mi so far, 1.40x")
    assert advise(with_week("km", 56, 40)).reason.startswith("this week 56.0 km so far, 1.40x")


@pytest.mark.parametrize(
    ("metres", "units", "text"),
    [(1609.344, "mi", "1.0 mi"), (1000.0, "km", "1.0 km"), (0.0, "km", "0.0 km"),
     (42_195.0, "mi", "26.2 mi")],
)  # fmt: skip
def test_format_distance(metres: float, units: Any, text: str) -> None:
    """Distances read with one decimal in the runner's units."""
    assert format_distance(metres, units) == text


def test_advice_is_deterministic() -> None:
    """The same state gives the same advice, so a repeated job writes the same note."""
    for build, settings, _, _ in CASES.values():
        cfg = dataclasses.replace(DEFAULTS, **settings)
        assert advise(build(), cfg) == advise(build(), cfg)


def test_a_note_for_this_activity_is_ignored() -> None:
    """A repeated job sees its own earlier note and must not let it change the advice."""
    state = make_state(distance=17 * KM)
    own = PastNote(DAY, "long_run", None, True, activity_id=state.activity_id)
    assert advise(dataclasses.replace(state, recent_notes=(own,))) == advise(state)


def test_settings_are_frozen_and_replaceable() -> None:
    """Overrides go through dataclasses.replace; the defaults cannot be changed in place."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.session_gap_days = 1  # type: ignore[misc]
    custom = dataclasses.replace(DEFAULTS, high_volume_week_mi=40.0)
    assert isinstance(custom, AdviceSettings)
    assert custom.high_volume_m("mi") == pytest.approx(40 * MI)
    assert DEFAULTS.high_volume_m("km") == 48 * KM
    assert DEFAULTS.counts("TrailRun") and not DEFAULTS.counts("Ride")


def test_rules_hold_no_numbers_of_their_own() -> None:
    """Every threshold lives in AdviceSettings: the rules' code has no bare numbers beyond 0-2
    (and the calendar's and the clock's: 7, 24, 60, 3600, 1000 m a km)."""
    tree = ast.parse((Path(advice_pkg.__file__).parent / "rules.py").read_text())
    numbers = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, int | float) and not isinstance(n.value, bool)}  # fmt: skip
    assert numbers <= {0, 1, 2, 7, 24, 60, 1000, 3600}, numbers


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


def test_advice_fields() -> None:
    """A tip is no session and has a tip id; a session note has a wording id."""
    tip: Advice = advise(make_state())
    assert not tip.is_session and tip.tip_id and tip.wording_id is None
    session = advise(make_state(distance=17 * KM))
    assert session.is_session and session.tip_id is None and session.wording_id

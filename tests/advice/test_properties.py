"""What a coach would check over a whole season of notes, on six generated training histories.

Each history is replayed once through `preview.replay` (the real decision path, in memory); the
properties below come from recovery-knowledge.md, "The advice rules (second version)".
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections import Counter

import pytest

from strava_massage.services.preview import PreviewNote

from .histories import (
    BY_NAME,
    HISTORIES,
    Replayed,
    longest_same_wording,
    replay_history,
    week_start,
    week_totals,
    wording_key,
)

ALL = [h.name for h in HISTORIES]
WITH_JUMPS = [h.name for h in HISTORIES if h.jump_weeks]
WITH_LAYOFF = [h.name for h in HISTORIES if h.layoff]
BEGINNERS = [h.name for h in HISTORIES if h.beginner]
WITH_EXPECTED = [h.name for h in HISTORIES if h.expected_kinds]
LONG_ENOUGH = [h.name for h in HISTORIES if len(h.runs) >= 40]

POST_RACE, PRE_RACE, LOAD_SPIKE, LONG_RUN = "post_race", "pre_race", "load_spike", "long_run"
MONTHLY_CHECKIN, COMEBACK, RECOVERY_TIP = "monthly_checkin", "comeback", "recovery_tip"
RACE_KINDS = {POST_RACE, PRE_RACE}
SESSION_GAP_DAYS = 7  # the shortest cadence: peak weeks
AFTER_MASSAGE_DAYS = 3
PRE_RACE_DAYS = (3, 7)
NO_SESSION_BEFORE_RACE_DAYS = 2  # 48 h
LONG_RUN_OF_LONGEST, LONG_RUN_LOOKBACK_DAYS = 0.9, 42
MAX_NOTE_CHARS, MAX_NOTE_LINES = 500, 4
BANNED = [
    r"blood flow", r"circulation", r"oxygen", r"nutrient", r"lactic", r"toxin", r"flush",
    r"metabolic waste", r"urine", r"desk", r"extra \d+", r"feeling (stiff|tight|sore)\?",
]  # fmt: skip
INTERNAL = [r"instead", r"cooldown", r"fallback", r"was suggested", r"so a tip", r"held back"]


@functools.cache
def replayed(name: str) -> Replayed:
    """The history's replay, done once per test session."""
    return replay_history(BY_NAME[name])


def show(note: PreviewNote) -> str:
    """A note as an assertion message shows it: date, rule, distance, then its text."""
    return f"{note.local_date} {note.kind} ({note.distance_m / 1000:.1f} km):\n{note.text}"


def days(a: dt.date, b: dt.date) -> int:
    """Days from a to b."""
    return (b - a).days


# -- races ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_race_runs_get_the_post_race_note(name: str) -> None:
    """The race run of every race day, tagged or not, gets the post-race note; no other run does."""
    r = replayed(name)
    race_ids = r.history.race_run_ids()
    for run, note in zip(r.runs, r.notes, strict=True):
        if run.id in race_ids:
            assert note.kind == POST_RACE, f"the race got no post-race note: {show(note)}"
        else:
            assert note.kind != POST_RACE, (
                f"a post-race note on a run that is no race: {show(note)}"
            )


@pytest.mark.parametrize("name", ALL)
def test_no_session_in_the_48_hours_before_a_race(name: str) -> None:
    """No note suggests a session 1-2 days before a set race, nor on race day before the race."""
    r = replayed(name)
    race_ids = r.history.race_run_ids()
    for race in r.history.races:
        for run, note in zip(r.runs, r.notes, strict=True):
            if run.id in race_ids and note.local_date == race.on:
                break  # the race itself, and what follows it, may suggest a session
            if 0 <= days(note.local_date, race.on) <= NO_SESSION_BEFORE_RACE_DAYS:
                assert not note.is_session, (
                    f"a session suggested {days(note.local_date, race.on)} day(s) before the "
                    f"race on {race.on}: {show(note)}"
                )


@pytest.mark.parametrize("name", ALL)
def test_one_pre_race_note_3_to_7_days_out(name: str) -> None:
    """Each set race with a run 3-7 days before it gets exactly one pre-race note there."""
    r = replayed(name)
    low, high = PRE_RACE_DAYS
    windows = {race.on: [n for n in r.notes if low <= days(n.local_date, race.on) <= high]
               for race in r.history.races}  # fmt: skip
    for on, in_window in windows.items():
        if not in_window:
            continue
        pre = [n for n in in_window if n.kind == PRE_RACE]
        assert len(pre) == 1, (
            f"{len(pre)} pre-race notes for the race on {on}; the window's first note: "
            + show(in_window[0])
            + "".join("\n---\n" + show(n) for n in pre[1:])
        )
    for note in r.notes:
        if note.kind == PRE_RACE:
            assert any(note in in_window for in_window in windows.values()), (
                f"a pre-race note outside every race's 3-7 day window: {show(note)}"
            )


# -- load alarms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_JUMPS)
def test_a_real_jump_raises_a_load_alarm(name: str) -> None:
    """A week over 1.3x the week before gets at least one load-spike note."""
    r = replayed(name)
    for monday in r.history.jump_weeks:
        week = [n for n in r.notes if week_start(n.local_date) == monday]
        assert any(n.kind == LOAD_SPIKE for n in week), (
            f"no load alarm in the jump week of {monday}; its last note: {show(week[-1])}"
        )


@pytest.mark.parametrize("name", WITH_LAYOFF)
def test_no_load_alarm_in_a_comeback(name: str) -> None:
    """From the break until the runner is back at the old volume, no load-spike note."""
    r = replayed(name)
    layoff = r.history.layoff
    assert layoff is not None
    for note in r.notes:
        back = layoff.back_on is None or note.local_date < layoff.back_on
        if note.local_date > layoff.last_run and back:
            assert note.kind != LOAD_SPIKE, (
                f"a load alarm in the comeback after {layoff.days_off} days off "
                f"(back at the old volume on {layoff.back_on}): {show(note)}"
            )


@pytest.mark.parametrize("name", WITH_LAYOFF)
def test_the_first_run_back_gets_the_comeback_note(name: str) -> None:
    """The first run after a layoff gets the comeback note (rule 3b)."""
    r = replayed(name)
    assert r.history.layoff is not None
    first = next(n for n in r.notes if n.local_date == r.history.layoff.first_back)
    assert first.kind == COMEBACK, f"the first run back: {show(first)}"


@pytest.mark.parametrize("name", ALL)
def test_load_alarms_only_in_weeks_above_the_weeks_before(name: str) -> None:
    """A load-spike note only in a week above the previous week (L2) or above the average of
    the four before it (L1: the last 7 days may straddle two weeks)."""
    r = replayed(name)
    totals = week_totals(r.runs)
    for note in r.notes:
        if note.kind != LOAD_SPIKE:
            continue
        monday = week_start(note.local_date)
        before = [totals.get(monday - dt.timedelta(weeks=k), 0.0) for k in range(1, 5)]
        now = totals[monday]
        assert now > min(before[0], sum(before) / 4), (
            f"a load alarm in a week of {now / 1000:.1f} km after {before[0] / 1000:.1f} km: "
            + show(note)
        )


# -- cadence -------------------------------------------------------------------------------------


def _sessions(notes: list[PreviewNote]) -> list[PreviewNote]:
    """The notes that suggest booking a session."""
    return [n for n in notes if n.is_session]


@pytest.mark.parametrize("name", ALL)
def test_non_race_sessions_at_least_a_week_apart(name: str) -> None:
    """Two session suggestions that are not race notes are at least 7 days apart."""
    sessions = [n for n in _sessions(replayed(name).notes) if n.kind not in RACE_KINDS]
    for before, after in itertools.pairwise(sessions):
        assert days(before.local_date, after.local_date) >= SESSION_GAP_DAYS, (
            f"sessions {days(before.local_date, after.local_date)} days apart:\n"
            f"{show(before)}\n---\n{show(after)}"
        )


@pytest.mark.parametrize("name", ALL)
def test_race_notes_reset_the_cadence(name: str) -> None:
    """A non-race session suggestion comes at least 7 days after a race note's session."""
    last_race: PreviewNote | None = None
    for note in _sessions(replayed(name).notes):
        if note.kind in RACE_KINDS:
            last_race = note
        elif last_race is not None:
            gap = days(last_race.local_date, note.local_date)
            assert gap >= SESSION_GAP_DAYS, (
                f"a session {gap} days after a race note:\n{show(last_race)}\n---\n{show(note)}"
            )


@pytest.mark.parametrize("name", BEGINNERS)
def test_a_beginner_gets_only_checkins_and_race_notes(name: str) -> None:
    """A beginner's only session suggestions are the monthly check-in and race notes."""
    for note in _sessions(replayed(name).notes):
        assert note.kind in RACE_KINDS | {MONTHLY_CHECKIN}, f"a beginner was told: {show(note)}"


@pytest.mark.parametrize("name", WITH_EXPECTED)
def test_the_expected_rules_fire(name: str) -> None:
    """The rules a coach expects for this runner fire at least once."""
    r = replayed(name)
    seen = Counter(n.kind for n in r.notes)
    for kind in r.history.expected_kinds:
        assert seen[kind], f"no {kind} note in {len(r.notes)} notes ({dict(seen)})"


@pytest.mark.parametrize("name", ALL)
def test_no_long_run_note_on_a_cutback_long_run(name: str) -> None:
    """No long-run note on a run under 90 % of the longest run of the 6 weeks before."""
    r = replayed(name)
    for i, (run, note) in enumerate(zip(r.runs, r.notes, strict=True)):
        if note.kind != LONG_RUN:
            continue
        day = run.start_date_local.date()
        earlier = [p.distance_m for p in r.runs[:i]
                   if days(p.start_date_local.date(), day) <= LONG_RUN_LOOKBACK_DAYS]  # fmt: skip
        longest = max(earlier, default=0.0)
        assert run.distance_m >= LONG_RUN_OF_LONGEST * longest, (
            f"a long-run note on a cutback long run ({run.distance_m / 1000:.1f} km, the "
            f"longest of 6 weeks {longest / 1000:.1f} km): {show(note)}"
        )


@pytest.mark.parametrize("name", ALL)
def test_no_session_within_3_days_after_a_massage(name: str) -> None:
    """No session suggestion 0-3 days after a logged massage, post-race aside."""
    r = replayed(name)
    for note in _sessions(r.notes):
        if note.kind == POST_RACE:
            continue
        for massage in r.history.massages:
            assert not 0 <= days(massage, note.local_date) <= AFTER_MASSAGE_DAYS, (
                f"a session {days(massage, note.local_date)} days after the massage on "
                f"{massage}: {show(note)}"
            )


# -- wording -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_no_wording_more_than_three_times_in_a_row(name: str) -> None:
    """No wording (tip, rule wording, or body) on more than three consecutive notes."""
    notes = replayed(name).notes
    length, start = longest_same_wording(notes)
    assert length <= 3, (
        f"the same wording {wording_key(notes[start])!r} on {length} notes in a row, from: "
        + show(notes[start])
    )


@pytest.mark.parametrize("name", ALL)
def test_no_wording_on_more_than_a_third_of_the_notes(name: str) -> None:
    """No wording is used for more than a third of the notes."""
    notes = replayed(name).notes
    key, count = Counter(wording_key(n) for n in notes).most_common(1)[0]
    first = next(n for n in notes if wording_key(n) == key)
    assert count <= len(notes) / 3, (
        f"{key!r} on {count} of {len(notes)} notes; the first: {show(first)}"
    )


@pytest.mark.parametrize("name", ALL)
def test_no_tip_twice_within_ten_notes(name: str) -> None:
    """No tip comes twice within 10 consecutive notes."""
    notes = replayed(name).notes
    last_seen: dict[str, int] = {}
    for i, note in enumerate(notes):
        if note.tip_id is None:
            continue
        if note.tip_id in last_seen:
            j = last_seen[note.tip_id]
            assert i - j >= 10, (
                f"tip {note.tip_id!r} again {i - j} notes later:\n{show(notes[j])}\n---\n"
                + show(note)
            )
        last_seen[note.tip_id] = i


@pytest.mark.parametrize("name", ALL)
def test_a_session_rule_never_repeats_its_wording(name: str) -> None:
    """Two consecutive notes of the same session rule never share a wording."""
    previous: dict[str, PreviewNote] = {}
    for note in replayed(name).notes:
        if note.kind == RECOVERY_TIP:
            continue
        if note.tip_id is None:  # the body is the rule's own wording: it must say which
            assert note.wording_id, f"a {note.kind} note without a wording id: {show(note)}"
        before = previous.get(note.kind)
        if before is not None and note.wording_id:
            assert before.wording_id != note.wording_id, (
                f"wording {note.wording_id!r} twice running:\n{show(before)}\n---\n{show(note)}"
            )
        previous[note.kind] = note


@pytest.mark.parametrize("name", LONG_ENOUGH)
def test_tips_vary(name: str) -> None:
    """A history of 40+ notes shows at least 15 different tips."""
    notes = replayed(name).notes
    tips = Counter(n.tip_id for n in notes if n.tip_id)
    assert len(tips) >= 15, f"{len(tips)} tips over {len(notes)} notes: {dict(tips)}"


# -- content -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_no_banned_claim(name: str) -> None:
    """No note makes a claim the evidence does not back, or assumes a symptom."""
    for note in replayed(name).notes:
        for pattern in BANNED:
            assert not re.search(pattern, note.text, re.I), f"{pattern!r} in {show(note)}"


@pytest.mark.parametrize("name", ALL)
def test_no_internal_logic_showing(name: str) -> None:
    """No note shows what the engine decided internally (a cooldown, a fallback)."""
    for note in replayed(name).notes:
        for pattern in INTERNAL:
            assert not re.search(pattern, note.text, re.I), f"{pattern!r} in {show(note)}"


@pytest.mark.parametrize("name", ALL)
def test_notes_fit_and_say_why(name: str) -> None:
    """Every note is under 500 characters, at most 4 lines, with a line starting "Why: "."""
    for note in replayed(name).notes:
        lines = note.text.splitlines()
        assert len(note.text) < MAX_NOTE_CHARS, f"{len(note.text)} characters: {show(note)}"
        assert len(lines) <= MAX_NOTE_LINES, f"{len(lines)} lines: {show(note)}"
        assert any(line.startswith("Why: ") for line in lines), f"no Why line: {show(note)}"

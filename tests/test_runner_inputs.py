"""Runner inputs from the command line, the private-note target, backfill and `advise`."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Activity, Athlete, MassageSession, Note
from strava_massage.services.advising import training_state

from .conftest import Stack


def _runner(stack: Stack, units: str = "meters") -> int:
    athlete = stack.sim.create_athlete(measurement_preference=units)  # type: ignore[arg-type]
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    return int(athlete["id"])


def _cli(stack: Stack, *args: str) -> str:
    result = stack.app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_backfill_imports_eight_weeks_and_the_first_note_counts_them(make_stack) -> None:
    stack: Stack = make_stack()
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete(measurement_preference="meters")
    today = dt.date.today()
    # Nine weeks of history: 3 runs a week of 8 km, plus a ride; only the last 8 weeks count.
    for days_ago in range(1, 64):
        if days_ago % 7 in (1, 3, 5):
            start = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(7))
            stack.sim.create_activity(
                athlete["id"], distance=8000.0, start_date_local=start, fire=False
            )
    stack.sim.create_activity(athlete["id"], sport_type="Ride", fire=False)
    stack.sim.reset_calls()
    browser = stack.connect(athlete["id"])
    assert "Imported" in browser.get(stack.url + "/dashboard").text
    with stack.db.session() as session:
        row = session.get(Athlete, athlete["id"])
        imported = session.scalars(select(Activity)).all()
    assert row is not None and row.backfill_status == "done"
    expected = sum(
        1 for d in range(1, 57) if d % 7 in (1, 3, 5)
    )  # runs that started within the last 56 days
    assert row.backfill_runs == len(imported) == expected
    list_calls = stack.sim.count("GET", "/api/v3/athlete/activities")
    assert list_calls == 1  # fewer than 200 activities: one page
    # The first note's 28-day total includes the imported history.
    run = stack.sim.create_activity(athlete["id"], distance=10000.0)
    stack.wait_idle()
    with stack.db.session() as session:
        note = session.scalar(select(Note).where(Note.activity_id == run["id"]))
        state = training_state(session, session.get(Athlete, athlete["id"]), run["id"])
    assert note is not None and note.status == "written"
    rolling28 = 10 + 8 * sum(1 for d in range(1, 28) if d % 7 in (1, 3, 5))
    assert state.rolling28_m == rolling28 * 1000
    assert state.history_days >= 50

    # A webhook for an imported run does not count it twice.
    old = imported[0]
    stack.sim.fire_event("activity", old.id, "create", athlete["id"], event_time=5)
    stack.wait_idle()
    with stack.db.session() as session:
        assert len(session.scalars(select(Activity)).all()) == expected + 1


def test_a_big_history_is_imported_a_page_of_200_at_a_time(make_stack) -> None:
    stack: Stack = make_stack()
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()
    now = dt.datetime.now().replace(microsecond=0)
    for n in range(250):  # a double-day runner: 250 runs inside the eight weeks
        start = now - dt.timedelta(hours=5 * (n + 1))
        stack.sim.create_activity(
            athlete["id"], distance=5000.0, start_date_local=start, fire=False
        )
    stack.sim.reset_calls()
    stack.connect(athlete["id"])
    with stack.db.session() as session:
        row = session.get(Athlete, athlete["id"])
        assert row is not None and row.backfill_runs == 250
    assert stack.sim.count("GET", "/api/v3/athlete/activities") == 2
    (event,) = [e for e in stack.events(backfill=True) if e.aspect_type == "backfill"]
    assert event.outcome == "history imported (250 runs of 250 activities, 2 call(s))"


def test_runner_settings_from_the_command_line(stack: Stack) -> None:
    athlete_id = _runner(stack)
    _cli(stack, "runner", "set", str(athlete_id), "--units", "mi", "--notes", "paused",
         "--disclaimer", "General guidance only.", "--advice", "session_gap_days=7")  # fmt: skip
    shown = _cli(stack, "runner", "show", str(athlete_id))
    assert "units: mi" in shown and "notes: paused" in shown
    assert "General guidance only." in shown and "session_gap_days" in shown
    _cli(stack, "runner", "set", str(athlete_id), "--race", "2030-04-26:42.195")
    # Given in km, shown in the runner's miles as on their Settings page.
    assert "next race: 2030-04-26 (26.2 mi)" in _cli(stack, "runner", "show", str(athlete_id))
    bad = stack.app.test_cli_runner().invoke(
        args=["runner", "set", str(athlete_id), "--race", "2001-01-01"]
    )
    assert bad.exit_code == 1 and "in the past" in bad.output
    bad = stack.app.test_cli_runner().invoke(
        args=["runner", "set", str(athlete_id), "--advice", "nope=1"]
    )
    assert bad.exit_code == 1 and "unknown advice setting" in bad.output
    # Paused: the run is counted, no note is written.
    run = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    assert stack.sim.count("PUT") == 0
    assert stack.sim.activity(run["id"])["description"] == ""
    _cli(stack, "runner", "set", str(athlete_id), "--notes", "on")
    run = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    description = stack.sim.activity(run["id"])["description"]
    assert " mi" in description and "General guidance only." in description


def test_massage_sessions_reset_the_counter(stack: Stack) -> None:
    athlete_id = _runner(stack)
    today = dt.date.today()
    # Without a logged session the count starts at connecting: today's run counts.
    stack.sim.create_activity(athlete_id, distance=12000.0)
    stack.wait_idle()
    before = _cli(stack, "advise", "--athlete", str(athlete_id), "--distance", "5")
    assert re.search(r"since massage +17\.0 km", before), before
    # A session logged today: today's earlier run counts as before it.
    added = _cli(stack, "runner", "massage", "add", str(athlete_id), "--on", today.isoformat())
    assert "logged" in added
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    after = _cli(
        stack, "advise", "--athlete", str(athlete_id), "--distance", "5", "--as-of", tomorrow
    )
    assert re.search(r"since massage +5\.0 km", after), after
    with stack.db.session() as session:
        session_id = session.scalar(select(MassageSession.id))
    _cli(stack, "runner", "massage", "remove", str(athlete_id), str(session_id))
    assert "massage sessions: none" in _cli(stack, "runner", "show", str(athlete_id))


def test_advise_writes_nothing(stack: Stack) -> None:
    athlete_id = _runner(stack)
    out = _cli(stack, "advise", "--athlete", str(athlete_id), "--as-of", "2030-01-01")
    assert "rule:" in out and BLOCK_START not in out
    with stack.db.session() as session:
        assert session.scalars(select(Activity)).all() == []
        assert session.scalars(select(Note)).all() == []
    assert stack.sim.count() == 0


def test_private_note_target_and_fallback(stack: Stack) -> None:
    athlete_id = _runner(stack)
    _cli(stack, "runner", "set", str(athlete_id), "--target", "private_note")
    run = stack.sim.create_activity(athlete_id, description="mine")
    stack.wait_idle()
    stored = stack.sim.activity(run["id"])
    assert stored["description"] == "mine"
    assert BLOCK_START in stored["private_note"]
    # Strava stops accepting the undocumented field: the note goes to the description instead.
    stack.sim.reject_private_note = True
    second = stack.sim.create_activity(athlete_id, description="mine too")
    stack.wait_idle()
    stored = stack.sim.activity(second["id"])
    assert stored["description"].startswith("mine too\n\n" + BLOCK_START)
    with stack.db.session() as session:
        assert session.get(Athlete, athlete_id).note_target == "description"  # type: ignore[union-attr]

"""The runner's pages over plain HTTP: what the dashboard counts, who sees what, forms, language."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import requests
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from sqlalchemy import insert

from strava_massage.models import Activity, Athlete, MassageSession, Note
from strava_massage.services import dashboard

from .conftest import Stack
from .helpers import csrf_token

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
PAGES = ["/dashboard", "/dashboard/import.json", "/settings", "/account", "/account/delete",
         "/account/export.json"]  # fmt: skip


def _add_runs(stack: Stack, athlete_id: int, runs: list[tuple[dt.date, float]]) -> None:
    """Put runs (date, metres) straight into the ledger, with a note each."""
    rows = [
        {"id": athlete_id * 1000 + i, "athlete_id": athlete_id, "local_date": day,
         "distance_m": metres, "moving_time_s": 1800, "sport_type": "Run", "workout_type": None}
        for i, (day, metres) in enumerate(runs)
    ]  # fmt: skip
    notes = [
        {"activity_id": r["id"], "athlete_id": athlete_id, "local_date": r["local_date"],
         "kind": "recovery_tip", "reason": f"run {i}", "text": "t", "status": "written"}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    with stack.db.session() as session:
        session.execute(insert(Activity), rows)
        session.execute(insert(Note), notes)
        session.commit()


def test_every_runner_page_sends_a_visitor_to_the_start(make_stack) -> None:
    stack: Stack = make_stack()
    for path in PAGES:
        r = requests.get(stack.url + path, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == "/", path


def test_weekly_distance_buckets_by_monday_and_marks_sessions(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    today = dt.date(2026, 11, 19)  # a Thursday
    monday = today - dt.timedelta(days=3)
    _add_runs(stack, athlete, [
        (monday, 5000.0), (today, 7000.0),  # this week
        (monday - dt.timedelta(days=1), 9000.0),  # last Sunday: last week
        (monday - dt.timedelta(weeks=15), 4000.0),  # the oldest week shown
        (monday - dt.timedelta(weeks=16), 99_000.0),  # too old for the chart
        (today + dt.timedelta(days=1), 99_000.0),  # tomorrow: not yet
    ])  # fmt: skip
    with stack.db.session() as session:
        session.add(MassageSession(athlete_id=athlete, on=monday - dt.timedelta(days=4)))
        session.commit()
        weeks = dashboard.weekly(session, athlete, today)
    assert len(weeks) == 16 and weeks[-1].start == monday
    assert [w.metres for w in weeks[-2:]] == [9000.0, 12000.0]
    assert weeks[0].metres == 4000.0 and sum(w.metres for w in weeks) == 25000.0
    assert weeks[-2].sessions == (monday - dt.timedelta(days=4),)
    chart = dashboard.chart(weeks, threshold_m=48_000.0, unit_m=1000.0)
    assert [t[1] for t in chart.ticks] == [0.0, 20_000.0, 40_000.0, 60_000.0]
    assert chart.bars[-1].height > chart.bars[-2].height > 0 and not chart.bars[-1].over
    assert chart.top <= chart.line_y < chart.bottom  # the 48 km line is inside the plot


def test_today_is_the_runners_own_and_follows_their_runs(stack: Stack) -> None:
    noon_utc = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    assert dashboard.runner_today(Athlete(timezone="Pacific/Auckland"), noon_utc).day == 23
    assert dashboard.runner_today(Athlete(timezone="Nowhere/Atlantis"), noon_utc).day == 22
    assert dashboard.runner_today(Athlete(timezone=None), noon_utc).day == 22
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    stack.sim.create_activity(athlete, timezone="(GMT+13:00) Pacific/Auckland")
    stack.wait_idle()
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None and row.timezone == "Pacific/Auckland"


def test_notes_come_twenty_to_a_page_newest_first(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    today = dt.date.today()
    _add_runs(stack, athlete, [(today - dt.timedelta(days=d), 5000.0) for d in range(25)])
    page = browser.get(stack.url + "/dashboard").text
    reasons = re.findall(r"<p>(run \d+)</p>", page)
    assert reasons == [f"run {i}" for i in range(24, 4, -1)]
    older = re.search(r'href="(/dashboard\?before=\d+)#notes-heading"', page)
    assert older
    page = browser.get(stack.url + older.group(1)).text
    assert re.findall(r"<p>(run \d+)</p>", page) == [f"run {i}" for i in range(4, -1, -1)]
    assert "Older notes" not in page
    assert "25 runs counted in all." in page


def test_forms_without_a_csrf_token_change_nothing(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")["id"]
    browser = stack.connect(athlete)
    r = browser.post(stack.url + "/settings", data={"units": "km", "notes": "paused",
                                                    "target": "description"})  # fmt: skip
    assert r.status_code == 400 and "Nothing was changed" in r.text
    r = browser.post(stack.url + "/settings/sessions", data={"on": dt.date.today().isoformat()})
    assert r.status_code == 400
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None and row.units_override is None and row.notes_enabled
        assert session.query(MassageSession).count() == 0


def test_a_runner_can_only_remove_and_export_their_own(stack: Stack) -> None:
    mine, theirs = (stack.sim.create_athlete()["id"] for _ in range(2))
    stack.connect(theirs)
    # A distance no timestamp in the export can spell (an earlier 4321.0 matched microseconds).
    _add_runs(stack, theirs, [(dt.date.today(), 4321.5)])
    with stack.db.session() as session:
        their_session = MassageSession(athlete_id=theirs, on=dt.date.today())
        session.add(their_session)
        session.commit()
        their_session_id = their_session.id
    browser = stack.connect(mine)
    token = csrf_token(browser.get(stack.url + "/settings").text)
    r = browser.post(
        stack.url + f"/settings/sessions/{their_session_id}/remove", data={"csrf_token": token}
    )
    assert r.status_code == 200 and "already gone" in r.text
    with stack.db.session() as session:
        assert session.get(MassageSession, their_session_id) is not None
    exported = browser.get(stack.url + "/account/export.json")
    assert exported.headers["Content-Disposition"].startswith("attachment")
    body = exported.json()
    assert body["runner"]["id"] == mine and body["runs"] == [] and body["massage_sessions"] == []
    assert "4321.5" not in exported.text


def test_a_session_in_the_future_is_refused_next_to_its_date(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    token = csrf_token(browser.get(stack.url + "/settings").text)
    later = (dt.date.today() + dt.timedelta(days=9)).isoformat()
    r = browser.post(stack.url + "/settings/sessions", data={"csrf_token": token, "on": later})
    assert r.status_code == 400
    assert re.search(r'id="on-error">[^<]*once it has happened', r.text)
    assert 'aria-invalid="true" id="on"' in r.text


def test_the_import_progress_answers_in_json(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    state = browser.get(stack.url + "/dashboard/import.json").json()
    assert state["status"] == "done" and state["runs_text"] == "0 runs so far."


def test_an_added_language_is_used_for_browsers_that_ask_for_it(make_stack, tmp_path: Path) -> None:
    catalog = Catalog(locale="de")
    catalog.add("Your running", "Dein Laufen")
    catalog.add("This week", "Diese Woche")
    folder = tmp_path / "translations" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as f:
        write_mo(f, catalog)
    stack: Stack = make_stack(BABEL_TRANSLATION_DIRECTORIES=str(tmp_path / "translations"))
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    page = browser.get(stack.url + "/dashboard", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in page.text and "Dein Laufen" in page.text
    assert "Diese Woche" in page.text and "This month" in page.text  # untranslated: English
    english = browser.get(stack.url + "/dashboard", headers={"Accept-Language": "en-US"}).text
    assert '<html lang="en">' in english and "Your running" in english

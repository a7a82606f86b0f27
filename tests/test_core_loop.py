"""End to end over real HTTP: handshake, connect, a run gets its note, and the edges around it."""

from __future__ import annotations

import datetime as dt

import requests
from sqlalchemy import select

from strava_massage.domain.merge import BLOCK_END, BLOCK_START
from strava_massage.models import Activity, Athlete, Note, Token

from .conftest import VERIFY_TOKEN, Stack


def test_handshake_echoes_challenge_with_the_right_token(make_stack) -> None:
    s = make_stack()
    r = requests.get(
        s.url + "/webhooks/strava/" + s.app.config["WEBHOOK_SECRET"],
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "abc"},
    )
    assert r.status_code == 200
    assert r.json() == {"hub.challenge": "abc"}


def test_handshake_refuses_a_wrong_token(make_stack) -> None:
    s = make_stack()
    r = requests.get(
        s.url + "/webhooks/strava/" + s.app.config["WEBHOOK_SECRET"],
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "abc"},
    )
    assert r.status_code == 403
    assert "abc" not in r.text


def test_connect_stores_athlete_with_encrypted_tokens(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="meters")
    browser = stack.connect(athlete["id"])
    assert browser.last_response.status_code == 200
    assert "Your running" in browser.last_response.text
    with stack.db.session() as session:
        row = session.get(Athlete, athlete["id"])
        token = session.get(Token, athlete["id"])
    assert row is not None and row.units == "km"
    assert token is not None
    # What is stored is ciphertext, not the token Strava issued.
    issued = stack.sim.refresh_count(athlete["id"])
    assert issued == 0
    assert b"." not in token.access_token[:2] and len(token.access_token) > 60


def test_run_gets_one_get_one_put_and_a_note_in_miles(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    run = stack.sim.create_activity(athlete["id"], distance=8046.72, description="Felt good")
    events = stack.wait_idle()
    assert [e.status for e in events] == ["done"]
    path = f"/api/v3/activities/{run['id']}"
    assert stack.sim.count("GET", path) == 1
    assert stack.sim.count("PUT", path) == 1
    description = stack.sim.activity(run["id"])["description"]
    assert description.startswith("Felt good\n\n" + BLOCK_START)
    assert description.endswith(BLOCK_END)
    assert " mi" in description and " km" not in description
    assert stack.sim.activity(run["id"])["name"] == run["name"]  # the title is never written


def test_ride_gets_one_get_and_no_put(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    ride = stack.sim.create_activity(athlete["id"], sport_type="Ride", distance=30000.0)
    events = stack.wait_idle()
    assert events[0].status == "done" and "not a run" in (events[0].outcome or "")
    assert stack.sim.count("GET", f"/api/v3/activities/{ride['id']}") == 1
    assert stack.sim.count("PUT") == 0
    with stack.db.session() as session:
        assert session.scalars(select(Activity)).all() == []


def test_two_runs_in_one_local_week_add_up(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="meters")
    stack.connect(athlete["id"])
    monday = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
    # Late Sunday evening in Los Angeles is already Monday in UTC: it belongs to the week before.
    stack.sim.create_activity(
        athlete["id"],
        distance=5000.0,
        start_date_local=dt.datetime.combine(monday - dt.timedelta(days=1), dt.time(22, 30)),
        timezone="(GMT-08:00) America/Los_Angeles",
    )
    stack.wait_idle()
    stack.sim.create_activity(
        athlete["id"],
        distance=12000.0,
        start_date_local=dt.datetime.combine(monday, dt.time(7, 0)),
        timezone="(GMT-08:00) America/Los_Angeles",
    )
    third = stack.sim.create_activity(
        athlete["id"],
        distance=8000.0,
        start_date_local=dt.datetime.combine(monday + dt.timedelta(days=2), dt.time(7, 0)),
        timezone="(GMT-08:00) America/Los_Angeles",
    )
    stack.wait_idle()
    from strava_massage.domain.ledger import totals

    with stack.db.session() as session:
        row = session.get(Athlete, athlete["id"])
        assert row is not None
        week = totals(session, row, monday + dt.timedelta(days=2)).week_m
    assert week == 20000.0
    assert third["id"] in {a.id for a in _ledger(stack)}


def _ledger(stack: Stack) -> list[Activity]:
    with stack.db.session() as session:
        return list(session.scalars(select(Activity)))


def test_note_rows_record_reason_and_facts(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    run = stack.sim.create_activity(athlete["id"])
    stack.wait_idle()
    with stack.db.session() as session:
        note = session.scalar(select(Note).where(Note.activity_id == run["id"]))
    assert note is not None and note.status == "written"
    assert note.reason and note.fact_ids
    assert note.text in stack.sim.activity(run["id"])["description"]


def test_metric_runner_gets_a_note_in_kilometres(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="meters")
    stack.connect(athlete["id"])
    run = stack.sim.create_activity(athlete["id"], distance=8000.0)
    stack.wait_idle()
    description = stack.sim.activity(run["id"])["description"]
    assert " km" in description
    assert " mi" not in description

"""End to end over real HTTP: handshake, connect, a run gets its note. The worker's decisions for
other events (rides, deletes, units, the ledger's weeks) are tested on fakes in test_decisions."""

from __future__ import annotations

import requests
from sqlalchemy import select

from strava_massage.domain.merge import BLOCK_END, BLOCK_START
from strava_massage.models import Athlete, Note, Token

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
    with stack.db.session() as session:
        note = session.scalar(select(Note).where(Note.activity_id == run["id"]))
    assert note is not None and note.status == "written" and note.text in description

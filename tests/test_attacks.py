"""Forged webhook events, end to end: whatever an attacker posts, nothing is lost, nobody let in.

Strava's events are unsigned. Each case posts what an attacker who knows (or guesses) the
callback URL could post, over real HTTP to the real app, with the worker running against the
Strava simulator, on SQLite and on PostgreSQL + Redis. Every case ends the same way: both
runners' rows are as they were, their Strava descriptions untouched, the attack cost Strava no
more than the table says, and each runner's next run still gets its note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from strava_massage.models import Activity, Athlete, Event, Note, Token
from strava_massage.services.outcomes import OutcomeKind

from .conftest import Stack


@dataclass
class World:
    """Two connected runners with one noted run each, and what a genuine event is answered."""

    stack: Stack
    a: int
    b: int
    run_a: int
    run_b: int
    reference: tuple[int, bytes, str]  # status, body, content type of a known runner's event


def _answer(r: requests.Response) -> tuple[int, bytes, str]:
    """What a caller can see of an answer: status, body and content type."""
    return r.status_code, r.content, r.headers.get("Content-Type", "")


def _event(world: World, owner: int, object_id: int, **changes: Any) -> dict[str, Any]:
    """A well-formed event body, as Strava would send it."""
    sub = world.stack.sim.subscription
    assert sub is not None
    body: dict[str, Any] = {
        "aspect_type": "create",
        "event_time": int(time.time()),
        "object_id": object_id,
        "object_type": "activity",
        "owner_id": owner,
        "subscription_id": sub["id"],
        "updates": {},
    }
    return body | changes


def _post(world: World, body: dict[str, Any], url: str | None = None) -> requests.Response:
    """POST an event to the registered callback URL (or to `url`)."""
    sub = world.stack.sim.subscription
    assert sub is not None
    return requests.post(url or sub["callback_url"], json=body, timeout=10)


@pytest.fixture
def world(stack: Stack) -> World:
    """Runners A and B, connected, each with a run that has its note."""
    a = stack.sim.create_athlete()["id"]
    b = stack.sim.create_athlete()["id"]
    stack.connect(a)
    stack.connect(b)
    run_a = stack.sim.create_activity(a, description="A's own words")["id"]
    run_b = stack.sim.create_activity(b, description="B's own words")["id"]
    stack.wait_idle()
    partial = World(stack, a, b, run_a, run_b, (0, b"", ""))
    # A genuine event of a known runner (a title change): the answer every other must match.
    genuine = _event(partial, a, run_a, aspect_type="update", updates={"title": "Renamed"})
    partial.reference = _answer(_post(partial, genuine))
    stack.wait_idle()
    assert partial.reference[0] == 200
    return partial


# -- the attacks: each posts something and returns the answers it got ------------------------


def forged_deauthorization(world: World) -> list[tuple[int, bytes, str]]:
    """Deauthorize runner A, who has not revoked anything at Strava."""
    body = _event(world, world.a, world.a, object_type="athlete", aspect_type="update")
    body["updates"] = {"authorized": "false"}
    answers = [_answer(_post(world, body))]
    events = world.stack.wait_idle()
    assert events[-1].outcome == OutcomeKind.DEAUTH_NOT_CONFIRMED and events[-1].status == "skipped"
    return answers


def cross_owner_delete(world: World) -> list[tuple[int, bytes, str]]:
    """A delete event naming B's run with A as its owner."""
    answers = [_answer(_post(world, _event(world, world.a, world.run_b, aspect_type="delete")))]
    world.stack.wait_idle()
    return answers


def cross_owner_create(world: World) -> list[tuple[int, bytes, str]]:
    """A create event naming B's run with A as its owner (A's token cannot read it)."""
    answers = [_answer(_post(world, _event(world, world.a, world.run_b)))]
    world.stack.wait_idle()
    return answers


def cross_owner_update(world: World) -> list[tuple[int, bytes, str]]:
    """An update event turning B's run into a ride, with A as its owner."""
    body = _event(world, world.a, world.run_b, aspect_type="update", updates={"type": "Ride"})
    answers = [_answer(_post(world, body))]
    world.stack.wait_idle()
    return answers


def wrong_path(world: World) -> list[tuple[int, bytes, str]]:
    """A's real new run, announced at every path but the secret one: 404, nothing stored."""
    stack = world.stack
    unseen = stack.sim.create_activity(world.a, fire=False)["id"]
    secret = stack.app.config["WEBHOOK_SECRET"]
    paths = [
        "/webhooks/strava",
        "/webhooks/strava/" + secret[:-1],
        "/webhooks/strava/" + secret.upper(),
        f"/webhooks/strava/{secret}/x",
        "/webhooks/" + secret,
    ]
    for path in paths:
        r = _post(world, _event(world, world.a, unseen), stack.url + path)
        assert r.status_code == 404, path
    assert [e.object_id for e in stack.events()].count(unseen) == 0
    assert stack.sim.activity(unseen)["description"] == ""
    return []


def wrong_subscription(world: World) -> list[tuple[int, bytes, str]]:
    """A's real new run, announced for another subscription id."""
    unseen = world.stack.sim.create_activity(world.a, fire=False)["id"]
    answers = [_answer(_post(world, _event(world, world.a, unseen, subscription_id=999_999)))]
    assert unseen not in {e.object_id for e in world.stack.events()}
    return answers


def unknown_athlete(world: World) -> list[tuple[int, bytes, str]]:
    """A run of a Strava athlete who never connected, and an athlete id nobody has."""
    stranger = world.stack.sim.create_athlete()["id"]
    run = world.stack.sim.create_activity(stranger, fire=False)["id"]
    answers = [
        _answer(_post(world, _event(world, stranger, run))),
        _answer(_post(world, _event(world, 987_654_321, 42))),
    ]
    owners = {e.owner_id for e in world.stack.events()}
    assert stranger not in owners and 987_654_321 not in owners
    return answers


def replayed_event(world: World) -> list[tuple[int, bytes, str]]:
    """B's original create, posted again three times: stored once already, no second note."""
    original = next(e for e in world.stack.events() if e.object_id == world.run_b)
    body = _event(world, world.b, world.run_b, event_time=original.event_time)
    answers = [_answer(_post(world, body)) for _ in range(3)]
    world.stack.wait_idle()
    return answers


@dataclass(frozen=True)
class Attack:
    """One row of the table: what is posted and what it may cost at Strava."""

    post: Callable[[World], list[tuple[int, bytes, str]]]
    api_calls: int  # requests to /api/v3 the attack may cost (token refreshes not included)


ATTACKS = {
    "forged deauthorization": Attack(forged_deauthorization, 1),  # GET /athlete with A's token
    "cross-owner delete": Attack(cross_owner_delete, 0),
    "cross-owner create": Attack(cross_owner_create, 1),  # A's GET of B's run: 404
    "cross-owner update": Attack(cross_owner_update, 1),
    "post to a wrong path": Attack(wrong_path, 0),
    "wrong subscription id": Attack(wrong_subscription, 0),
    "unknown athlete": Attack(unknown_athlete, 0),
    "replayed event": Attack(replayed_event, 0),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_leaves_nothing_lost_and_nobody_let_in(world: World, name: str) -> None:
    """Answered like any event, it changes nobody's rows and costs what the table says."""
    attack = ATTACKS[name]
    stack = world.stack
    before = {runner: _snapshot(world, runner) for runner in (world.a, world.b)}
    stack.sim.reset_calls()

    answers = attack.post(world)
    stack.wait_idle()

    assert all(answer == world.reference for answer in answers), (answers, world.reference)
    assert stack.sim.count(path_prefix="/api/v3") <= attack.api_calls
    assert stack.sim.count("PUT") == 0
    assert {runner: _snapshot(world, runner) for runner in before} == before
    _notes_keep_coming(world)


def test_a_genuine_deauthorization_still_deletes_the_runner(world: World) -> None:
    """The control: when Strava has revoked A's token, A's data goes and B's stays."""
    stack = world.stack
    b_before = _snapshot(world, world.b)
    stack.sim.deauthorize_athlete(world.a)  # revokes at Strava, then fires the event
    stack.wait_idle()
    with stack.db.session() as session:
        assert session.get(Athlete, world.a) is None
        for model in (Activity, Note, Token):
            assert not session.scalars(select(model).where(model.athlete_id == world.a)).all()
    assert _snapshot(world, world.b) == b_before


def test_a_genuine_deauthorization_deletes_a_runner_whose_token_is_due(world: World) -> None:
    """The control with A's stored token past its expiry: the refresh is the check."""
    stack = world.stack
    with stack.db.session() as session:
        session.execute(update(Token).where(Token.athlete_id == world.a).values(expires_at=0))
        session.commit()
    stack.sim.reset_calls()
    stack.sim.deauthorize_athlete(world.a)
    stack.wait_idle()
    with stack.db.session() as session:
        assert session.get(Athlete, world.a) is None
    assert (
        stack.sim.count("POST", "/oauth/token") == 1 and stack.sim.count(path_prefix="/api/v3") == 0
    )


def _snapshot(world: World, runner: int) -> dict[str, Any]:
    """Everything about a runner an attack could change: rows here, descriptions at Strava."""
    with world.stack.db.session() as session:
        runs = session.scalars(select(Activity).where(Activity.athlete_id == runner)).all()
        notes = session.scalars(select(Note).where(Note.athlete_id == runner)).all()
        snapshot = {
            "athlete": session.get(Athlete, runner) is not None,
            "token": session.get(Token, runner) is not None,
            "runs": sorted((r.id, r.distance_m, r.sport_type) for r in runs),
            "notes": sorted((n.activity_id, n.status, n.text) for n in notes),
        }
    snapshot["descriptions"] = {
        run_id: world.stack.sim.activity(run_id)["description"] for run_id, *_ in snapshot["runs"]
    }
    return snapshot


def _notes_keep_coming(world: World) -> None:
    """Each runner's next run is counted and gets its note, as before the attack."""
    stack = world.stack
    runs = {runner: stack.sim.create_activity(runner)["id"] for runner in (world.a, world.b)}
    stack.wait_idle()
    with stack.db.session() as session:
        for runner, run in runs.items():
            note = session.scalar(select(Note).where(Note.activity_id == run))
            assert note is not None and note.athlete_id == runner and note.status == "written"
            assert note.text in stack.sim.activity(run)["description"]
        assert not session.scalars(select(Event).where(Event.status == "failed")).all()

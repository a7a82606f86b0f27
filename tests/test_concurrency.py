"""Several workers at once: one runner's events one at a time, no note ever doubled."""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Note
from strava_massage.services.context import Services
from strava_massage.services.outcomes import OutcomeKind
from strava_massage.worker.jobs import (
    AthleteBusy,
    Claimed,
    ClaimLost,
    claim,
    handle,
    keep_claim,
    process_claimed,
    process_event,
    reopen_events,
)

from .conftest import Stack
from .helpers import worker_process


def _activity_of(path: str) -> int:
    return int(path.rsplit("/", 1)[-1])


def test_one_runners_events_are_processed_one_at_a_time(make_stack) -> None:
    stack: Stack = make_stack()
    stack.subscribe()
    stack.start_worker(threads=4)
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    stack.sim.latency = 0.03  # long enough for four threads to overlap, if they could
    runs = [stack.sim.create_activity(athlete["id"]) for _ in range(12)]
    events = stack.wait_idle(timeout=60)
    assert {e.status for e in events} == {"done"}

    # Each run's GET is followed by its own PUT before any other run's GET: never interleaved.
    sequence = [(c.method, _activity_of(c.path)) for c in stack.sim.calls(path_prefix="/api/v3")]
    assert len(sequence) == 2 * len(runs)
    for (m1, a1), (m2, a2) in zip(sequence[::2], sequence[1::2], strict=True):
        assert (m1, m2, a1) == ("GET", "PUT", a2), sequence
    for run in runs:
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def test_two_worker_processes_on_one_queue_never_double_a_note(make_stack, tmp_path: Path) -> None:
    stack: Stack = make_stack(TOKEN_KEYS=Fernet.generate_key().decode())
    stack.subscribe()
    stack.sim.set_rate_limits(short=2000, read_short=1000)  # the quota is not what is tested
    athletes = [stack.sim.create_athlete()["id"] for _ in range(4)]
    for athlete_id in athletes:
        stack.connect(athlete_id)
    stack.sim.latency = 0.01
    runs = [stack.sim.create_activity(a) for _ in range(10) for a in athletes]
    # The same events delivered twice more, so both workers see duplicates in the queue.
    for run in runs[::3]:
        stack.sim.fire_event("activity", run["id"], "create", run["athlete"]["id"], event_time=9)
    workers = [worker_process(stack, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        events = stack.wait_idle(timeout=90)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(timeout=30)
    assert {e.status for e in events} == {"done"}
    for run in runs:
        path = f"/api/v3/activities/{run['id']}"
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
        assert stack.sim.count("PUT", path) == 1, path
    logs = [(tmp_path / f"worker{n}.log").read_text() for n in range(2)]
    # Both processes did real work (otherwise this would test one worker).
    assert all("event processed" in log for log in logs), [log[-500:] for log in logs]


def _keep_claim_now(svc: Services, event: Claimed) -> None:
    """Renew a claim's lease in a transaction of its own."""
    with svc.db.engine.begin() as conn:
        keep_claim(conn, svc, event)


def test_a_job_that_outlived_its_lease_does_not_write(make_stack) -> None:
    stack: Stack = make_stack()
    stack.subscribe()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)  # no worker: the events stay pending for the test to claim
    stack.sim.create_activity(athlete)
    event_id = max(e.id for e in stack.events())
    svc: Services = stack.app.extensions["services"]
    now = time.time()
    first = claim(replace(svc, clock=lambda: now), event_id)
    # Past the lease, another worker claims the same event.
    later = replace(svc, clock=lambda: now + svc.lease_seconds + 1)
    second = claim(later, event_id)
    assert first is not None and second is not None and second.attempts == first.attempts + 1
    with pytest.raises(ClaimLost):
        _keep_claim_now(later, first)
    _keep_claim_now(later, second)  # the newer holder keeps it


def _runner_with_history(make_stack) -> tuple[Stack, int, Services]:
    """A connected runner whose history is imported, and no worker: the test runs the tasks."""
    stack: Stack = make_stack()
    stack.subscribe()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    svc: Services = stack.app.extensions["services"]
    for event in stack.events(backfill=True):
        process_event(svc, event.id)  # the history import
    return stack, athlete, svc


def test_a_runners_other_event_waits_for_the_holder_who_hands_it_on(make_stack) -> None:
    stack, athlete, svc = _runner_with_history(make_stack)
    for _ in range(2):
        stack.sim.create_activity(athlete)
    first_id, second_id = (e.id for e in stack.events())
    first = claim(svc, first_id)
    assert first is not None
    with pytest.raises(AthleteBusy):
        claim(svc, second_id)
    assert process_event(svc, second_id).kind is OutcomeKind.WAITING
    # Finishing, the holder names the runner's next due event: the one that waited.
    outcome, following = process_claimed(svc, first)
    assert outcome.kind is OutcomeKind.NOTE_WRITTEN and following == second_id
    second = claim(svc, second_id)
    assert second is not None
    # A finished event is simply not claimable, whoever holds the runner's other events.
    assert claim(svc, first_id) is None
    assert process_claimed(svc, second)[0].kind is OutcomeKind.NOTE_WRITTEN
    assert {e.status for e in stack.events()} == {"done"}


def test_a_holder_that_lost_its_lease_while_counting_leaves_the_note_to_the_new_one(
    make_stack,
) -> None:
    stack, athlete, svc = _runner_with_history(make_stack)  # no worker: the test plays both
    run = stack.sim.create_activity(athlete)
    (event_id,) = (e.id for e in stack.events())
    now = time.time()
    first = claim(replace(svc, clock=lambda: now), event_id)
    later = replace(svc, clock=lambda: now + svc.lease_seconds + 1)
    second = claim(later, event_id)
    assert first is not None and second is not None
    # The first holder fetches and counts, but its lease is gone before it would write.
    with pytest.raises(ClaimLost):
        handle(later, first)
    path = f"/api/v3/activities/{run['id']}"
    assert stack.sim.count("PUT", path) == 0
    assert process_claimed(later, second)[0].kind is OutcomeKind.NOTE_WRITTEN
    assert stack.sim.count("PUT", path) == 1
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    with stack.db.session() as session:
        notes = session.scalars(select(Note).where(Note.activity_id == run["id"])).all()
    assert len(notes) == 1 and notes[0].status == "written"


def test_the_worker_replaces_a_connection_the_server_dropped(make_stack) -> None:
    """The pool pings a connection before handing it out: one the server ended is replaced."""
    stack, athlete, svc = _runner_with_history(make_stack)
    if stack.db.dialect != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    run = stack.sim.create_activity(athlete)
    (event_id,) = (e.id for e in stack.events())
    with stack.db.engine.connect(), stack.db.engine.connect():
        pass  # two connections left in the pool: the one the drop below runs on, and another
    assert stack.drop_server_connections()  # at least that other pooled connection
    assert process_event(svc, event_id).kind is OutcomeKind.NOTE_WRITTEN
    assert stack.sim.count("PUT", f"/api/v3/activities/{run['id']}") == 1


def test_a_drained_events_own_task_finds_it_done_and_loses_nothing(make_stack) -> None:
    stack, athlete, svc = _runner_with_history(make_stack)
    runs = [stack.sim.create_activity(athlete) for _ in range(2)]
    first, second = (e.id for e in stack.events())
    # The first task drains the runner: the second event is done by it.
    assert process_event(svc, first).kind is OutcomeKind.NOTE_WRITTEN
    assert process_event(svc, second).kind is OutcomeKind.NOT_CLAIMABLE
    # Replayed, the same event goes through the claim again, and writes nothing twice.
    assert reopen_events(svc, [second]) == [second]
    assert process_event(svc, second).kind is OutcomeKind.NOTE_PRESENT
    events = {e.id: e for e in stack.events()}
    assert events[second].status == "done" and events[second].attempts == 1
    for run in runs:
        path = f"/api/v3/activities/{run['id']}"
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
        assert stack.sim.count("PUT", path) == 1, path

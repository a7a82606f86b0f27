"""The worker's decisions, one event at a time, on fakes: what each kind of event writes to the
database and asks of Strava.

Events go in as rows (as the intake stores them) and through `jobs.process_event`, as a queue
task runs them; Strava is tests/fakes.py's FakeStrava, the database SQLite in memory, the clock
stopped. The edges these decisions meet (HTTP, the simulator, the queue, worker processes,
PostgreSQL and Redis) have their own tests: test_core_loop, test_processing, test_faults,
test_crash, test_concurrency.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from strava_massage.domain.ledger import totals
from strava_massage.domain.merge import BLOCK_START, SEPARATOR, make_block
from strava_massage.models import Activity, Athlete, Event, Note, Token
from strava_massage.services.outcomes import OutcomeKind
from strava_massage.strava.budget import Budget
from strava_massage.strava.client import RateLimited, TemporaryFailure, Unauthorized
from strava_massage.worker.jobs import RETRY_MAX_SECONDS, check_idle_runners

from .fakes import World

A, B = 101, 202


def _event(world: World, event_id: int) -> Event:
    event = world.get(Event, event_id)
    assert event is not None
    return event


def _note(world: World, activity_id: int) -> Note:
    (note,) = world.rows(Note, activity_id=activity_id)
    return note


def test_a_new_run_gets_one_note_with_one_get_and_one_put(fake: World) -> None:
    fake.runner(A)
    run, event_id = fake.run(A, distance_m=8000.0, description="Felt good")

    outcome = fake.process(event_id)

    assert outcome.kind == OutcomeKind.NOTE_WRITTEN
    assert fake.strava.methods() == {"get_activity": 1, "update_description": 1}
    event = _event(fake, event_id)
    assert (event.status, event.attempts, event.outcome) == ("done", 1, str(outcome))
    (row,) = fake.rows(Activity)
    assert (row.id, row.athlete_id, row.distance_m) == (run, A, 8000.0)
    note = _note(fake, run)
    assert note.status == "written" and note.reason and note.fact_ids
    assert fake.strava.description(run) == "Felt good" + SEPARATOR + make_block(note.text)
    assert fake.enqueued == [] and fake.outcomes == [outcome]


@pytest.mark.parametrize(("units", "unit", "other"), [("km", " km", " mi"), ("mi", " mi", " km")])
def test_the_note_speaks_the_runners_units(fake: World, units: str, unit: str, other: str) -> None:
    fake.runner(A, units=units)
    run, event_id = fake.run(A, distance_m=8046.72)
    fake.process(event_id)
    assert unit in fake.strava.description(run) and other not in fake.strava.description(run)


def test_an_event_processed_twice_costs_nothing_the_second_time(fake: World) -> None:
    fake.runner(A)
    _, event_id = fake.run(A)
    fake.process(event_id)
    before = list(fake.strava.requests)

    assert fake.process(event_id).kind == OutcomeKind.NOT_CLAIMABLE
    assert fake.strava.requests == before


def test_a_second_create_of_the_same_run_costs_one_get_and_no_put(fake: World) -> None:
    # Strava sends an event again with a new event time: the intake stores it as a new event.
    fake.runner(A)
    run, first = fake.run(A)
    fake.process(first)
    again = fake.event(A, run)

    assert fake.process(again).kind == OutcomeKind.NOTE_PRESENT
    assert fake.strava.methods() == {"get_activity": 2, "update_description": 1}
    assert fake.count(Note) == 1 and fake.count(Activity) == 1
    assert fake.strava.description(run).count(BLOCK_START) == 1
    assert fake.strava.refunds == 1  # the PUT reserved with the GET, given back


def test_a_ride_costs_one_get_and_no_put(fake: World) -> None:
    fake.runner(A)
    _, event_id = fake.run(A, sport_type="Ride", distance_m=30_000.0)

    outcome = fake.process(event_id)

    assert (outcome.kind, outcome.detail) == (OutcomeKind.NOT_A_RUN, "Ride")
    assert fake.strava.methods() == {"get_activity": 1}
    assert fake.strava.refunds == 1
    assert fake.count(Activity) == 0 and fake.count(Note) == 0
    assert _event(fake, event_id).status == "done"


def test_a_title_change_costs_one_get_and_no_put(fake: World) -> None:
    fake.runner(A)
    run, first = fake.run(A)
    fake.process(first)
    renamed = fake.event(A, run, "update", updates={"title": "Renamed run"})

    assert fake.process(renamed).kind == OutcomeKind.NOTE_ALREADY_WRITTEN
    assert fake.strava.methods() == {"get_activity": 2, "update_description": 1}


def test_a_run_that_becomes_a_ride_leaves_the_ledger_and_comes_back_without_a_second_note(
    fake: World,
) -> None:
    fake.runner(A)
    run, first = fake.run(A, distance_m=9000.0)
    fake.process(first)
    today = fake.strava.activities[run].start_date_local.date()

    fake.strava.edit(run, sport_type="Ride")
    ride = fake.process(fake.event(A, run, "update", updates={"type": "Ride"}))
    assert (ride.kind, ride.detail) == (OutcomeKind.NOT_A_RUN, "Ride, left the ledger")
    assert _week_m(fake, A, today) == 0.0

    fake.strava.edit(run, sport_type="Run")
    back = fake.process(fake.event(A, run, "update", updates={"type": "Run"}))
    assert back.kind == OutcomeKind.NOTE_ALREADY_WRITTEN  # written once already: no PUT
    assert _week_m(fake, A, today) == 9000.0
    assert fake.strava.count("update_description") == 1
    assert fake.strava.description(run).count(BLOCK_START) == 1


def test_a_ride_that_becomes_a_run_gets_its_note(fake: World) -> None:
    fake.runner(A)
    ride, first = fake.run(A, sport_type="Ride")
    fake.process(first)
    fake.strava.edit(ride, sport_type="TrailRun")

    outcome = fake.process(fake.event(A, ride, "update", updates={"type": "TrailRun"}))

    assert outcome.kind == OutcomeKind.NOTE_WRITTEN
    assert fake.strava.description(ride).count(BLOCK_START) == 1
    assert _note(fake, ride).status == "written"


def test_two_runs_in_one_local_week_add_up(fake: World) -> None:
    # Late Sunday evening in Los Angeles is already Monday in UTC: it belongs to the week before.
    fake.runner(A)
    monday = dt.date(2026, 6, 8)
    la = "(GMT-08:00) America/Los_Angeles"
    for day, hour, metres in ((-1, 22, 5000.0), (0, 7, 12_000.0), (2, 7, 8000.0)):
        start = dt.datetime.combine(monday + dt.timedelta(days=day), dt.time(hour, 30))
        fake.process(fake.run(A, distance_m=metres, start=start, timezone=la)[1])

    assert _week_m(fake, A, monday + dt.timedelta(days=2)) == 20_000.0
    athlete = fake.get(Athlete, A)  # the runner's zone, from their runs
    assert athlete is not None and athlete.timezone == "America/Los_Angeles"


def _week_m(world: World, athlete_id: int, day: dt.date) -> float:
    with world.db.session() as session:
        athlete = session.get(Athlete, athlete_id)
        assert athlete is not None
        return totals(session, athlete, day).week_m


def test_paused_notes_count_the_run_without_a_put(fake: World) -> None:
    fake.runner(A, notes_enabled=False)
    run, event_id = fake.run(A, description="Easy")

    assert fake.process(event_id).kind == OutcomeKind.NOTES_PAUSED
    assert fake.strava.methods() == {"get_activity": 1}
    assert [a.id for a in fake.rows(Activity)] == [run]
    assert fake.count(Note) == 0
    assert fake.strava.description(run) == "Easy"


def test_the_runners_text_stays_outside_the_note_block(fake: World) -> None:
    fake.runner(A)
    run, first = fake.run(A, description="Felt good.\nNew shoes.")
    fake.process(first)
    block = make_block(_note(fake, run).text)
    assert fake.strava.description(run) == "Felt good.\nNew shoes." + SEPARATOR + block

    # The runner writes around the block: a delivery again finds it in place, and writes nothing.
    edited = "Felt great, actually." + SEPARATOR + block + "\n\nPS: hills"
    fake.strava.edit(run, description=edited)
    fake.process(fake.event(A, run))
    assert fake.strava.description(run) == edited
    assert fake.strava.count("update_description") == 1

    # The runner deleted the block: the next delivery puts the same block back, once, after
    # their text, which stays as they wrote it.
    fake.strava.edit(run, description="Felt great, actually.")
    fake.process(fake.event(A, run))
    assert fake.strava.description(run) == "Felt great, actually." + SEPARATOR + block
    assert fake.count(Note) == 1


def test_a_delete_removes_only_the_owners_row(fake: World) -> None:
    fake.runner(A)
    fake.runner(B)
    run_a, run_b = fake.run(A)[0], fake.run(B)[0]
    for event in fake.rows(Event):
        fake.process(event.id)
    calls = len(fake.strava.requests)

    # A delete naming B's run with A as its owner (a forged event) changes nothing.
    forged = fake.process(fake.event(A, run_b, "delete"))
    assert (forged.kind, forged.detail) == (OutcomeKind.ACTIVITY_DELETED, "")
    assert {a.id for a in fake.rows(Activity)} == {run_a, run_b}

    genuine = fake.process(fake.event(A, run_a, "delete"))
    assert (genuine.kind, genuine.detail) == (OutcomeKind.ACTIVITY_DELETED, "removed from ledger")
    assert [a.id for a in fake.rows(Activity)] == [run_b]
    assert [n.activity_id for n in fake.rows(Note)] == [run_b]
    assert len(fake.strava.requests) == calls  # a delete costs no Strava call


def test_a_create_naming_another_runners_activity_changes_nothing(fake: World) -> None:
    fake.runner(A)
    fake.runner(B)
    run_b = fake.strava.upload(B, description="B's own words")

    outcome = fake.process(fake.event(A, run_b))

    assert outcome.kind == OutcomeKind.OTHER_ATHLETES
    assert fake.strava.methods() == {"get_activity": 1}  # read with A's token: no PUT
    assert fake.strava.refunds == 1
    assert fake.count(Activity) == 0 and fake.count(Note) == 0
    assert fake.strava.description(run_b) == "B's own words"


def test_a_run_gone_from_strava_leaves_the_ledger(fake: World) -> None:
    fake.runner(A)
    run, first = fake.run(A)
    fake.process(first)
    del fake.strava.activities[run]

    outcome = fake.process(fake.event(A, run, "update", updates={"title": "x"}))

    assert outcome.kind == OutcomeKind.ACTIVITY_NOT_FOUND
    assert fake.count(Activity) == 0


def _deauthorization(world: World, athlete_id: int) -> int:
    return world.event(
        athlete_id, athlete_id, "update", object_type="athlete", updates={"authorized": "false"}
    )


def test_an_unconfirmed_deauthorization_deletes_nothing(fake: World) -> None:
    # Events are unsigned: A has not revoked anything at Strava, so A's token still works.
    fake.runner(A)
    fake.process(fake.run(A)[1])

    outcome = fake.process(_deauthorization(fake, A))

    assert outcome.kind == OutcomeKind.DEAUTH_NOT_CONFIRMED
    assert fake.strava.count("get_athlete") == 1  # the one question that proves it
    assert fake.get(Athlete, A) is not None and fake.get(Token, A) is not None
    assert fake.count(Activity) == 1 and fake.count(Note) == 1


def test_a_confirmed_deauthorization_deletes_everything_of_that_runner(fake: World) -> None:
    fake.runner(A)
    fake.runner(B)
    late_run = fake.strava.upload(A)
    for athlete_id in (A, B):
        fake.process(fake.run(athlete_id)[1])
    fake.strava.revoke_access(A)
    late = fake.event(A, late_run)  # stored just before the deauthorization

    assert fake.process(_deauthorization(fake, A)).kind == OutcomeKind.DEAUTHORIZED

    assert {a.athlete_id for a in fake.rows(Activity)} == {B}
    assert {n.athlete_id for n in fake.rows(Note)} == {B}
    assert {t.athlete_id for t in fake.rows(Token)} == {B}
    assert fake.get(Athlete, A) is None and fake.get(Athlete, B) is not None
    assert {e.owner_id for e in fake.rows(Event)} == {B}
    # The event stored before is gone with the rest; a task still queued for it does nothing.
    calls = len(fake.strava.requests)
    assert fake.process(late).kind == OutcomeKind.NOT_CLAIMABLE
    assert len(fake.strava.requests) == calls


def test_an_event_of_a_runner_who_just_left_costs_no_call_and_is_not_kept(fake: World) -> None:
    gone = fake.event(A, 12345)  # stored in the instant before A's data was deleted
    assert fake.process(gone).kind == OutcomeKind.UNKNOWN_ATHLETE
    assert fake.strava.requests == [] and fake.count(Event) == 0


def test_a_rate_limited_get_defers_the_event_to_the_windows_reset(fake: World) -> None:
    fake.runner(A)
    fake.strava.fail("get_activity", RateLimited(300))  # Strava answers 429
    run, event_id = fake.run(A)

    outcome = fake.process(event_id)

    assert (outcome.kind, outcome.detail) == (OutcomeKind.DEFERRED, "rate limit")
    event = _event(fake, event_id)
    assert (event.status, event.outcome) == ("pending", "deferred (rate limit)")
    assert event.due_at.replace(tzinfo=dt.UTC) == fake.clock.at(300)
    assert fake.enqueued == [(event_id, 300)]
    assert fake.count(Activity) == 0

    fake.clock.advance(299)  # not yet due: a task run early claims nothing, calls nothing
    assert fake.process(event_id).kind == OutcomeKind.NOT_CLAIMABLE
    assert fake.strava.count("get_activity") == 1
    fake.clock.advance(1)
    assert fake.process(event_id).kind == OutcomeKind.NOTE_WRITTEN
    assert fake.strava.description(run).count(BLOCK_START) == 1


def test_a_spent_budget_defers_before_calling_strava(fake: World) -> None:
    # Two requests a window: the first run's GET and PUT spend it; the second run waits for
    # the next window without spending a request on a 429.
    fake.strava.budget = Budget(fake.db, 900, limits=(2, 1000), clock=fake.clock)
    fake.runner(A)
    first_run, first = fake.run(A)
    second_run, second = fake.run(A)

    assert fake.process(first).kind == OutcomeKind.NOTE_WRITTEN  # and the drain takes the second
    event = _event(fake, second)
    assert (event.status, event.outcome) == ("pending", "deferred (rate limit)")
    assert event.due_at.replace(tzinfo=dt.UTC) == fake.clock.at(900)  # the next window
    assert fake.strava.count("get_activity") == 1  # the second run was never fetched

    fake.clock.advance(900)
    assert fake.process(second).kind == OutcomeKind.NOTE_WRITTEN
    assert [fake.strava.count(activity_id=r) for r in (first_run, second_run)] == [2, 2]


def test_a_5xx_is_retried_after_a_backoff_and_the_retry_writes_the_note(fake: World) -> None:
    fake.runner(A)
    fake.strava.fail("update_description", TemporaryFailure("Strava answered 503"))
    run, event_id = fake.run(A)

    assert fake.process(event_id).kind == OutcomeKind.RETRYING
    ((queued, delay),) = fake.enqueued
    assert queued == event_id and 4.0 <= delay <= 6.0  # the first back-off: 5 s, jittered
    fake.clock.advance(math.ceil(delay))  # the due time, to the microsecond, is past

    assert fake.process(event_id).kind == OutcomeKind.NOTE_WRITTEN
    assert _event(fake, event_id).attempts == 2
    assert fake.count(Note) == 1  # the note decided first is the one written
    assert fake.strava.description(run).count(BLOCK_START) == 1


def test_a_5xx_that_lasts_ends_as_a_dead_letter_after_the_last_attempt(fake: World) -> None:
    fake.runner(A)
    attempts = fake.svc.max_attempts
    fake.strava.fail("get_activity", *[TemporaryFailure("Strava answered 503")] * attempts)
    run, event_id = fake.run(A)

    for attempt in range(1, attempts):
        assert fake.process(event_id).kind == OutcomeKind.RETRYING
        event = _event(fake, event_id)
        assert (event.status, event.attempts) == ("pending", attempt)
        delay = fake.enqueued[-1][1]
        base = min(fake.svc.retry_base_seconds * 2 ** (attempt - 1), RETRY_MAX_SECONDS)
        assert 0.8 * base <= delay <= 1.2 * base  # doubled each time, jittered
        fake.clock.advance(math.ceil(delay))  # the due time, to the microsecond, is past

    assert fake.process(event_id).kind == OutcomeKind.FAILED
    event = _event(fake, event_id)
    assert (event.status, event.attempts) == ("failed", attempts)
    assert event.outcome == "failed (TemporaryFailure: Strava answered 503)"
    assert len(fake.enqueued) == attempts - 1  # a dead letter is queued no more
    assert fake.strava.count("get_activity") == attempts
    assert BLOCK_START not in fake.strava.description(run)


def test_a_put_refused_after_a_good_get_ends_the_event_without_a_retry(fake: World) -> None:
    fake.runner(A)
    fake.strava.fail("update_description", Unauthorized("Strava answered 401"))
    _, event_id = fake.run(A)

    outcome = fake.process(event_id)

    assert outcome.kind == OutcomeKind.LEFT_ALONE and "Unauthorized" in outcome.detail
    assert _event(fake, event_id).status == "skipped"
    assert fake.enqueued == [] and fake.strava.count("update_description") == 1


def test_an_expired_token_is_refreshed_and_the_rotated_one_used_next_time(fake: World) -> None:
    # The fake Strava kills a refresh token once used: a second refresh that presented the
    # first token again would be refused (and the runner deleted as revoked).
    fake.runner(A, token_expires_in=60)  # within the refresh margin
    fake.process(fake.run(A)[1])
    fake.clock.advance(6 * 3600)  # the new token is due too, six hours on
    second, event_id = fake.run(A)

    assert fake.process(event_id).kind == OutcomeKind.NOTE_WRITTEN
    assert [c.error for c in fake.strava.requests if c.method == "refresh"] == [None, None]
    assert fake.strava.description(second).count(BLOCK_START) == 1
    token = fake.get(Token, A)
    assert token is not None and token.expires_at == int(fake.clock()) + 6 * 3600


def test_one_runners_flood_waits_for_its_fair_share_while_another_runner_waits(
    fake: World,
) -> None:
    # 100 requests a window. Alone, A may use it all; once half of it is gone, A (past a
    # quarter of it) waits while B, within their share, has an event waiting.
    budget = Budget(fake.db, 900, limits=(100, 1000), clock=fake.clock)
    fake.strava.budget = budget
    fake.runner(A)
    fake.runner(B)
    flood = [fake.run(A) for _ in range(30)]
    b_run, b_event = fake.run(B)

    fake.process(flood[0][1])  # A's task drains A's due events, one after another

    events = {e.id: e for e in fake.rows(Event)}
    done = [run for run, event in flood if events[event].status == "done"]
    deferred = [events[event] for _, event in flood if events[event].status == "pending"]
    assert len(done) == 25  # a quarter of the window is 25 runs' GET and PUT: then half is gone
    assert {(e.outcome, e.due_at.replace(tzinfo=dt.UTC)) for e in deferred} == {
        ("deferred (fair share)", fake.clock.at(60))  # A looks again a minute later
    }
    assert len(deferred) == 5 and budget.runner_calls(A) == 50

    assert fake.process(b_event).kind == OutcomeKind.NOTE_WRITTEN  # B goes first
    assert fake.strava.description(b_run).count(BLOCK_START) == 1

    fake.clock.advance(60)  # nobody else waits now: what is left of the window is A's again
    fake.process(deferred[0].id)
    assert {e.status for e in fake.rows(Event)} == {"done"}
    assert budget.runner_calls(A) == 60 and budget.remaining()["short"] == 38


def test_quiet_runners_are_asked_about_once_and_the_revoked_deleted(fake: World) -> None:
    quiet, revoked, busy, new = 1, 2, 3, 4
    for athlete_id in (quiet, revoked, busy):
        fake.runner(athlete_id, connected_days_ago=40)
    fake.runner(new, connected_days_ago=2)
    fake.event(busy, 777, received_ago=5 * 86400)  # heard of five days ago
    fake.strava.revoke_access(revoked)

    assert check_idle_runners(fake.svc, idle_days=30) == [quiet, revoked]
    checks = [e for e in fake.rows(Event) if e.aspect_type == "check"]
    assert [e.owner_id for e in checks] == [quiet, revoked]
    assert fake.enqueued == [(e.id, 0) for e in checks]
    assert check_idle_runners(fake.svc, idle_days=30) == []  # a check proves them recent

    assert fake.process(checks[0].id).kind == OutcomeKind.ACCESS_CONFIRMED
    assert fake.process(checks[1].id).kind == OutcomeKind.ACCESS_REVOKED
    assert {a.id for a in fake.rows(Athlete)} == {quiet, busy, new}
    assert fake.strava.methods() == {"get_athlete": 2}

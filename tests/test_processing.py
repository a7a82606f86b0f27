"""The worker's job through the simulator: duplicates, updates, deletes, tokens, limits."""

from __future__ import annotations

import datetime as dt
import threading
import time

import requests
from sqlalchemy import func, select

from strava_massage.domain.ledger import totals
from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Activity, Athlete, Event, Note, Token

from .conftest import Stack


def _connected(stack: Stack, units: str = "feet") -> int:
    athlete = stack.sim.create_athlete(measurement_preference=units)  # type: ignore[arg-type]
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    return int(athlete["id"])


def _week_total(stack: Stack, athlete_id: int, day: dt.date) -> float:
    with stack.db.session() as session:
        athlete = session.get(Athlete, athlete_id)
        assert athlete is not None
        return totals(session, athlete, day).week_m


def _rows(stack: Stack, model: type) -> int:
    with stack.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_same_event_three_times_costs_one_get_and_one_put(stack: Stack) -> None:
    athlete_id = _connected(stack)
    run = stack.sim.create_activity(athlete_id, fire=False)
    for _ in range(3):
        assert stack.sim.fire_event(
            "activity", run["id"], "create", athlete_id, event_time=1_700_000_000
        ) == [200]
    stack.wait_idle()
    assert stack.sim.count("GET", f"/api/v3/activities/{run['id']}") == 1
    assert stack.sim.count("PUT", f"/api/v3/activities/{run['id']}") == 1
    assert len(stack.events()) == 1
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def test_same_event_delivered_concurrently_costs_one_get_and_one_put(stack: Stack) -> None:
    athlete_id = _connected(stack)
    run = stack.sim.create_activity(athlete_id, fire=False)
    statuses: list[list[int]] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        statuses.append(
            stack.sim.fire_event(
                "activity", run["id"], "create", athlete_id, event_time=1_700_000_001
            )
        )

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.wait_idle()
    assert statuses == [[200]] * 8
    assert len(stack.events()) == 1
    assert stack.sim.count("GET", f"/api/v3/activities/{run['id']}") == 1
    assert stack.sim.count("PUT", f"/api/v3/activities/{run['id']}") == 1


def test_delete_takes_the_run_out_of_the_totals_without_a_strava_call(stack: Stack) -> None:
    athlete_id = _connected(stack)
    today = dt.date.today()
    keep = stack.sim.create_activity(athlete_id, distance=5000.0)
    gone = stack.sim.create_activity(athlete_id, distance=7000.0)
    stack.wait_idle()
    assert _week_total(stack, athlete_id, today) == 12000.0
    stack.sim.reset_calls()
    stack.sim.delete_activity(gone["id"])
    stack.wait_idle()
    assert _week_total(stack, athlete_id, today) == 5000.0
    assert stack.sim.count(path_prefix="/api/v3") == 0
    assert keep["id"] in {a for a in _activity_ids(stack)}


def _activity_ids(stack: Stack) -> set[int]:
    with stack.db.session() as session:
        return set(session.scalars(select(Activity.id)))


def test_run_that_becomes_a_ride_leaves_the_ledger_and_back_again(stack: Stack) -> None:
    athlete_id = _connected(stack)
    today = dt.date.today()
    run = stack.sim.create_activity(athlete_id, distance=9000.0)
    stack.wait_idle()
    stack.sim.update_activity(run["id"], sport_type="Ride")
    stack.wait_idle()
    assert _week_total(stack, athlete_id, today) == 0.0
    stack.sim.reset_calls()
    stack.sim.update_activity(run["id"], sport_type="Run")
    stack.wait_idle()
    assert _week_total(stack, athlete_id, today) == 9000.0
    # The note was written once already; the type change back does not write it again.
    assert stack.sim.count("PUT") == 0
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def test_title_change_costs_one_get_and_no_put(stack: Stack) -> None:
    athlete_id = _connected(stack)
    run = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    stack.sim.reset_calls()
    stack.sim.update_activity(run["id"], name="Renamed run")
    stack.wait_idle()
    assert stack.sim.count("GET") == 1 and stack.sim.count("PUT") == 0


def test_ride_that_becomes_a_run_gets_its_note(stack: Stack) -> None:
    athlete_id = _connected(stack)
    ride = stack.sim.create_activity(athlete_id, sport_type="Ride")
    stack.wait_idle()
    stack.sim.update_activity(ride["id"], sport_type="TrailRun")
    stack.wait_idle()
    assert stack.sim.activity(ride["id"])["description"].count(BLOCK_START) == 1


def test_deauthorization_deletes_everything_and_later_events_cost_nothing(stack: Stack) -> None:
    athlete_id = _connected(stack)
    other_id = _connected(stack)
    stack.sim.create_activity(athlete_id)
    stack.sim.create_activity(other_id)
    stack.wait_idle()
    stack.sim.deauthorize_athlete(athlete_id)
    stack.wait_idle()
    with stack.db.session() as session:
        for model in (Activity, Note, Token):
            owners = set(session.scalars(select(model.athlete_id)))
            assert athlete_id not in owners and other_id in owners
        assert session.get(Athlete, athlete_id) is None
        assert athlete_id not in set(session.scalars(select(Event.owner_id)))
    stack.sim.reset_calls()
    late = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    assert stack.sim.count(path_prefix="/api/v3") == 0
    assert stack.sim.count("POST", "/oauth/token") == 0
    assert late["description"] == stack.sim.activity(late["id"])["description"]


def test_expired_token_is_refreshed_and_the_rotation_is_used_next_time(stack: Stack) -> None:
    athlete_id = _connected(stack)
    stack.sim.expire_tokens(athlete_id)
    with stack.db.session() as session:
        session.get(Token, athlete_id).expires_at = int(time.time()) - 10  # type: ignore[union-attr]
        session.commit()
    first = stack.sim.create_activity(athlete_id)
    stack.wait_idle()
    assert stack.sim.refresh_count(athlete_id) == 1
    assert BLOCK_START in stack.sim.activity(first["id"])["description"]
    # Again: the second refresh must present the rotated token (the first is dead by now).
    stack.sim.expire_tokens(athlete_id)
    with stack.db.session() as session:
        session.get(Token, athlete_id).expires_at = int(time.time()) - 10  # type: ignore[union-attr]
        session.commit()
    second = stack.sim.create_activity(athlete_id)
    events = stack.wait_idle()
    assert stack.sim.refresh_count(athlete_id) == 2
    assert all(e.status == "done" for e in events)
    assert BLOCK_START in stack.sim.activity(second["id"])["description"]
    refreshes = stack.sim.calls("POST", "/oauth/token")
    assert [c.status for c in refreshes][-2:] == [200, 200]


def test_a_429_defers_the_job_and_it_completes_in_the_next_window(make_stack) -> None:
    stack = make_stack(RATE_WINDOW_SECONDS=2)
    stack.subscribe()
    stack.start_worker()
    stack.sim.set_rate_limits(window_seconds=2)
    athlete_id = _connected(stack)
    stack.sim.fail_next(1, status=429)
    run = stack.sim.create_activity(athlete_id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        statuses = [e.outcome for e in stack.events()]
        if statuses and "deferred" in (statuses[0] or ""):
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"the job was not deferred: {statuses}")
    events = stack.wait_idle(timeout=15)
    assert [e.status for e in events] == ["done"]
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    assert [c.status for c in stack.sim.calls("GET")] == [429, 200]


def test_spent_budget_defers_before_calling_strava(make_stack) -> None:
    stack = make_stack(RATE_WINDOW_SECONDS=3)
    stack.subscribe()
    stack.start_worker(threads=1)
    athlete_id = _connected(stack)
    stack.sim.set_rate_limits(read_short=2, window_seconds=3)
    # Start at the top of a window: the first run's GET and PUT spend it, so the second
    # run must wait for the next window without trying (and without a 429).
    time.sleep(3 - time.time() % 3)
    runs = [stack.sim.create_activity(athlete_id) for _ in range(2)]
    events = stack.wait_idle(timeout=15)
    assert [e.status for e in events] == ["done", "done"]
    for run in runs:
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    assert [c.status for c in stack.sim.calls(path_prefix="/api/v3")] == [200] * 4
    # Two windows: the second run waited for the reset rather than spending a request on a 429.
    assert len({int(c.time // 3) for c in stack.sim.calls(path_prefix="/api/v3")}) == 2


def test_unknown_owner_is_answered_and_stores_nothing(stack: Stack) -> None:
    stranger = stack.sim.create_athlete()
    stack.sim.reset_calls()
    stack.sim.create_activity(stranger["id"])
    assert len(stack.events()) == 0
    assert stack.sim.count(path_prefix="/api/v3") == 0


def test_healthz_reports_database_and_queue(stack: Stack) -> None:
    r = requests.get(stack.url + "/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok" and r.json()["queue"] == "ok"


def test_put_refused_after_a_good_get_ends_the_event_without_looping(stack: Stack) -> None:
    athlete_id = _connected(stack)
    stack.sim.fail_next(1, status=401, method="PUT")
    run = stack.sim.create_activity(athlete_id)
    events = stack.wait_idle()
    assert [e.status for e in events] == ["skipped"]
    assert "Unauthorized" in (events[0].outcome or "")
    assert stack.sim.count("PUT", f"/api/v3/activities/{run['id']}") == 1


def test_strava_500s_are_retried_with_backoff_then_succeed(make_stack) -> None:
    stack = make_stack()
    stack.subscribe()
    stack.start_worker()
    athlete_id = _connected(stack)
    stack.sim.fail_next(1, status=503, method="PUT")
    run = stack.sim.create_activity(athlete_id)
    events = stack.wait_idle(timeout=30)
    assert [e.status for e in events] == ["done"]
    assert events[0].attempts == 2
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    assert [c.status for c in stack.sim.calls("PUT")] == [503, 200]

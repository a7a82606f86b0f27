"""The worker's job through the simulator, at its edges: concurrent deliveries over HTTP, a real
429, the health check. Its decisions (updates, deletes, tokens, retries, the budget) are
tested on fakes in test_decisions."""

from __future__ import annotations

import threading
import time

import requests

from strava_massage.domain.merge import BLOCK_START

from .conftest import Stack


def _connected(stack: Stack, units: str = "feet") -> int:
    athlete = stack.sim.create_athlete(measurement_preference=units)  # type: ignore[arg-type]
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    return int(athlete["id"])


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


def test_healthz_reports_database_and_queue(stack: Stack) -> None:
    r = requests.get(stack.url + "/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok" and r.json()["queue"] == "ok"

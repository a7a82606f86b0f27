"""Connecting runners while another runner's history import writes (SQLite's single writer)."""

from __future__ import annotations

from .conftest import Stack


def test_runners_connect_back_to_back_while_a_history_import_runs(make_stack) -> None:
    stack: Stack = make_stack()
    stack.subscribe()
    stack.start_worker()
    first, *others = (stack.sim.create_athlete()["id"] for _ in range(3))
    for _ in range(150):
        stack.sim.create_activity(first)
    stack.sim.latency = 0.3  # a slow Strava: the import's calls take a while
    answers = []
    for athlete in (first, *others):
        _, response = stack.sim.connect_via(stack.url, athlete)
        answers.append(response.status_code)
    assert answers == [200, 200, 200]
    stack.sim.latency = 0.0
    events = stack.wait_idle(timeout=60)
    assert all(e.status == "done" for e in events)

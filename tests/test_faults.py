"""Faults injected through the simulator over real HTTP: a small quota, errors, slow answers."""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from strava_massage.domain.merge import BLOCK_START

from .conftest import Backend, Stack

WINDOW = 8  # seconds: Strava's 15 minutes, shortened by RATE_WINDOW_SECONDS (room for a loaded CI)
QUOTA = 100  # non-upload requests per window


def _fire_all(stack: Stack, runs: list[dict[str, object]]) -> None:
    """Deliver one create event per run, starting at the top of a rate window."""
    time.sleep(WINDOW - time.time() % WINDOW)
    for n, run in enumerate(runs):
        owner = run["athlete"]["id"]  # type: ignore[index]
        stack.sim.fire_event("activity", int(str(run["id"])), "create", owner, event_time=n + 1)


def test_a_burst_of_120_runs_fits_a_quota_of_100_in_the_fewest_windows(make_stack) -> None:
    stack: Stack = make_stack(RATE_WINDOW_SECONDS=WINDOW)
    stack.subscribe()
    stack.sim.set_rate_limits(
        short=2 * QUOTA, read_short=QUOTA, daily=100_000, read_daily=100_000, window_seconds=WINDOW
    )
    stack.start_worker(threads=4)
    # Twelve runners, as after a Sunday morning: one runner's events go one at a time.
    athletes = [stack.sim.create_athlete()["id"] for _ in range(12)]
    for athlete_id in athletes:
        stack.connect(athlete_id)
    # 240 calls: two full windows and part of a third prove the burst waits for each window and
    # fills it, without a 429, as well as six windows did (each window is 8 s of the test).
    runs = [stack.sim.create_activity(a, fire=False) for _ in range(10) for a in athletes]
    stack.sim.reset_calls()
    _fire_all(stack, runs)
    events = stack.wait_idle(timeout=180)

    calls = stack.sim.calls(path_prefix="/api/v3")
    windows_used = len({int(c.time // WINDOW) for c in calls})
    minimum = math.ceil(len(calls) / QUOTA)
    per_window = sorted(Counter(int(c.time // WINDOW) for c in calls).items())
    print("calls per window:", [n for _, n in per_window], f"start offsets: {_offsets(calls)}")
    print(f"burst: {len(calls)} calls in {windows_used} windows (minimum {minimum}), "
          f"429s {sum(c.status == 429 for c in calls)}")  # fmt: skip
    assert [c.status for c in calls if c.status != 200] == []  # not one 429
    assert len(calls) == 2 * len(runs)  # one GET and one PUT a run, nothing repeated
    assert windows_used == minimum == 3
    assert len(events) == len(runs) == 120  # nothing lost
    assert {e.status for e in events} == {"done"}
    for run in runs:
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def _runs_with_faults(stack: Stack, count: int) -> tuple[int, list[dict[str, object]]]:
    """Connect a runner, upload `count` runs while faults are on; returns (athlete, runs)."""
    stack.subscribe()
    stack.start_worker(threads=4)
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    stack.sim.reset_calls()
    return athlete["id"], [stack.sim.create_activity(athlete["id"]) for _ in range(count)]


@pytest.mark.parametrize("mode", ["500", "timeout"])
def test_strava_failing_a_fifth_of_calls_still_ends_with_one_note_per_run(
    make_stack, backend: Backend, mode: str
) -> None:
    if mode == "timeout" and backend.name != "sqlite":
        # A timeout is Strava's side, the same retry as a 500 once the client has given up:
        # PostgreSQL + Redis run the 500s (the retries through their queue), SQLite both.
        pytest.skip("the timeouts run on the embedded default; the 500s here")
    stack: Stack = make_stack(RETRY_BASE_SECONDS=0.2, STRAVA_TIMEOUT_SECONDS=0.5, MAX_ATTEMPTS=12)
    stack.sim.timeout_delay = 1.0  # longer than the service waits
    stack.sim.set_rate_limits(short=2000, read_short=1000)  # the quota is not what is tested
    stack.sim.fail_fraction(0.2, mode=mode, seed=11)  # type: ignore[arg-type]
    # 20 runs: the seeded faults hit 11 or 12 of some 55 calls, GETs and PUTs both: each is
    # one run's retry, so the guarantee per run is proven as it was by 40, in half the time.
    _, runs = _runs_with_faults(stack, 20)
    events = stack.wait_idle(timeout=120)

    calls = stack.sim.calls(path_prefix="/api/v3")
    failed = [c for c in calls if c.status >= 500]
    print(f"faults ({mode}): {len(failed)} of {len(calls)} calls failed")
    assert len(failed) >= 5  # the faults really happened
    assert {e.status for e in events} == {"done"} and len(events) == 20
    for run in runs:
        path = f"/api/v3/activities/{run['id']}"
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
        # Exactly one PUT got through for each run; the failed ones changed nothing.
        assert sum(c.status == 200 for c in stack.sim.calls("PUT", path)) == 1


def test_a_call_that_keeps_failing_ends_as_a_dead_letter_and_can_be_replayed(make_stack) -> None:
    stack: Stack = make_stack(RETRY_BASE_SECONDS=0.1, MAX_ATTEMPTS=3)
    athlete_id, _ = _runs_with_faults(stack, 0)
    stack.sim.fail_next(3, status=503, method="GET")
    run = stack.sim.create_activity(athlete_id)
    (event,) = stack.wait_idle(timeout=30)
    assert event.status == "failed" and "503" in (event.outcome or "")
    assert event.attempts == 3
    assert "Legwork" not in stack.sim.activity(run["id"])["description"]
    cli = stack.app.test_cli_runner()
    listed = cli.invoke(args=["events", "--failed"])
    assert listed.exit_code == 0 and f"{event.id:>6}  failed" in listed.output

    # Strava is healthy again: replaying the dead letter writes the note, once.
    replayed = cli.invoke(args=["events", "replay", "--failed"])
    assert replayed.exit_code == 0, replayed.output
    assert f"1 event(s) queued again: {event.id}" in replayed.output
    (event,) = stack.wait_idle(timeout=30)
    assert event.status == "done"
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    # Replaying a finished event again is harmless: one GET, no second PUT.
    assert cli.invoke(args=["events", "replay", str(event.id)]).exit_code == 0
    stack.wait_idle(timeout=30)
    assert stack.sim.count("PUT", f"/api/v3/activities/{run['id']}") == 1
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    # Unknown ids are named, and the command says it failed.
    missing = cli.invoke(args=["events", "replay", "999999"])
    assert missing.exit_code == 1 and "999999" in missing.output


def _offsets(calls: list) -> list[float]:
    """Seconds into its window of each window's first call."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for c in calls:
        first.setdefault(int(c.time // WINDOW), c.time % WINDOW)
        last[int(c.time // WINDOW)] = c.time % WINDOW
    return [(round(v, 2), round(last[k], 2)) for k, v in sorted(first.items())]


def test_when_the_budget_runs_short_runs_go_before_likely_non_runs(make_stack) -> None:
    # 20 requests a window, a window long enough that it never resets during the test.
    stack: Stack = make_stack(STRAVA_RATE_LIMITS="20,1000")
    stack.subscribe()
    stack.sim.set_rate_limits(read_short=20, short=40)
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)  # the history import: one call (the code exchange is OAuth)
    rides = [stack.sim.create_activity(athlete, sport_type="Ride", fire=False) for _ in range(2)]
    for _ in range(7):
        stack.sim.create_activity(athlete)
    stack.sim.create_activity(athlete, sport_type="Walk")  # one GET, no PUT
    stack.wait_idle()
    # With the subscription's call, 17 of 20 are spent: into the last tenth, kept for runs.
    assert stack.sim.count(path_prefix="/api/v3") == 17
    # Edits to activities outside the ledger (rides, here) are likely non-runs: they wait.
    for ride in rides:
        stack.sim.fire_event("activity", ride["id"], "update", athlete, {"title": "Spin"})
    late_run = stack.sim.create_activity(athlete)
    deadline = time.monotonic() + 20
    while BLOCK_START not in stack.sim.activity(late_run["id"])["description"]:
        assert time.monotonic() < deadline, [(e.status, e.outcome) for e in stack.events()][-3:]
        time.sleep(0.05)
    time.sleep(0.3)
    waiting = [e for e in stack.events() if e.object_id in {r["id"] for r in rides}]
    assert [(e.status, e.outcome) for e in waiting] == [("pending", "deferred (rate limit)")] * 2
    assert stack.sim.count("GET", f"/api/v3/activities/{rides[0]['id']}") == 0

"""Fair share of the rate budget: one runner's flood cannot starve another runner's note."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from sqlalchemy import insert

from strava_massage import services
from strava_massage.db import Database
from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Event
from strava_massage.strava.budget import Budget, FairShare, charged_to
from strava_massage.strava.client import RateLimited
from strava_massage.worker.jobs import process_event

from .conftest import Backend, Stack

NOW = 1_800_000_000.0  # the start of a 15-minute window
A, B = 1_000_001, 1_000_002


def _waiting_event(db: Database, owner: int) -> None:
    """A due, pending event of `owner` in the events table."""
    with db.session() as session:
        at = dt.datetime.fromtimestamp(NOW - 5, dt.UTC)
        session.execute(
            insert(Event).values(
                dedupe_key=f"waiting-{owner}", object_type="activity", object_id=owner,
                aspect_type="create", owner_id=owner, updates={}, event_time=0,
                status="pending", attempts=0, received_at=at, due_at=at,
            )
        )  # fmt: skip
        session.commit()


def test_a_runner_past_a_quarter_of_a_short_window_waits_only_while_others_wait(
    db: Database,
) -> None:
    budget = Budget(db, limits=(100, 1000), clock=lambda: NOW)
    with charged_to(A):
        for _ in range(30):  # 60 calls: alone, the runner may use the whole window
            budget.reserve(2)
    assert budget.runner_calls(A) == 60
    _waiting_event(db, B)  # now another runner's event waits
    with charged_to(A), pytest.raises(FairShare) as deferred:
        budget.reserve(2)
    assert isinstance(deferred.value, RateLimited)  # deferred like a rate-limited job
    assert deferred.value.retry_after == pytest.approx(60)  # then looks again
    assert budget.runner_calls(A) == 60 and budget.remaining()["short"] == 40  # nothing taken
    with charged_to(B):
        budget.reserve(2)  # the other runner goes first
    budget.reserve(1)  # a connect's call is charged to no runner: never held back
    with charged_to(A):
        budget.refund(2)  # a refund comes back to the runner's share too
    assert budget.runner_calls(A) == 58 and budget.runner_calls(B) == 2


def test_a_runner_under_a_quarter_is_not_held_back_when_the_window_is_short(db: Database) -> None:
    budget = Budget(db, limits=(100, 1000), clock=lambda: NOW)
    _waiting_event(db, B)
    budget.reserve(60)  # other work (uncharged) took most of the window
    with charged_to(A):
        for _ in range(12):  # 24 calls: within a quarter
            budget.reserve(2)
        with pytest.raises(FairShare):
            budget.reserve(2)
    budget.forget_old_windows()
    assert budget.runner_calls(A) == 24


def test_runners_all_over_their_share_compete_for_what_is_left(db: Database) -> None:
    budget = Budget(db, limits=(100, 1000), clock=lambda: NOW)
    for athlete in (A, B):
        with charged_to(athlete):
            budget.reserve(30)  # each over a quarter
    _waiting_event(db, A)
    _waiting_event(db, B)
    with charged_to(A):
        budget.reserve(10)  # B waits, but has had their share too: no window left unused
    with charged_to(B):
        budget.reserve(10)
    assert budget.remaining()["short"] == 20


WINDOW = 8  # seconds: Strava's 15 minutes, shortened by RATE_WINDOW_SECONDS
QUOTA = 100  # non-upload requests per window


def test_one_runner_with_60_events_leaves_another_runners_note_in_the_same_window(
    make_stack, backend: Backend
) -> None:
    if backend.name != "sqlite":
        # The budget's statements run on PostgreSQL in the three tests above; the rest (the
        # windows, the deferrals coming back) is the worker's, the same on either backend.
        pytest.skip("end to end on the embedded default; the budget's SQL above on both")
    stack: Stack = make_stack(RATE_WINDOW_SECONDS=WINDOW)
    stack.subscribe()
    stack.sim.set_rate_limits(
        short=2 * QUOTA, read_short=QUOTA, daily=100_000, read_daily=100_000, window_seconds=WINDOW
    )
    stack.start_worker()
    flood, other = (stack.sim.create_athlete()["id"] for _ in range(2))
    for athlete_id in (flood, other):
        stack.connect(athlete_id)  # history imported by the worker
    stack.stop_worker()
    flood_runs = [stack.sim.create_activity(flood, fire=False) for _ in range(60)]
    other_run = stack.sim.create_activity(other, fire=False)
    for n, run in enumerate([*flood_runs, other_run]):
        owner = run["athlete"]["id"]
        stack.sim.fire_event("activity", int(run["id"]), "create", owner, event_time=n + 1)
    _wait_stored(stack, 61)
    events = {e.object_id: e.id for e in stack.events()}

    time.sleep(WINDOW - time.time() % WINDOW + 0.05)  # the top of a window
    first_window = int(time.time() // WINDOW)
    stack.sim.reset_calls()
    with stack.app.app_context():
        svc = services.get()
        process_event(svc, events[flood_runs[0]["id"]])  # the runner's whole drain, in a row
        process_event(svc, events[other_run["id"]])
    assert int(time.time() // WINDOW) == first_window, "the first phase outlasted its window"
    deferred = [e for e in stack.events() if e.owner_id == flood and e.status == "pending"]
    assert deferred and {e.outcome for e in deferred} == {"deferred (fair share)"}
    assert not [e for e in stack.events() if e.status == "failed"]

    stack.start_worker()  # deferred events come back: what is left of this window, then the next
    events_after = stack.wait_idle(timeout=4 * WINDOW)

    puts = sorted(stack.sim.calls("PUT", path_prefix="/api/v3/activities/"), key=lambda c: c.time)
    put_window = {int(c.path.rsplit("/", 1)[-1]): int(c.time // WINDOW) for c in puts}
    per_window = Counter(put_window[r["id"]] - first_window for r in flood_runs)
    other_window = put_window[other_run["id"]] - first_window
    ahead = [int(c.path.rsplit("/", 1)[-1]) for c in puts].index(other_run["id"])
    print(
        f"\nfair share: the other runner's note in window {other_window} after {ahead} of the"
        f" flood's; the flood's notes per window {sorted(per_window.items())},"
        f" {len(deferred)} deferred for their share"
    )
    assert other_window == 0  # written in the same window
    assert ahead == QUOTA // 2 // 2  # the flood had half the window (it was alone), no more
    assert len(deferred) == 60 - ahead
    assert sorted(per_window) == [0, 1]  # the rest: what the window had left, then the next
    assert per_window[0] <= QUOTA // 2 - 1  # the window's allowance, less the other's note
    calls = stack.sim.calls(path_prefix="/api/v3")
    assert [c.status for c in calls if c.status != 200] == []  # not one 429
    assert {e.status for e in events_after} == {"done"}  # none failed, none lost
    for run in [*flood_runs, other_run]:
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def _wait_stored(stack: Stack, count: int, timeout: float = 20) -> None:
    """Wait until `count` webhook events are stored."""
    deadline = time.monotonic() + timeout
    while len(stack.events()) < count:
        assert time.monotonic() < deadline, len(stack.events())
        time.sleep(0.05)

"""Time to note for a single run, and the Strava calls a realistic mix of events costs.

Time to note: one new run every 5 s (the worker is idle between), from the event's POST to the
note's PUT on the simulator (answering at once); beside it the simulator's own round trip, a
bare GET and PUT of an activity. Calls: a mix of deliveries (new runs, rides, Strava's
duplicate deliveries, renames on strava.com, deletions) against the fewest calls it needs.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from benchmarks.common import Stack, percentile, progress
from strava_massage.simulator.state import SCOPES

SPACING_S = 5.0
# Out of 100 deliveries: a running app's traffic is mostly new activities.
MIX = {"runs": 55, "rides": 20, "duplicates": 10, "renames": 10, "deletes": 5}
# The fewest calls per delivery: a new run is read and written (GET + PUT), a ride read; a
# rename is read (the event names the new title only: whether the sport or the distance
# changed too needs the activity); a duplicate delivery and a deletion need none.
FEWEST = {"runs": 2, "rides": 1, "duplicates": 0, "renames": 1, "deletes": 0}


def time_to_note(stack: Stack, runner: int, samples: int) -> dict[str, Any]:
    """Seconds from each event's POST to its note's PUT, and bare GET+PUT round trips."""
    grant = stack.sim.exchange_code(
        stack.sim.client_id, stack.sim.client_secret,
        stack.sim.issue_code(runner, frozenset(SCOPES)),
    )  # fmt: skip
    bare = requests.Session()
    bare.headers["Authorization"] = f"Bearer {grant['access_token']}"
    first = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=samples)
    waits, trips = [], []
    for n in range(samples + 1):  # the first one warms up
        run = stack.new_run(runner, first + dt.timedelta(days=n))
        path = f"/api/v3/activities/{run}"
        posted = time.time()
        if stack.sim.fire_event("activity", run, "create", runner) != [200]:
            raise SystemExit("the webhook did not answer 200")
        while not (puts := stack.sim.calls("PUT", path)):
            if time.time() - posted > 30:
                raise SystemExit(f"no note after 30 s:\n{stack.tail('web.log')}")
            time.sleep(0.002)
        started = time.perf_counter()
        bare.get(stack.sim.url + path, timeout=10).raise_for_status()
        bare.put(stack.sim.url + path, json={"description": "x"}, timeout=10).raise_for_status()
        if n:
            waits.append(puts[0].time - posted)
            trips.append(time.perf_counter() - started)
        time.sleep(max(0.0, posted + SPACING_S - time.time()))
    progress(f"time to note: {samples} runs")
    return {"p50_s": percentile(waits, 50), "p99_s": percentile(waits, 99),
            "max_s": max(waits), "bare_ms": statistics.median(trips) * 1000,
            "samples": samples}  # fmt: skip


def deliver(jobs: list[Callable[[], Any]]) -> None:
    """Simulator actions that deliver webhooks, six at a time, as Strava would."""
    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def announce(stack: Stack, run: int, owner: int, event_time: int, times: int) -> None:
    """Deliver one create event `times` times with the same body (a redelivery)."""
    for _ in range(times):
        if stack.sim.fire_event("activity", run, "create", owner, event_time=event_time) != [200]:
            raise SystemExit("the webhook did not answer 200")


def mix(stack: Stack, runners: list[int], deliveries: int, seed: int = 7) -> dict[str, Any]:
    """Deliver the mix; Strava calls by kind of delivery against the fewest possible."""
    rng = random.Random(seed)
    counts = {kind: deliveries * share // 100 for kind, share in MIX.items()}
    counts["runs"] += deliveries - sum(counts.values())
    kinds = ["runs"] * counts["runs"] + ["rides"] * counts["rides"]
    rng.shuffle(kinds)
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=56)
    step = dt.timedelta(days=56) * len(runners) / len(kinds)
    kind_of, owner = {}, {}
    for i, kind in enumerate(kinds):
        athlete = runners[i % len(runners)]
        activity = stack.sim.create_activity(
            athlete, sport_type="Run" if kind == "runs" else "Ride", fire=False,
            start_date_local=start + step * (i // len(runners)),
            distance=round(rng.uniform(4000, 21000)),
        )  # fmt: skip
        kind_of[int(activity["id"])], owner[int(activity["id"])] = kind, athlete
    twice = set(rng.sample(sorted(kind_of), counts["duplicates"]))
    changed = rng.sample(sorted(kind_of), counts["renames"] + counts["deletes"])
    renamed, deleted = changed[: counts["renames"]], changed[counts["renames"] :]
    mark = len(stack.sim.calls())
    now = int(time.time())
    deliver([lambda a=a: announce(stack, a, owner[a], now, 1 + (a in twice)) for a in kind_of])
    stack.wait_idle()
    later: list[Callable[[], Any]] = [
        lambda a=a: stack.sim.update_activity(a, name=f"Renamed {a}") for a in renamed
    ]
    deliver(later + [lambda a=a: stack.sim.delete_activity(a) for a in deleted])
    stack.wait_idle()
    # A call goes to the activity's kind up to its fewest, then to what came later (a rename,
    # a deletion) or to the duplicate delivery.
    by_kind: Counter[str] = Counter()
    seen: Counter[int] = Counter()
    later_kind = {a: "renames" for a in renamed} | {a: "deletes" for a in deleted}
    for call in stack.sim.calls()[mark:]:
        tail = call.path.rsplit("/", 1)[-1]
        activity = int(tail) if tail.isdigit() and call.path.startswith("/api/v3/act") else 0
        if activity not in kind_of:
            by_kind["other"] += 1
            continue
        seen[activity] += 1
        first = kind_of[activity]
        extra = later_kind.get(activity) or ("duplicates" if activity in twice else first)
        by_kind[first if seen[activity] <= FEWEST[first] else extra] += 1
    minimum = {kind: counts[kind] * FEWEST[kind] for kind in MIX}
    progress(f"{stack.kind} mix: {deliveries} deliveries")
    return {"delivered": counts, "calls": dict(by_kind), "minimum": minimum,
            "total": sum(by_kind.values()), "fewest": sum(minimum.values())}  # fmt: skip

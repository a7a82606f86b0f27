"""Cost per run as a runner's history grows (1k against 100k runs), and the dashboard's time.

Runners connect through the service's OAuth flow; their history (a run a day for the last
1,000 days, four a day before that, a note per run, a massage every six weeks) is then written
straight into the tables, among background runners whose rows interleave by date as Strava's
ids do. Growth: a new 10 km run today for the 1k and the 100k runner in turn, one at a time,
each timed from the worker's GET of the activity to its PUT of the note (the simulator's clock:
what lies between is the worker's database work on that history), then deleted again.
Dashboard: whole GET /dashboard requests over HTTP, logged in as the runners with 30 and with
3,000 runs, in turn.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections import defaultdict
from typing import Any

import requests
from sqlalchemy import insert, text

from benchmarks.common import Stack, percentile, progress
from strava_massage.models import Activity, Athlete, MassageSession, Note

RECENT_DAYS = 1000  # a measured runner's last 1,000 days hold one run a day
OLDER_PER_DAY = 4  # so 100k runs span 70 years, not 270
CHUNK = 5000
ZONE = "Europe/London"
NOTE_TEXT = (
    "Recovery tip: easy days make the hard ones count. A short walk and some gentle mobility "
    "after today's run help your legs feel fresh for the next one. Sleep is the best recovery."
)


def days_of(runs: int, last: int) -> list[int]:
    """Ordinal dates of a measured runner's runs: daily lately, four a day before that."""
    recent = min(runs, RECENT_DAYS)
    return [last - n for n in range(recent)] + [
        last - RECENT_DAYS - n // OLDER_PER_DAY for n in range(runs - recent)
    ]


def note(activity_id: int, athlete_id: int, day: dt.date) -> dict[str, Any]:
    """A written note as the worker stores it: a check-in on the 1st, a long run on Sundays."""
    kind = (
        "monthly_checkin" if day.day == 1 else "long_run" if day.weekday() == 6 else "recovery_tip"
    )
    return {"activity_id": activity_id, "athlete_id": athlete_id, "local_date": day, "kind": kind,
            "is_session": kind != "recovery_tip", "tip_id": f"tip{activity_id % 12}",
            "reason": "this week 42.0 km", "fact_ids": "T1", "text": NOTE_TEXT,
            "target": "description", "status": "written"}  # fmt: skip


def fill(stack: Stack, measured: dict[int, int], background: int) -> int:
    """Write the histories of the measured runners (id -> runs) and the background; rows."""
    rng = random.Random(11)
    last = (dt.date.today() - dt.timedelta(days=1)).toordinal()
    schedule: dict[int, list[int]] = defaultdict(list)  # day -> runners who ran that day
    noted: set[tuple[int, int]] = set()
    sessions = []
    for athlete_id, runs in measured.items():
        days = days_of(runs, last)
        for day in days:
            schedule[day].append(athlete_id)
        noted.update((athlete_id, d) for d in days)
        sessions += [{"athlete_id": athlete_id, "on": dt.date.fromordinal(d), "place": None}
                     for d in range(last - 20, min(days) - 1, -42)]  # fmt: skip
    others = range(10**9, 10**9 + background)
    for athlete_id in others:
        span = rng.randint(60, 1000)
        days = sorted(rng.sample(range(last - span, last + 1), rng.randint(20, 50)))
        for day in days:
            schedule[day].append(athlete_id)
        noted.update((athlete_id, d) for d in days[-rng.randint(2, 5) :])
        sessions += [{"athlete_id": athlete_id, "on": dt.date.fromordinal(rng.choice(days)),
                      "place": None} for _ in range(rng.randint(0, 2))]  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    rows = [{"id": a, "units": "km", "connected_at": now, "backfill_status": "done",
             "timezone": ZONE, "advice_overrides": {}} for a in others]  # fmt: skip
    activities: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    activity_id = 0
    with stack.db.session() as session:
        for start in range(0, len(rows), CHUNK):
            session.execute(insert(Athlete), rows[start : start + CHUNK])
        session.execute(insert(MassageSession), sessions)
        for ordinal in sorted(schedule):
            day = dt.date.fromordinal(ordinal)
            for athlete_id in schedule[ordinal]:
                activity_id += 1  # Strava's ids grow with time
                metres = rng.uniform(5000, 16000)
                activities.append({"id": activity_id, "athlete_id": athlete_id, "local_date": day,
                                   "distance_m": metres, "moving_time_s": int(metres * 0.33),
                                   "sport_type": "Run", "workout_type": None})  # fmt: skip
                if (athlete_id, ordinal) in noted:
                    notes.append(note(activity_id, athlete_id, day))
            if len(activities) >= CHUNK or ordinal == max(schedule):
                session.execute(insert(Activity), activities)
                if notes:
                    session.execute(insert(Note), notes)
                session.commit()  # a commit per chunk keeps SQLite's WAL small
                activities, notes = [], []
        if stack.db.dialect == "postgresql":
            session.execute(text("ANALYZE"))  # as autovacuum soon would after a bulk load
            session.commit()
    return activity_id


def cost_of_run(stack: Stack, runner: int, when: dt.datetime) -> float:
    """Milliseconds from the worker's GET of a new run to its PUT of the note."""
    run = stack.new_run(runner, when)
    path = f"/api/v3/activities/{run}"
    if stack.sim.fire_event("activity", run, "create", runner) != [200]:
        raise SystemExit("the webhook did not answer 200")
    deadline = time.monotonic() + 30
    while not (puts := stack.sim.calls("PUT", path)):
        if time.monotonic() > deadline:
            raise SystemExit(f"no note after 30 s:\n{stack.tail('web.log')}")
        time.sleep(0.005)
    get = stack.sim.calls("GET", path)[0]
    # Deleted again (no Strava call), so every timed run lands on the same history: kept,
    # each would add 10 km to today and move the note the rules pick.
    # Only once the run's event is finished: a delete arriving in the instant the runner's
    # previous event ends can be left for the sweep (seen 2026-12-03 on scale-out, reported).
    stack.wait_idle()
    stack.sim.delete_activity(run)
    stack.wait_idle()
    return (puts[0].time - get.time) * 1000


def dashboard(url: str, browsers: dict[int, requests.Session], rounds: int) -> dict[int, float]:
    """p50 ms of GET /dashboard by runs of the logged-in runner, taking turns."""
    times: dict[int, list[float]] = {runs: [] for runs in browsers}
    for r in range(rounds + 5):  # the first five warm up
        for runs, browser in browsers.items():
            started = time.perf_counter()
            response = browser.get(url + "/dashboard", timeout=10)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200 or "total-week" not in response.text:
                raise SystemExit(f"the dashboard answered {response.status_code}")
            if r >= 5:
                times[runs].append(elapsed)
    return {runs: statistics.median(ms) for runs, ms in times.items()}


def run(
    stack: Stack, small: int, large: int, background: int, rounds: int, pages: int
) -> dict[str, Any]:
    """Build the histories, then time new runs of both sizes and both dashboards."""
    sizes = [small, large, 30, 3000]
    connected = dict(zip(sizes, stack.connect(len(sizes)), strict=True))
    started = time.perf_counter()
    rows = fill(stack, {a: runs for runs, (a, _) in connected.items()}, background)
    progress(f"{stack.kind} growth: {rows} runs written in {time.perf_counter() - started:.0f} s")
    today = dt.datetime.now(dt.UTC).replace(tzinfo=None, hour=6, minute=0)
    ms: dict[int, list[float]] = {small: [], large: []}
    for r in range(rounds + 3):  # the first three warm up
        for runs in [small, large] if r % 2 else [large, small]:
            cost = cost_of_run(stack, connected[runs][0], today + dt.timedelta(minutes=r))
            if r >= 3:
                ms[runs].append(cost)
    stack.wait_idle()
    pages_p50 = dashboard(stack.url, {30: connected[30][1], 3000: connected[3000][1]}, pages)
    progress(f"{stack.kind} growth and dashboard timed")
    return {
        "small": small, "large": large, "background": background, "rows": rows,
        "p50_ms": {str(k): statistics.median(v) for k, v in ms.items()},
        "p95_ms": {str(k): percentile(v, 95) for k, v in ms.items()},
        "dashboard_p50_ms": {str(k): v for k, v in pages_p50.items()},
    }  # fmt: skip

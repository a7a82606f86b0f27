"""Per-event database work as a runner's history grows: 1k, 10k and 100k runs among 10,000 runners.

Run: python -m benchmarks.growth [--database URL] [--sizes 1000,10000,100000] [--runners 10000]
Builds one database holding a runner per size (a run a day for the last 1,000 days, older history
at four a day, a note per run, a massage every six weeks) and the background runners (20-50 runs,
a few notes, up to two massages each), rows of all runners interleaved by date as Strava delivers
them. Then, alternating the measured runners, times what the worker does with the database for a
new run (upsert into the ledger, decide the note, store it) in a transaction
that is rolled back, so every round sees the same data. Target: p50 per event at the largest
size within 1.5x of the smallest. Give PostgreSQL as postgresql+psycopg://... (an empty database).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.orm import Session

from strava_massage import create_app
from strava_massage.advice.rules import LONG_RUN, MONTHLY_CHECKIN, RECOVERY_TIP
from strava_massage.ledger import upsert_run
from strava_massage.models import Activity, Athlete, MassageSession, Note
from strava_massage.processing import decide_note
from strava_massage.strava import ActivityInfo

RESULTS = Path(__file__).parent / "results" / "growth.json"
TARGET = 1.5
RECENT_DAYS = 1000  # every measured runner's last 1,000 days hold one run a day
OLDER_PER_DAY = 4  # so 100k runs span 70 years, not 270
CHUNK = 5000
ZONE = "Europe/London"
NOTE_TEXT = (
    "Recovery tip: easy days make the hard ones count. A short walk and some gentle mobility "
    "after today's run help your legs feel fresh for the next one. Sleep is the best recovery."
)
# Statement -> the service function that sent it, for the per-statement table.
LABELS = (
    ("INSERT INTO activities", "upsert_run"),
    ("FROM athletes WHERE", "get athlete"),
    ("FROM activities WHERE activities.id =", "get run"),
    ("sum(CASE", "history: totals, last massage, first run, last check-in"),
    ("SELECT runs.local_date, runs.distance_m", "runs_between"),
    ("ORDER BY notes.local_date DESC, notes.id DESC", "recent_notes"),
    ("INSERT INTO notes", "insert note"),
)


def progress(message: str, since: float) -> None:
    """A line on stderr, so the wait for a large build is visible and the table stays clean."""
    print(f"[{time.perf_counter() - since:7.1f} s] {message}", file=sys.stderr, flush=True)


def measured_days(runs: int, today: int) -> list[int]:
    """Ordinal dates of a measured runner's runs: daily lately, four a day before that."""
    recent = min(runs, RECENT_DAYS)
    days = [today - n for n in range(recent)]
    days += [today - RECENT_DAYS - n // OLDER_PER_DAY for n in range(runs - recent)]
    return days


def note_for(activity_id: int, athlete_id: int, day: dt.date) -> dict[str, Any]:
    """A written note as the worker stores it: a check-in on the 1st, a long run on Sundays."""
    kind = MONTHLY_CHECKIN if day.day == 1 else LONG_RUN if day.weekday() == 6 else RECOVERY_TIP
    return {"activity_id": activity_id, "athlete_id": athlete_id, "local_date": day, "kind": kind,
            "is_session": kind != RECOVERY_TIP, "tip_id": f"tip{activity_id % 12}",
            "reason": "this week 42.0 km", "fact_ids": "T1", "text": NOTE_TEXT,
            "target": "description", "status": "written"}  # fmt: skip


def build(app: Any, sizes: Sequence[int], runners: int, today: dt.date, t0: float) -> list[int]:
    """Fill the database; returns the measured runners' ids, in the order of `sizes`."""
    rng = random.Random(11)
    end = today.toordinal()
    measured = list(range(1, len(sizes) + 1))
    background = range(1000, 1000 + runners)
    # Who runs on which day (a runner twice for two runs), so rows interleave by date.
    schedule: dict[int, list[int]] = defaultdict(list)
    noted: set[tuple[int, int]] = set()  # (athlete, day) of the background runners' notes
    sessions: list[dict[str, Any]] = []
    for athlete_id, runs in zip(measured, sizes, strict=True):
        days = measured_days(runs, end)
        for day in days:
            schedule[day].append(athlete_id)
        sessions += [
            {"athlete_id": athlete_id, "on": dt.date.fromordinal(d), "place": None}
            for d in range(end - 20, min(days) - 1, -42)
        ]
    for athlete_id in background:
        span = rng.randint(60, 1000)
        days = sorted(rng.sample(range(end - span, end + 1), rng.randint(20, 50)))
        for day in days:
            schedule[day].append(athlete_id)
        noted.update((athlete_id, d) for d in days[-rng.randint(2, 5) :])
        sessions += [
            {"athlete_id": athlete_id, "on": dt.date.fromordinal(rng.choice(days)), "place": None}
            for _ in range(rng.randint(0, 2))
        ]
    db = app.extensions["db"]
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        for chunk in chunks([
            {"id": a, "units": "km", "connected_at": now, "backfill_status": "done",
             "timezone": ZONE, "advice_overrides": {}}
            for a in (*measured, *background)
        ]):  # fmt: skip
            session.execute(insert(Athlete), chunk)
        for chunk in chunks(sessions):
            session.execute(insert(MassageSession), chunk)
        session.commit()
    progress(f"{len(measured) + runners} athletes, {len(sessions)} massage sessions", t0)
    wanted = set(measured)
    activities: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    activity_id = total = written = 0
    with db.session() as session:
        for ordinal in sorted(schedule):
            day = dt.date.fromordinal(ordinal)
            for athlete_id in schedule[ordinal]:
                activity_id += 1  # Strava's ids grow with time
                metres = rng.uniform(5000, 16000)
                activities.append(
                    {"id": activity_id, "athlete_id": athlete_id, "local_date": day,
                     "distance_m": metres, "moving_time_s": int(metres * 0.33),
                     "sport_type": "Run", "workout_type": None}
                )  # fmt: skip
                if athlete_id in wanted or (athlete_id, ordinal) in noted:
                    notes.append(note_for(activity_id, athlete_id, day))
                    written += 1
            if len(activities) >= CHUNK:
                total += flush(session, activities, notes)
                if total % 100_000 < CHUNK:
                    progress(f"{total} activities", t0)
        total += flush(session, activities, notes)
        if db.engine.dialect.name == "postgresql":
            # Autovacuum analyses a bulk-loaded table soon after; a live database has statistics.
            session.execute(text("ANALYZE"))
            session.commit()
    progress(f"{total} activities and {written} notes stored", t0)
    return measured


def chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Slices of CHUNK rows, for executemany."""
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def flush(session: Session, activities: list[dict[str, Any]], notes: list[dict[str, Any]]) -> int:
    """Insert and commit the pending rows (a commit per chunk keeps SQLite's WAL small)."""
    count = len(activities)
    if activities:
        session.execute(insert(Activity), activities)
    if notes:
        session.execute(insert(Note), notes)
    session.commit()
    activities.clear()
    notes.clear()
    return count


class StatementClock:
    """Times each statement the service sends, by the function that sent it."""

    def __init__(self, engine: Any) -> None:
        self.bucket: dict[str, list[float]] | None = None
        self.captured: list[tuple[str, Any]] | None = None
        self._labels: dict[str, str] = {}
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def label(self, statement: str) -> str:
        """The service function behind a statement (cached: the same strings come back)."""
        if statement not in self._labels:
            flat = " ".join(statement.split())
            found = [name for fragment, name in LABELS if fragment in flat]
            self._labels[statement] = found[0] if found else flat[:30]
        return self._labels[statement]

    def _before(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        """Start the clock; keep a SELECT and its parameters when `explain` asks for them."""
        if self.captured is not None and statement.lstrip().upper().startswith("SELECT"):
            self.captured.append((statement, params))
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """Add the statement's time to the current runner's bucket."""
        if self.bucket is not None:
            elapsed = (time.perf_counter() - self._started) * 1e6
            self.bucket.setdefault(self.label(statement), []).append(elapsed)


def new_run(athlete_id: int, activity_id: int, today: dt.date) -> ActivityInfo:
    """A 10 km run this morning, as the worker reads it from Strava."""
    return ActivityInfo(
        id=activity_id, athlete_id=athlete_id, sport_type="Run", distance_m=10000.0,
        moving_time_s=3300, start_date_local=dt.datetime.combine(today, dt.time(7, 30)),
        timezone=f"(GMT+00:00) {ZONE}", workout_type=None, description="", private_note=None,
    )  # fmt: skip


def one_event(app: Any, athlete_id: int, activity_id: int, today: dt.date) -> float:
    """Milliseconds of the worker's database work for a new run, rolled back afterwards."""
    db = app.extensions["db"]
    info = new_run(athlete_id, activity_id, today)
    t0 = time.perf_counter()
    with db.session() as session:
        # _handle_activity for a new run: the runner (read with the claim), the upsert; the time
        # zone is unchanged, so nothing is written for it. Then decide and store the note.
        athlete = session.get(Athlete, athlete_id)
        assert athlete is not None
        run = upsert_run(session, info)
        note = decide_note(session, athlete, info.id, run=run)
        session.add(note)
        session.flush()
        elapsed = (time.perf_counter() - t0) * 1000
        session.rollback()
    return elapsed


def explain(app: Any, clock: StatementClock, athlete_id: int, today: dt.date) -> list[str]:
    """The plan of every SELECT of one event for this runner (PostgreSQL: with actual times)."""
    db = app.extensions["db"]
    postgres = db.engine.dialect.name == "postgresql"
    # With costs: the planner's row estimates against the actual rows are what explain a plan.
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    lines: list[str] = []
    with db.session() as session:
        athlete = session.get(Athlete, athlete_id)
        assert athlete is not None
        upsert_run(session, new_run(athlete_id, 10**12, today))
        clock.captured = []
        decide_note(session, athlete, 10**12)
        captured, clock.captured = clock.captured, None
        connection = session.connection()
        for statement, params in captured:
            lines.append(f"-- {clock.label(statement)}: {' '.join(statement.split())}")
            for row in connection.exec_driver_sql(prefix + statement, params):
                lines.append("   " + str(row[-1]))
        session.rollback()
    return lines


def run(
    database: str | None = None,
    sizes: Sequence[int] = (1000, 10_000, 100_000),
    runners: int = 10_000,
    rounds: int = 200,
    plans: bool = False,
    results: Path | None = RESULTS,
) -> dict[str, Any]:
    """Build the data set, time the rounds, print the table; returns (and saves) the figures."""
    sizes = sorted(sizes)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {"TESTING": True, "STRAVA_CLIENT_ID": "1", "STRAVA_CLIENT_SECRET": "x",
             "STRAVA_VERIFY_TOKEN": "v", "DATABASE_URL": database or f"sqlite:///{tmp}/b.db",
             "QUEUE_URL": f"sqlite:///{tmp}/q.db"}
        )  # fmt: skip
        db = app.extensions["db"]
        db.upgrade()
        with db.session() as session:
            if session.scalar(select(func.count()).select_from(Athlete)):
                raise SystemExit("the database must be empty: this benchmark fills it")
        today = dt.datetime.now(dt.UTC).date()
        ids = build(app, sizes, runners, today, t0)
        build_s = time.perf_counter() - t0
        clock = StatementClock(db.engine)
        for n, athlete_id in enumerate(ids * 5):  # warm the statement caches and the pages
            one_event(app, athlete_id, 10**12 + n, today)
        times: dict[int, list[float]] = {size: [] for size in sizes}
        per_statement: dict[int, dict[str, list[float]]] = {size: {} for size in sizes}
        order = list(zip(sizes, ids, strict=True))
        for r in range(rounds):
            # Rotate who goes first, so no size always runs right after another.
            for size, athlete_id in order[r % len(order) :] + order[: r % len(order)]:
                clock.bucket = per_statement[size]
                times[size].append(one_event(app, athlete_id, 10**12 + r, today))
                clock.bucket = None
        progress(f"{rounds} rounds timed", t0)
        plan = explain(app, clock, ids[-1], today) if plans else []
        dialect = db.engine.dialect.name
        db.dispose()

    rows: dict[str, dict[str, float]] = {}
    print(f"per-event database work, {rounds} rounds, {dialect}, {runners} other runners")
    print(f"data set built in {build_s:.0f} s")
    print(f"{'runs':>8} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    base = statistics.median(times[sizes[0]])
    for size in sizes:
        ms = sorted(times[size])
        p50, p95 = statistics.median(ms), ms[int(len(ms) * 0.95) - 1]
        rows[str(size)] = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                           "ratio": round(p50 / base, 3)}  # fmt: skip
        print(f"{size:>8} {p50:>8.2f} {p95:>8.2f} {p50 / base:>10.2f}")
    statements = {
        name: {str(s): round(statistics.median(per_statement[s][name]), 1) for s in sizes}
        for name in per_statement[sizes[0]]
    }
    print(f"\np50 µs per statement {'':>7}" + "".join(f"{s:>9}" for s in sizes) + "    ratio")
    for name, by_size in statements.items():
        figures = "".join(f"{by_size[str(s)]:>9.1f}" for s in sizes)
        print(f"{name:<28}{figures}{by_size[str(sizes[-1])] / by_size[str(sizes[0])]:>9.2f}")
    print()
    verdicts = {}
    for size in sizes[1:]:
        ratio = rows[str(size)]["ratio"]
        verdicts[str(size)] = ratio <= TARGET
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"{verdict}  p50 at {size} runs within {TARGET}x of {sizes[0]} ({ratio:.2f})")
    if plan:
        print("\nplans for one event of the largest runner:")
        print("\n".join(plan))
    result = {
        "dialect": dialect, "rounds": rounds, "runners": runners, "build_s": round(build_s),
        "sizes": rows, "statements_us": statements, "pass": verdicts, "plans": plan,
    }  # fmt: skip
    if results is not None:
        # One entry per dialect, so a SQLite run and a PostgreSQL run sit side by side.
        saved = json.loads(results.read_text()) if results.exists() else {}
        results.parent.mkdir(exist_ok=True)
        results.write_text(json.dumps({**saved, dialect: result}, indent=1, ensure_ascii=False))
    return result


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="runs of each measured runner")
    parser.add_argument("--runners", type=int, default=10_000, help="other runners [10000]")
    parser.add_argument("--rounds", type=int, default=200, help="events per measured runner [200]")
    parser.add_argument("--plans", action="store_true", help="print the largest runner's plans")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    run(args.database, sizes, args.runners, args.rounds, args.plans)


if __name__ == "__main__":
    main()

"""Server time of the runner's dashboard: a runner with 3,000 runs next to one with 30.

Run: python -m benchmarks.dashboard [--runs 3000] [--requests 200] [--database URL]
Builds a database with two runners (3,000 and 30 runs, a note per run, a massage every six weeks),
then times whole requests through the WSGI app (routing, session, queries, template), alternating
the two runners so the machine's noise hits both alike. Target: p50 under 50 ms at 3,000 runs; the
ratio to the small runner shows whether the page's cost grows with the history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from strava_massage import create_app
from strava_massage.models import Activity, Athlete, MassageSession, Note

RESULTS = Path(__file__).parent / "results" / "dashboard.json"


def fill(app: Any, athlete_id: int, runs: int, today: dt.date, seed: int = 3) -> None:
    """A runner with `runs` daily runs ending today, a note for each, a massage every 6 weeks."""
    rng = random.Random(seed)
    first = today - dt.timedelta(days=runs - 1)
    activities, notes = [], []
    for n in range(runs):
        day = first + dt.timedelta(days=n)
        activity_id = athlete_id * 10**7 + n
        metres = rng.uniform(5000, 16000)
        activities.append(
            {"id": activity_id, "athlete_id": athlete_id, "local_date": day, "distance_m": metres,
             "moving_time_s": int(metres * 0.33), "sport_type": "Run", "workout_type": None}
        )  # fmt: skip
        notes.append(
            {"activity_id": activity_id, "athlete_id": athlete_id, "local_date": day,
             "kind": "recovery_tip", "is_session": False, "tip_id": "t", "status": "written",
             "reason": f"this week {metres / 1000:.1f} km", "fact_ids": "", "text": "a note",
             "target": "description"}
        )  # fmt: skip
    sessions = [
        {"athlete_id": athlete_id, "on": first + dt.timedelta(days=d), "place": None}
        for d in range(20, runs, 42)
    ]
    with app.extensions["db"].session() as session:
        session.add(
            Athlete(id=athlete_id, units="km", connected_at=dt.datetime.now(dt.UTC),
                    backfill_status="done", timezone="Europe/London")
        )  # fmt: skip
        session.flush()
        session.execute(insert(Activity), activities)
        session.execute(insert(Note), notes)
        if sessions:
            session.execute(insert(MassageSession), sessions)
        session.commit()


def client_for(app: Any, athlete_id: int) -> Any:
    """A test client logged in as the runner (a signed session cookie, as after connecting)."""
    client = app.test_client()
    with client.session_transaction() as s:
        s["athlete_id"] = athlete_id
    return client


def main() -> None:
    """Time both runners' dashboards, alternating, and print the figures with their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="runs of the large runner [3000]")
    parser.add_argument("--requests", type=int, default=200, help="requests per runner [200]")
    parser.add_argument("--database", help="a SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {"TESTING": True, "STRAVA_CLIENT_ID": "1", "STRAVA_CLIENT_SECRET": "x",
             "STRAVA_VERIFY_TOKEN": "v", "DATABASE_URL": args.database or f"sqlite:///{tmp}/b.db",
             "QUEUE_URL": f"sqlite:///{tmp}/q.db"}
        )  # fmt: skip
        app.extensions["db"].upgrade()
        today = dt.datetime.now(dt.UTC).date()
        sizes = {"large": (1, args.runs), "small": (2, 30)}
        for athlete_id, runs in sizes.values():
            fill(app, athlete_id, runs, today)
        clients = {name: client_for(app, aid) for name, (aid, _) in sizes.items()}
        times: dict[str, list[float]] = {name: [] for name in sizes}
        for client in clients.values():  # warm the templates and the statement cache
            assert client.get("/dashboard").status_code == 200
        for _ in range(args.requests):
            for name, client in clients.items():
                t0 = time.perf_counter()
                response = client.get("/dashboard")
                times[name].append((time.perf_counter() - t0) * 1000)
                assert b"total-week" in response.data, response.status
        app.extensions["db"].dispose()
        dialect = app.extensions["db"].engine.dialect.name

    rows = {}
    print(f"dashboard server time, {args.requests} requests per runner, {dialect}")
    print(f"{'runner':<8} {'runs':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, (_, runs) in sizes.items():
        ms = sorted(times[name])
        p50, p95 = statistics.median(ms), ms[int(len(ms) * 0.95) - 1]
        rows[name] = {"runs": runs, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
        print(f"{name:<8} {runs:>6} {p50:>8.2f} {p95:>8.2f} {ms[-1]:>8.2f}")
    ratio = rows["large"]["p50_ms"] / rows["small"]["p50_ms"]
    verdict = "PASS" if rows["large"]["p50_ms"] < 50 else "FAIL"
    print(f"p50 ratio large/small {ratio:.2f} for {args.runs / 30:.0f}x the runs (1.0 = flat)")
    print(f"target p50 < 50 ms at {args.runs} runs: {verdict}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"dialect": dialect, "runners": rows, "ratio": ratio}, indent=1))


if __name__ == "__main__":
    main()

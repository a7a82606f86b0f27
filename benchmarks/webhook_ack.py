"""Webhook acknowledgement: latency and throughput of the real intake next to a bare endpoint.

Both are served by gunicorn with the same settings; the load comes from a separate process so
the client shares no GIL with what is measured. Rounds alternate service/bare so machine noise
hits both sides alike; the median round of each is reported. Each backend (SQLite database and
queue; PostgreSQL and a Redis queue) is measured at each concurrency.

    python -m benchmarks.webhook_ack [--backends sqlite,postgres] [--concurrency 1,8,32]
        [--events 1000] [--repeat 3] [--workers 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet

from benchmarks.common import free_port, fresh_postgres, unique_name

ROOT = Path(__file__).resolve().parents[1]
ATHLETES = 50
WARMUP = 50
BACKENDS = ("sqlite", "postgres")
REDIS = "redis://127.0.0.1:6379/14"
# The targets apply at the concurrency a burst of Strava webhooks is expected to reach.
TARGET_CONCURRENCY = 8
DESCRIBED = {"sqlite": "SQLite database and queue", "postgres": "PostgreSQL and a Redis queue"}


WEBHOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 (a benchmark's own)


def service_env(
    folder: Path, backend: str = "sqlite", name: str = "", database_url: str = ""
) -> dict[str, str]:
    """Settings for the real service: SQLite database and queue in `folder`.

    For postgres: the PostgreSQL database at `database_url` instead, and a Redis queue `name`.
    """
    env = {
        "STRAVA_VERIFY_TOKEN": "bench",
        "STRAVA_CLIENT_ID": "1",
        "STRAVA_CLIENT_SECRET": "x",
        "SECRET_KEY": "bench",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TOKEN_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
        "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
        "STRAVA_BASE_URL": "http://127.0.0.1:9",  # never called: no worker runs
    }
    if backend == "postgres":
        env["DATABASE_URL"] = database_url
        env["QUEUE_URL"] = REDIS
        env["QUEUE_NAME"] = name
    return env


@contextlib.contextmanager
def backend_env(backend: str) -> Iterator[dict[str, str]]:
    """The service's settings for `backend`; what they name is created here and removed after.

    PostgreSQL gets a database of its own and Redis a queue name of its own (letters, digits
    and underscores: huey drops anything else from a queue name), so runs side by side and
    the databases of other users of the server are left alone.
    """
    folder = Path(tempfile.mkdtemp(prefix="legwork-bench-"))
    name = unique_name("legwork_bench")
    try:
        if backend == "sqlite":
            yield service_env(folder)
            return
        import redis

        with fresh_postgres(name) as database_url:
            try:
                yield service_env(folder, backend, name, database_url)
            finally:
                client = redis.Redis.from_url(REDIS)
                keys = list(client.scan_iter(match=f"huey.*.{name}*"))
                if keys:
                    client.delete(*keys)
                client.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def prepare_service(env: dict[str, str]) -> Any:
    """Create the schema, the athletes events name and the subscription they carry.

    The settings go to the app factory as overrides, not into os.environ, so one process can
    prepare several backends (and a combined runner keeps its environment).
    """
    from strava_massage import create_app
    from strava_massage.models import Athlete, Subscription

    app = create_app(dict(env))
    db = app.extensions["db"]
    db.upgrade()
    with db.session() as session:
        session.add_all([Athlete(id=i) for i in range(1, ATHLETES + 1)])
        session.add(Subscription(id=1, callback_url="http://bench"))
        session.commit()
    return app


def start_server(
    target: str, env: dict[str, str], workers: int, threads: int
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn (gthread) on a free port; returns once it answers."""
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--log-level",
                "warning", "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
    proc = subprocess.Popen(
        [*gunicorn, "--bind", f"127.0.0.1:{port}", target],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/webhooks/strava/{WEBHOOK_SECRET}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/healthz", timeout=5)
            return proc, url
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{target} did not start")


def event(n: int) -> bytes:
    """A distinct, valid create event (distinct object ids, so nothing is deduplicated)."""
    body = {"aspect_type": "create", "event_time": 1_700_000_000, "object_id": n,
            "object_type": "activity", "owner_id": n % ATHLETES + 1, "subscription_id": 1,
            "updates": {}}  # fmt: skip
    return json.dumps(body).encode()


def load(url: str, first_id: int, count: int, concurrency: int, out: Any) -> None:
    """Client process: POST `count` events from `concurrency` keep-alive connections.

    http.client rather than requests: the client's own cost per request should be small next
    to what it measures, on a machine where client and servers share two cores.
    """
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_id = iter(range(first_id, first_id + count))
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while True:
            with lock:
                n = next(next_id, None)
            if n is None:
                conn.close()
                return
            started = time.perf_counter()
            conn.request("POST", parts.path, body=event(n), headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 200 or b'"received"' not in body:
                    failures.append(f"{response.status} {body[:80]!r}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send({"latencies": latencies, "wall": time.perf_counter() - started, "failures": failures})


def measure(url: str, first_id: int, count: int, concurrency: int) -> dict[str, float]:
    """One round from a separate client process: p50/p99 in ms and events per second."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.Process(target=load, args=(url, first_id, count, concurrency, sender))
    proc.start()
    result = receiver.recv()
    proc.join()
    if result["failures"]:
        raise SystemExit(f"{len(result['failures'])} failed requests, e.g. {result['failures'][0]}")
    lat = sorted(result["latencies"])
    return {
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "events_per_s": count / result["wall"],
    }


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The per-figure median over rounds."""
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def compare(
    service_url: str, bare_url: str, first_id: int, events: int, repeat: int, concurrency: int
) -> dict[str, Any]:
    """Warm both servers up at this concurrency, then alternate service/bare rounds."""
    rounds: dict[str, list[dict[str, float]]] = {"service": [], "bare": []}
    next_id = first_id
    for url in (service_url, bare_url):
        measure(url, next_id, WARMUP, concurrency)
        next_id += WARMUP
    for _ in range(repeat):
        for name, url in (("service", service_url), ("bare", bare_url)):
            rounds[name].append(measure(url, next_id, events, concurrency))
            next_id += events
    svc, base = median_round(rounds["service"]), median_round(rounds["bare"])
    tput_ratio = svc["events_per_s"] / base["events_per_s"]
    checks = {}
    if concurrency == TARGET_CONCURRENCY:
        checks = {
            "p99 under 50 ms": svc["p99_ms"] < 50,
            "throughput at least half of bare": tput_ratio >= 0.5,
        }
    return {
        "concurrency": concurrency, "service": svc, "bare": base, "rounds": rounds,
        "ratios": {"p50": svc["p50_ms"] / base["p50_ms"], "p99": svc["p99_ms"] / base["p99_ms"],
                   "throughput": tput_ratio},
        "checks": checks,
    }  # fmt: skip


def count_stored(app: Any) -> tuple[int, int]:
    """Events in the service's table and tasks waiting in its queue (no worker ran)."""
    from sqlalchemy import func, select

    from strava_massage.models import Event

    db, tasks = app.extensions["db"], app.extensions["tasks"]
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Event)) or 0
    queued = tasks.depth()
    tasks.close()
    db.dispose()  # let the database be dropped
    return stored, queued


def run(
    backends: Sequence[str] = BACKENDS,
    concurrency: Sequence[int] = (1, 8, 32),
    events: int = 1000,
    repeat: int = 3,
    workers: int = 2,
    threads: int = 8,
) -> list[dict[str, Any]]:
    """Measure every backend at every concurrency; one row per pair, as written to the JSON.

    Raises SystemExit when a request fails or the service did not store and queue every event
    it acknowledged.
    """
    unknown = set(backends) - set(BACKENDS)
    if unknown or not backends or not concurrency:
        raise SystemExit(f"backends are {', '.join(BACKENDS)}; got {', '.join(backends) or 'none'}"
                         f", concurrency {', '.join(map(str, concurrency)) or 'none'}")  # fmt: skip
    served = (workers, threads)
    rows: list[dict[str, Any]] = []
    # One bare server for the whole run: it touches no backend.
    bare, bare_url = start_server("benchmarks.bare_app:create_app()", {}, *served)
    try:
        for backend in backends:
            with backend_env(backend) as env:
                app = prepare_service(env)
                service, service_url = start_server("strava_massage:create_app()", env, *served)
                cells = []
                next_id = 1
                try:
                    for c in concurrency:
                        cells.append(compare(service_url, bare_url, next_id, events, repeat, c))
                        next_id += 2 * (WARMUP + events * repeat)
                        print(f"{backend}, concurrency {c}: done", file=sys.stderr)
                finally:
                    service.terminate()
                    service.wait(timeout=30)
                stored, queued = count_stored(app)
            # Only the service's half of the ids reached it: warm-up plus its rounds.
            expected = (WARMUP + events * repeat) * len(concurrency)
            if stored != expected or queued != expected:
                raise SystemExit(
                    f"{backend}: the service stored {stored} events and queued {queued}, "
                    f"expected {expected} of each"
                )
            for cell in cells:
                rows.append({"backend": backend, **cell, "events": events, "repeat": repeat,
                             "workers": workers, "threads": threads, "stored": stored})  # fmt: skip
    finally:
        bare.terminate()
        bare.wait(timeout=30)
    return rows


def print_table(rows: list[dict[str, Any]]) -> bool:
    """The table, the verified counts and the targets' PASS/FAIL lines; True if all pass."""
    first = rows[0]
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    print(f"\nwebhook acknowledgement: {first['events']} events a round, median of "
          f"{first['repeat']} alternating rounds, gunicorn gthread "
          f"{first['workers']}x{first['threads']} for both servers")  # fmt: skip
    for backend in backends:
        print(f"  {backend}: {DESCRIBED[backend]}")
    print(f"\n{'':<15}{'service':^27}  {'bare Flask endpoint':^27}  {'service/bare':>14}")
    print(f"{'backend':<9}{'conc':>6}" + f"{'p50 ms':>9}{'p99 ms':>9}{'ev/s':>9}  " * 2
          + f"{'p99':>7}{'tput':>7}")  # fmt: skip
    for row in rows:
        svc, base = row["service"], row["bare"]
        print(f"{row['backend']:<9}{row['concurrency']:>6}"
              + "".join(f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['events_per_s']:>9.0f}  "
                        for r in (svc, base))
              + f"{row['ratios']['p99']:>7.2f}{row['ratios']['throughput']:>7.2f}")  # fmt: skip
    print()
    for backend in backends:
        stored = next(row["stored"] for row in rows if row["backend"] == backend)
        print(f"{backend}: stored and queued events verified: {stored}")
    passed = True
    for row in rows:
        for label, ok in row["checks"].items():
            passed = passed and ok
            print(f"{'PASS' if ok else 'FAIL'}  {row['backend']}, concurrency "
                  f"{row['concurrency']}: {label}")  # fmt: skip
    if not any(row["checks"] for row in rows):
        print(f"no targets checked: they apply at concurrency {TARGET_CONCURRENCY}")
    return passed


def main() -> None:
    """Run the rounds, print the table and write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--events", type=int, default=1000, help="events a round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each server")
    # The Procfile's web settings; both servers always get the same.
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/webhook_ack.json")
    args = parser.parse_args()

    rows = run(
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        concurrency=[int(c) for c in args.concurrency.split(",") if c.strip()],
        events=args.events,
        repeat=args.repeat,
        workers=args.workers,
        threads=args.threads,
    )
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()

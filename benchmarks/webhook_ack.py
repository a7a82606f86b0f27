"""Webhook acknowledgement: latency and throughput of the real intake next to a bare endpoint.

Both are served by gunicorn with the same settings; the load comes from a separate process so
the client shares no GIL with what is measured. Rounds alternate service/bare so machine noise
hits both sides alike; the median round of each is reported.

    python -m benchmarks.webhook_ack [--events 1000] [--concurrency 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
ATHLETES = 50
WARMUP = 50


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(folder: Path) -> dict[str, str]:
    """Settings for the real service: SQLite database and queue in `folder`."""
    return {
        "STRAVA_VERIFY_TOKEN": "bench",
        "STRAVA_CLIENT_ID": "1",
        "STRAVA_CLIENT_SECRET": "x",
        "SECRET_KEY": "bench",
        "TOKEN_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
        "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
        "STRAVA_BASE_URL": "http://127.0.0.1:9",  # never called: no worker runs
    }


def prepare_service(env: dict[str, str]) -> Any:
    """Create the schema, the athletes events name and the subscription they carry."""
    os.environ.update(env)
    from strava_massage import create_app
    from strava_massage.models import Athlete, Subscription

    app = create_app()
    db = app.extensions["db"]
    db.upgrade()
    with db.session() as session:
        session.add_all([Athlete(id=i) for i in range(1, ATHLETES + 1)])
        session.add(Subscription(id=1, callback_url="http://bench"))
        session.commit()
    return db


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
    url = f"http://127.0.0.1:{port}/webhooks/strava"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url.replace("/webhooks/strava", "/healthz"), timeout=5)
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
                if response.status != 200 or b'"accepted"' not in body:
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


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    # The Procfile's web settings; both servers always get the same.
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/webhook_ack.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="legwork-bench-"))
    env = service_env(folder)
    db = prepare_service(env)
    served = (args.workers, args.threads)
    service, service_url = start_server("strava_massage:create_app()", env, *served)
    bare, bare_url = start_server("benchmarks.bare_app:create_app()", {}, *served)
    rounds: dict[str, list[dict[str, float]]] = {"service": [], "bare": []}
    next_id = 1
    try:
        for url in (service_url, bare_url):
            measure(url, 10**9 + next_id, WARMUP, args.concurrency)
            next_id += WARMUP
        for i in range(args.repeat):
            for name, url in (("service", service_url), ("bare", bare_url)):
                rounds[name].append(measure(url, next_id, args.events, args.concurrency))
                next_id += args.events
            print(f"round {i + 1}/{args.repeat} done", file=sys.stderr)
    finally:
        for proc in (service, bare):
            proc.terminate()
            proc.wait(timeout=30)

    from sqlalchemy import func, select

    from strava_massage.models import Event

    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Event))
    expected = WARMUP + args.events * args.repeat
    if stored != expected:
        raise SystemExit(f"the service stored {stored} events, expected {expected}")

    svc, base = median_round(rounds["service"]), median_round(rounds["bare"])
    p99_ratio = svc["p99_ms"] / base["p99_ms"]
    tput_ratio = svc["events_per_s"] / base["events_per_s"]
    served_as = f"gunicorn gthread {args.workers}x{args.threads}, SQLite database and queue"
    print(f"\nwebhook acknowledgement: {args.events} events, concurrency {args.concurrency}, "
          f"median of {args.repeat} alternating rounds\n({served_as})\n")  # fmt: skip
    print(f"{'':<22}{'p50 ms':>9}{'p99 ms':>9}{'events/s':>10}")
    for name, row in (("service (store+queue)", svc), ("bare Flask endpoint", base)):
        print(f"{name:<22}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['events_per_s']:>10.0f}")
    print(f"{'ratio service/bare':<22}{svc['p50_ms'] / base['p50_ms']:>9.2f}{p99_ratio:>9.2f}"
          f"{tput_ratio:>10.2f}")  # fmt: skip
    checks = {
        "p99 under 50 ms": svc["p99_ms"] < 50,
        "throughput at least half of bare": tput_ratio >= 0.5,
    }
    print(f"\nstored events verified: {stored}")
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "events": args.events, "concurrency": args.concurrency, "repeat": args.repeat,
        "workers": args.workers, "threads": args.threads,
        "service": svc, "bare": base, "rounds": rounds,
        "ratios": {"p99": p99_ratio, "throughput": tput_ratio},
        "checks": checks,
    }, indent=2))  # fmt: skip
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()

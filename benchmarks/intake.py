"""A burst of new runs: webhook intake (acknowledgement) and the worker draining it.

Each round posts `events` create events, one per new run of 20 connected runners, from a
separate client process over 8 keep-alive connections, while the worker consumes (inside
`serve` on the embedded default, one `strava-massage worker` process on scale-out). Intake is
events/s and p99 latency of the answers; the worker's rate is runs noted per second, from its
first Strava call of the round to the round's last PUT (the simulator's clock). Baselines from
the same run: the bare Flask endpoint (bare_app.py) under gunicorn of the same shape, posted
the same bodies after each round; and the bare GET+PUT of an activity, one after another.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import multiprocessing
import statistics
import sys
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import requests

from benchmarks.common import WEB_SHAPE, Stack, free_port, percentile, progress, stop, wait_healthy
from strava_massage.simulator.state import SCOPES

CONCURRENCY = 8
RUNNERS = 20
WARMUP = 50
ctx = multiprocessing.get_context("spawn")  # this process runs the simulator's threads


def load(url: str, bodies: list[bytes], concurrency: int, out: Any) -> None:
    """Client process: POST every body from `concurrency` keep-alive connections."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    queue = iter(bodies)
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}

    def post_all() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                conn.close()
                return
            started = time.perf_counter()
            conn.request("POST", parts.path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 200 or b'"received"' not in answer:
                    failures.append(f"{response.status} {answer[:80]!r}")

    threads = [threading.Thread(target=post_all) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send({"latencies": latencies, "wall": time.perf_counter() - started, "failures": failures})


def measure(url: str, bodies: list[bytes]) -> dict[str, float]:
    """One round from a separate client process: p50/p99 in ms and events per second."""
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=load, args=(url, bodies, CONCURRENCY, sender))
    proc.start()
    result = receiver.recv()
    proc.join()
    if result["failures"]:
        raise SystemExit(f"{len(result['failures'])} failed requests: {result['failures'][0]}")
    ms = [s * 1000 for s in result["latencies"]]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "events_per_s": len(bodies) / result["wall"]}  # fmt: skip


def bare_calls(base_url: str, token: str, ids: list[int], text: str, out: Any) -> None:
    """Baseline process: GET then PUT each activity with requests, one after another."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    times = []
    for activity_id in ids:
        url = f"{base_url}/api/v3/activities/{activity_id}"
        started = time.perf_counter()
        session.get(url, timeout=10).raise_for_status()
        session.put(url, json={"description": text}, timeout=10).raise_for_status()
        times.append(time.perf_counter() - started)
    out.send(times[10:])  # the first ones warm the connection


def bare_round_trips(stack: Stack, count: int, text: str) -> list[float]:
    """Seconds of each bare GET+PUT on the simulator, from a separate process."""
    athlete_id = int(stack.sim.create_athlete()["id"])
    grant = stack.sim.exchange_code(
        stack.sim.client_id, stack.sim.client_secret,
        stack.sim.issue_code(athlete_id, frozenset(SCOPES)),
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ids = [stack.new_run(athlete_id, now) for _ in range(count + 10)]
    receiver, sender = ctx.Pipe(duplex=False)
    args = (stack.sim.url, grant["access_token"], ids, text, sender)
    proc = ctx.Process(target=bare_calls, args=args)
    proc.start()
    times: list[float] = receiver.recv()
    proc.join()
    return times


class Burst:
    """Runs of the connected runners, each a few hours after the runner's previous one."""

    def __init__(self, stack: Stack, runners: list[int], total: int) -> None:
        self.stack, self.runners = stack, runners
        self.next = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            hours=6 * (total // len(runners) + 2)
        )
        self.made = 0

    def bodies(self, count: int) -> tuple[list[int], list[bytes]]:
        """`count` new runs on the simulator and the webhook bodies announcing them."""
        ids, bodies = [], []
        for _ in range(count):
            owner = self.runners[self.made % len(self.runners)]
            self.made += 1
            if self.made % len(self.runners) == 0:
                self.next += dt.timedelta(hours=6)
            run = self.stack.new_run(owner, self.next, km=5 + self.made % 11)
            ids.append(run)
            bodies.append(json.dumps(self.stack.event(run, owner)).encode())
        return ids, bodies


def drained(stack: Stack, since: int, ids: list[int]) -> float:
    """Wait for the worker; its rate (runs/s) on `ids`, each of which must have one PUT."""
    stack.wait_idle()
    paths = {f"/api/v3/activities/{i}" for i in ids}
    calls = [c for c in stack.sim.calls()[since:] if c.path in paths]
    puts = Counter(c.path for c in calls if c.method == "PUT")
    wrong = [p for p in paths if puts[p] != 1]
    if wrong:
        raise SystemExit(f"{len(wrong)} runs without exactly one PUT, e.g. {wrong[0]}")
    last_put = max(c.time for c in calls if c.method == "PUT")
    return len(ids) / (last_put - min(c.time for c in calls))


def run(stack: Stack, events: int, rounds: int) -> dict[str, Any]:
    """Warm up, then `rounds` of: a service burst, its drain, the bare endpoint; medians."""
    runners = [a for a, _ in stack.connect(RUNNERS)]
    burst = Burst(stack, runners, WARMUP + events * rounds)
    port = free_port()
    workers, threads = WEB_SHAPE[stack.kind]
    bare = stack.spawn(
        [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers",
         str(workers), "--threads", str(threads), "--log-level", "warning", "--bind",
         f"127.0.0.1:{port}", "benchmarks.bare_app:create_app()"], "bare.log",
    )  # fmt: skip
    bare_url = f"http://127.0.0.1:{port}/webhooks/strava/x"
    try:
        wait_healthy(f"http://127.0.0.1:{port}", bare, stack.folder / "bare.log", workers)
        ids, bodies = burst.bodies(WARMUP)
        measure(stack.callback, bodies)
        measure(bare_url, bodies)
        drained(stack, 0, ids)
        text = stack.sim.activity(ids[0])["description"]
        out: dict[str, list[dict[str, float]]] = {"service": [], "bare": [], "worker": []}
        for r in range(rounds):
            ids, bodies = burst.bodies(events)
            mark = len(stack.sim.calls())
            out["service"].append(measure(stack.callback, bodies))
            rate = drained(stack, mark, ids)
            out["bare"].append(measure(bare_url, bodies))
            trips = bare_round_trips(stack, 200, text)
            out["worker"].append({"runs_per_s": rate, "bare_per_s": 1 / statistics.median(trips)})
            last = out["service"][-1]
            progress(f"{stack.kind} burst {r + 1}/{rounds}: intake {last['events_per_s']:.0f} "
                     f"ev/s p99 {last['p99_ms']:.0f} ms, worker {rate:.1f} runs/s")  # fmt: skip
    finally:
        stop(bare)
    return {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in out.items()
    } | {"rounds": out, "events": events, "shape": f"{workers}x{threads}"}

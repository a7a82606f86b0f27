"""Pipeline: a webhook to a note on Strava, end to end, next to the bare Strava calls it needs.

Everything runs over real HTTP against the project's Strava simulator (answering at once), on a
real database and queue, with the web app under gunicorn and every worker a separate
`strava-massage worker` process. Three figures, each beside a baseline from the same run:

1. Throughput. Runs are stored with no worker running, then drained by 1, 2 and 4 worker
   processes; beside them, the bare GET and PUT of an activity made with requests, one event
   after another. Overhead per event = time per event of one process of one thread - bare time.
2. Strava calls per processed event over a realistic mix (runs, rides, duplicate deliveries,
   renames, deletions), beside the fewest calls that mix can be handled with.
3. Memory. Peak RSS (VmHWM) of the web and worker processes after the mix, beside their RSS
   when they had just started.

    python -m benchmarks.pipeline [--backend sqlite|postgres] [--events 300] [--repeat 3]
        [--mix-events 10000] [--threads 2] [--web-workers 2] [--web-threads 8]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import logging
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from benchmarks.common import free_port, fresh_postgres, unique_name

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/pipeline.json"
REDIS = "redis://127.0.0.1:6379/13"
BACKENDS = {"sqlite": "SQLite database and queue", "postgres": "PostgreSQL and a Redis queue"}
VERIFY_TOKEN = "bench-verify"  # noqa: S105  (the handshake's shared word, no secret)
# The service's own budget and the simulator's limits, both far above what a run uses: the
# rate budget is not what this benchmark measures.
SERVICE_LIMITS = "1000000,10000000"
SIM_LIMITS = {"short": 10**6, "daily": 10**7, "read_short": 10**6, "read_daily": 10**7}
PROCESSES = (1, 2, 4)
# More runners than worker threads: one runner's events are processed one at a time.
BATCH_ATHLETES = 20
MIX_ATHLETES = 50
HISTORY_RUNS = 6  # per runner, imported at connect time (the backfill), before any timing
WARMUP_RUNS = 2  # per runner of the warm-up batch
DELIVERY_THREADS = 6  # concurrent webhook deliveries from the simulator
MIX_CHUNK = 1000  # deliveries between two waits for the worker
# Out of 100 deliveries: Strava's traffic for a running app is mostly new activities.
MIX = {"runs": 55, "rides": 20, "duplicates": 10, "updates": 10, "deletes": 5}
TARGET_OVERHEAD_MS = 5.0
TARGET_CALL_RATIO = 1.02
TARGET_WEB_MB = 150.0
# The fewest Strava calls per delivery of each kind. A rename takes a GET: the webhook says
# only what changed, and whether a run's distance or sport changed too needs the activity.
FEWEST = {"runs": {"GET": 1, "PUT": 1}, "rides": {"GET": 1}, "updates": {"GET": 1}}
ACTIVITY_PATH = re.compile(r"^/api/v3/activities/(\d+)$")

Echo = Callable[[str], None]


def progress(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


def memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024  # the kernel reports kB
    return found


def children(pid: int) -> list[int]:
    """Direct child processes (gunicorn's workers under its arbiter)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@contextlib.contextmanager
def backend_settings(backend: str, folder: Path) -> Iterator[dict[str, str]]:
    """DATABASE_URL, QUEUE_URL and QUEUE_NAME for `backend`, created here and removed after.

    PostgreSQL gets a database of its own and Redis a queue name of its own (letters, digits
    and underscores: huey drops other characters from a queue name), so concurrent runs and
    the server's other databases are left alone.
    """
    name = unique_name("legwork_pipeline")
    if backend == "sqlite":
        yield {
            "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
            "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
            "QUEUE_NAME": name,
        }
        return
    if backend != "postgres":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    with fresh_postgres(name) as url:
        yield {"DATABASE_URL": url, "QUEUE_URL": REDIS, "QUEUE_NAME": name}


@dataclass
class Worker:
    """One `strava-massage worker` process and the moment it began consuming."""

    proc: subprocess.Popen[bytes]
    spawned_at: float
    log: Path
    ready_at: float | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def follow(self) -> None:
        """Note when the process's log says it consumes (to within 10 ms).

        The process writes its log file itself: copying its lines through this process would
        wake a thread here for every event, competing with the simulator for this process's
        interpreter, which the baseline never has to.
        """
        while self.proc.poll() is None:
            if b"worker consuming" in self.log.read_bytes():
                self.ready_at = time.time()
                break
            time.sleep(0.01)
        self.ready.set()  # ready, or exited: nobody should wait for it any longer


class Pipeline:
    """The simulator (in this process), the web app (gunicorn) and worker processes."""

    def __init__(self, settings: dict[str, str], folder: Path, web: tuple[int, int]) -> None:
        from strava_massage.simulator import Simulator

        self.folder = folder
        self.web_shape = web
        self.sim = Simulator().start()
        self.sim.set_rate_limits(**SIM_LIMITS)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.settings = {
            **settings,
            "STRAVA_BASE_URL": self.sim.url,
            "STRAVA_CLIENT_ID": str(self.sim.client_id),
            "STRAVA_CLIENT_SECRET": self.sim.client_secret,
            "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN,
            "PUBLIC_URL": self.url,
            # One key for the web process that stores tokens and the workers that read them.
            "TOKEN_KEYS": Fernet.generate_key().decode(),
            "SECRET_KEY": secrets.token_urlsafe(32),
            "STRAVA_RATE_LIMITS": SERVICE_LIMITS,
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[Worker] = []
        self.spawned = 0  # worker processes started so far (each logs to a file of its own)
        self.app: Any = None
        self.web_start_mb: dict[int, float] = {}

    # -- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        """Create the schema, serve the web app, and create the webhook subscription."""
        from strava_massage import create_app
        from strava_massage.subscriptions import create_subscription

        self.app = create_app(dict(self.settings))
        self.db.upgrade()
        shape = self.web_shape
        gunicorn = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
                    "--workers", str(shape[0]), "--threads", str(shape[1]),
                    "--log-level", "warning", "--bind", self.url.removeprefix("http://"),
                    "strava_massage:create_app()"]  # fmt: skip
        with (self.folder / "web.log").open("ab") as log:
            self.web = subprocess.Popen(
                gunicorn, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while len(self.web_pids()) < shape[0] or not self.healthy():
            if time.monotonic() > deadline or self.web.poll() is not None:
                raise SystemExit(f"the web app did not start:\n{self.tail('web.log')}")
            time.sleep(0.1)
        # Each gunicorn worker imports the app after the fork: all of them are loaded by now.
        self.web_start_mb = {pid: memory_mb(pid)["VmRSS"] for pid in self.web_pids()}
        create_subscription(self.app)  # the simulator checks the callback through gunicorn

    def close(self) -> None:
        """Stop every process this pipeline started and release its connections."""
        self.stop_workers()
        if self.web is not None:
            self.web.terminate()
            try:
                self.web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()
        self.sim.stop()
        if self.app is not None:
            tasks = self.app.extensions["tasks"]
            tasks.huey.storage.flush_all()  # this run's queue keys only
            tasks.close()
            self.db.dispose()

    def env(self) -> dict[str, str]:
        """The environment of the web and worker processes: the same settings as this app."""
        return {**os.environ, **self.settings, "PYTHONUNBUFFERED": "1"}

    def healthy(self) -> bool:
        """Whether the web app answers its health check."""
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or still importing
            return False

    def web_pids(self) -> list[int]:
        """gunicorn's worker processes (the arbiter only supervises them)."""
        assert self.web is not None
        try:
            return children(self.web.pid)
        except FileNotFoundError:
            return []

    def worker_logs(self, chars: int = 3000) -> str:
        """The end of the newest worker's log."""
        return self.tail(f"worker-{self.spawned}.log", chars)

    def tail(self, name: str, chars: int = 3000) -> str:
        """The end of a log in the run's folder."""
        path = self.folder / name
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    @property
    def db(self) -> Any:
        """This process's handle on the service's database."""
        return self.app.extensions["db"]

    # -- workers -------------------------------------------------------------------------------

    def start_workers(self, count: int, threads: int) -> list[Worker]:
        """Start `count` worker processes of `threads` threads each."""
        command = [sys.executable, "-m", "strava_massage", "worker", "--threads", str(threads)]
        started = []
        for _ in range(count):
            self.spawned += 1
            log = self.folder / f"worker-{self.spawned}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    command, env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
                )
            worker = Worker(proc, time.time(), log)
            threading.Thread(target=worker.follow, daemon=True).start()
            started.append(worker)
        self.workers += started
        return started

    def wait_ready(self, workers: list[Worker], timeout: float = 60) -> float:
        """Wait until every worker consumes; returns when the last one began."""
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.ready.wait(max(0.0, deadline - time.monotonic()))
            if worker.ready_at is None:
                raise SystemExit(f"a worker did not start:\n{self.worker_logs()}")
        return max(w.ready_at for w in workers if w.ready_at is not None)

    def stop_workers(self) -> None:
        """SIGTERM every worker (running jobs finish) and wait for it."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        self.workers = []

    # -- database ------------------------------------------------------------------------------

    def last_event_id(self) -> int:
        """The newest stored event's id (0 when there is none)."""
        from strava_massage.models import Event

        with self.db.session() as session:
            return int(session.scalar(select(func.max(Event.id))) or 0)

    def wait_idle(self, timeout: float) -> None:
        """Wait until no stored event is pending or in progress."""
        from strava_massage.models import Event

        # A count, not the rows: this poll shares the machine with what it waits for.
        still_open = (
            select(func.count())
            .select_from(Event)
            .where(Event.status.in_(("pending", "processing")))
        )
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as session:
                left = session.scalar(still_open)
            if not left:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{left} events still open:\n{self.worker_logs()}")
            if any(w.proc.poll() is not None for w in self.workers):
                raise SystemExit(f"a worker exited:\n{self.worker_logs()}")
            # Rates come from the events' finish times, not from this poll: it can be lazy,
            # and leave the simulator in this process the interpreter.
            time.sleep(0.2)

    def wait_queue_empty(self, timeout: float) -> float:
        """Wait until the queue holds no task; returns when it was first seen empty (to 10 ms).

        A runner's drain handles their later events before those events' own tasks come up;
        each such task still costs a dequeue and a read. Waiting for them charges every batch
        its own (left in the queue, they would be charged to the next batch measured).
        """
        tasks = self.app.extensions["tasks"]
        deadline = time.monotonic() + timeout
        while tasks.depth():
            if time.monotonic() > deadline:
                raise SystemExit(f"{tasks.depth()} tasks still queued:\n{self.worker_logs()}")
            time.sleep(0.01)
        return time.time()

    def events_after(self, mark: int) -> list[Any]:
        """Events stored after event `mark`: (id, aspect, status, outcome, finished_at)."""
        from strava_massage.models import Event

        columns = (Event.id, Event.aspect_type, Event.status, Event.outcome, Event.finished_at)
        with self.db.session() as session:
            return list(session.execute(select(*columns).where(Event.id > mark)))

    # -- runners and activities ---------------------------------------------------------------

    def connect(self, count: int) -> list[int]:
        """New runners with a little history, connected through the service's OAuth flow."""
        ids = [int(self.sim.create_athlete()["id"]) for _ in range(count)]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for athlete_id in ids:
            for week in range(HISTORY_RUNS):
                when = now - dt.timedelta(days=7 * week + 3)
                self.sim.create_activity(athlete_id, start_date_local=when, fire=False)
            when = now - dt.timedelta(days=5)
            self.sim.create_activity(
                athlete_id, sport_type="Ride", start_date_local=when, fire=False
            )

        def connect_one(athlete_id: int) -> None:
            _, response = self.sim.connect_via(self.url, athlete_id)
            response.raise_for_status()

        with ThreadPoolExecutor(DELIVERY_THREADS) as pool:
            list(pool.map(connect_one, ids))
        return ids

    def deliver(self, jobs: list[Callable[[], Any]]) -> None:
        """Run simulator actions that deliver webhooks, a few at a time, as Strava would."""
        with ThreadPoolExecutor(DELIVERY_THREADS) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def drain(self, threads: int, timeout: float = 300) -> None:
        """One worker process until every stored event is finished (history, warm-up)."""
        self.start_workers(1, threads)
        try:
            self.wait_idle(timeout)
            self.wait_queue_empty(timeout)
        finally:
            self.stop_workers()

    def bearer(self, athlete_id: int) -> str:
        """An access token for a runner, from the simulator's own OAuth (no service involved)."""
        from strava_massage.simulator.state import SCOPES

        code = self.sim.issue_code(athlete_id, frozenset(SCOPES))
        grant = self.sim.exchange_code(self.sim.client_id, self.sim.client_secret, code)
        return str(grant["access_token"])


# -- 1. throughput -------------------------------------------------------------------------------


def bare_calls(base_url: str, token: str, ids: list[int], description: str, out: Any) -> None:
    """Baseline, in its own process: GET then PUT each activity with requests, one by one."""
    session = requests.Session()  # keep-alive, as the service's adapter does
    session.headers["Authorization"] = f"Bearer {token}"

    def one(activity_id: int) -> None:
        url = f"{base_url}/api/v3/activities/{activity_id}"
        got = session.get(url, timeout=10)
        got.raise_for_status()
        got.json()  # the service parses both answers too
        put = session.put(url, json={"description": description}, timeout=10)
        put.raise_for_status()
        put.json()

    for activity_id in ids[:10]:  # warm the connection and the server's code paths
        one(activity_id)
    started = time.perf_counter()
    for activity_id in ids[10:]:
        one(activity_id)
    out.send((time.perf_counter() - started) / len(ids[10:]))


def measure_bare(stack: Pipeline, athlete_id: int, token: str, events: int, text: str) -> float:
    """Seconds per event of the bare GET and PUT, from a separate process."""
    ids = [int(stack.sim.create_activity(athlete_id, fire=False)["id"]) for _ in range(events + 10)]
    # spawn, not fork: this process runs the simulator's threads.
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=bare_calls, args=(stack.sim.url, token, ids, text, sender))
    proc.start()
    per_event = float(receiver.recv())
    proc.join()
    return per_event


def fire_runs(stack: Pipeline, athletes: list[int], per_athlete: int) -> list[int]:
    """Create runs (each announced by webhook), runners taking turns; returns their ids."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    plan = [(a, j) for j in range(per_athlete) for a in athletes]
    ids: list[int] = []
    lock = threading.Lock()

    def create(athlete_id: int, j: int) -> None:
        when = now - dt.timedelta(hours=20 * (per_athlete - j))  # most recent last
        run = stack.sim.create_activity(
            athlete_id, start_date_local=when, distance=5000.0 + 97 * j, moving_time=1500 + 29 * j
        )
        with lock:
            ids.append(int(run["id"]))

    stack.deliver([lambda a=a, j=j: create(a, j) for a, j in plan])
    return ids


def timestamp(moment: dt.datetime) -> float:
    """Epoch seconds of a stored time (SQLite hands back naive UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def drain_batch(
    stack: Pipeline, athletes: list[int], per_athlete: int, processes: int, threads: int
) -> tuple[dict[str, float], list[int]]:
    """Store a batch of runs with no worker running, then time `processes` workers on it."""
    mark = stack.last_event_id()
    runs = fire_runs(stack, athletes, per_athlete)
    stored = stack.events_after(mark)
    if len(stored) != len(runs) or any(e.status != "pending" for e in stored):
        raise SystemExit(f"{len(runs)} runs announced, {len(stored)} events stored pending")
    workers = stack.start_workers(processes, threads)
    try:
        stack.wait_idle(timeout=120 + len(runs))
        emptied = stack.wait_queue_empty(timeout=120)
        all_ready = stack.wait_ready(workers)
    finally:
        stack.stop_workers()
    events = stack.events_after(mark)
    wrong = [e for e in events if e.status != "done" or not (e.outcome or "").startswith("note")]
    if wrong:
        raise SystemExit(f"{len(wrong)} events did not end with a note, e.g. {wrong[0]}")
    finished = sorted(timestamp(e.finished_at) for e in events)
    # Until the batch's last task left the queue: the tasks of events a drain already handled
    # come after the events, and are part of the batch's work.
    end = max(emptied, finished[-1])
    # From when the last process began consuming: start-up (imports, the start-up sweep) is
    # not throughput, and with K processes on two cores it would weigh on the larger K most.
    after = [t for t in finished if t > all_ready]
    if len(after) >= max(20, len(finished) // 4):
        rate = len(after) / (end - all_ready)
    else:  # the batch was mostly done before the last process came up
        rate = (len(finished) - 1) / (end - finished[0])
    spawned = min(w.spawned_at for w in workers)
    return {
        "events_per_s": rate,
        "wall_with_startup_s": end - spawned,
        "startup_s": all_ready - spawned,
        "drained_tasks_s": end - finished[-1],  # the tail of tasks whose event was done
        "events": len(events),
    }, runs


def throughput(
    stack: Pipeline, events: int, repeat: int, threads: int, echo: Echo
) -> dict[str, Any]:
    """Rounds of: the bare calls, then each worker shape on a batch of fresh runners.

    A batch has `events` runs per worker process (20 runners per process, each with the same
    number of runs), so the larger shapes still have work left once all their processes run.
    """
    shapes = [(1, 1), *((k, threads) for k in PROCESSES if (k, threads) != (1, 1))]
    per_athlete = max(1, events // BATCH_ATHLETES)
    wanted = {(r, shape): BATCH_ATHLETES * shape[0] for r in range(repeat) for shape in shapes}
    echo(f"connecting {sum(wanted.values()) + BATCH_ATHLETES} runners")
    # Fresh runners for every batch, so every batch starts from the same history.
    groups = {key: stack.connect(count) for key, count in wanted.items()}
    warmup_runs = fire_runs(stack, stack.connect(BATCH_ATHLETES), WARMUP_RUNS)
    stack.drain(threads)  # the history imports and the warm-up batch
    # The baseline PUTs exactly what the service wrote: a real note's bytes.
    text = stack.sim.activity(warmup_runs[0])["description"]
    bare_athlete = int(stack.sim.create_athlete()["id"])
    token = stack.bearer(bare_athlete)

    rounds: dict[str, list[dict[str, float]]] = {"bare": []}
    all_runs = list(warmup_runs)
    for r in range(repeat):
        per_event = measure_bare(stack, bare_athlete, token, events, text)
        rounds["bare"].append({"events_per_s": 1 / per_event, "ms_per_event": per_event * 1000})
        echo(f"round {r + 1}/{repeat}: bare GET+PUT {per_event * 1000:.2f} ms/event")
        for processes, n_threads in shapes:
            label = f"{processes}x{n_threads}"
            athletes = groups[r, (processes, n_threads)]
            row, runs = drain_batch(stack, athletes, per_athlete, processes, n_threads)
            row["ms_per_event"] = 1000 / row["events_per_s"]
            rounds.setdefault(label, []).append(row)
            all_runs += runs
            echo(
                f"round {r + 1}/{repeat}: {processes} process(es) x {n_threads} thread(s) "
                f"{row['events_per_s']:.1f} events/s (start-up {row['startup_s']:.1f} s)"
            )
    check_notes(stack, all_runs)
    median = {
        label: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for label, rows in rounds.items()
    }
    overhead = median["1x1"]["ms_per_event"] - median["bare"]["ms_per_event"]
    return {
        "runs_per_process": per_athlete * BATCH_ATHLETES,
        "runs_checked": len(all_runs),
        "median": median,
        "rounds": rounds,
        "overhead_ms": overhead,
        "ratio_1x1_to_bare": median["1x1"]["ms_per_event"] / median["bare"]["ms_per_event"],
    }


def check_notes(stack: Pipeline, runs: list[int], gone: frozenset[int] = frozenset()) -> None:
    """Every run got exactly one PUT and carries exactly one note block (unless deleted)."""
    from strava_massage.merge import BLOCK_START

    puts = Counter(c.path for c in stack.sim.calls("PUT", "/api/v3/activities"))
    doubled = [r for r in runs if puts[f"/api/v3/activities/{r}"] != 1]
    blocks = [
        r
        for r in runs
        if r not in gone and stack.sim.activity(r)["description"].count(BLOCK_START) != 1
    ]
    if doubled or blocks:
        raise SystemExit(f"runs without exactly one PUT: {doubled[:5]}; one block: {blocks[:5]}")


# -- 2 and 3. calls over a realistic mix, and memory ---------------------------------------------


@dataclass
class MixTally:
    """Deliveries, Strava calls and the fewest possible calls, by kind of event."""

    delivered: Counter[str] = field(default_factory=Counter)
    calls: dict[str, Counter[str]] = field(default_factory=dict)
    minimum: Counter[str] = field(default_factory=Counter)

    def add_call(self, kind: str, method: str) -> None:
        """Count one call the simulator answered."""
        self.calls.setdefault(kind, Counter())[method] += 1


def attribute(
    tally: MixTally, calls: list[Any], kind_of: dict[int, str], duplicated: set[int]
) -> None:
    """Charge each call to the kind of event that made it.

    A call on an activity beyond that activity's minimum goes to "duplicates" when the
    activity was delivered twice, else to the activity's own kind: the excess is the news.
    """
    seen: dict[int, Counter[str]] = {}
    for call in calls:
        match = ACTIVITY_PATH.match(call.path)
        activity_id = int(match.group(1)) if match else None
        kind = kind_of.get(activity_id, "other") if activity_id is not None else "other"
        if activity_id is not None and kind in ("runs", "rides", "updates", "deletes"):
            count = seen.setdefault(activity_id, Counter())
            count[call.method] += 1
            allowed = FEWEST.get(kind, {}).get(call.method, 0)
            if count[call.method] > allowed and activity_id in duplicated:
                kind = "duplicates"
        tally.add_call(kind, call.method)


def announce(stack: Pipeline, activity_id: int, owner: int, event_time: int, times: int) -> None:
    """Deliver one create event `times` times with the same body (a redelivery dedupes)."""
    for _ in range(times):
        statuses = stack.sim.fire_event(
            "activity", activity_id, "create", owner, event_time=event_time
        )
        if statuses != [200]:
            raise SystemExit(f"the webhook answered {statuses}")


def mix(
    stack: Pipeline, deliveries: int, threads: int, seed: int, echo: Echo, earlier_webhooks: int
) -> dict[str, Any]:
    """Deliver the mix in chunks to one running worker; count its calls, then read memory."""
    rng = random.Random(seed)
    athletes = stack.connect(MIX_ATHLETES)
    stack.drain(threads)  # their history imports
    worker = stack.start_workers(1, threads)[0]
    stack.wait_ready([worker])
    worker_start = memory_mb(worker.proc.pid)["VmRSS"]
    stack.sim.reset_calls()  # from here on, only the mix's calls
    mark = stack.last_event_id()
    tally = MixTally()
    runs: list[int] = []
    gone: set[int] = set()
    per_athlete = max(1, deliveries * (MIX["runs"] + MIX["rides"]) // 100 // MIX_ATHLETES)
    spacing = dt.timedelta(days=56) / per_athlete  # about eight weeks of training
    first_day = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=56)
    made: Counter[int] = Counter()
    calls_seen = 0

    def settle(kind_of: dict[int, str], duplicated: set[int], timeout: float) -> None:
        """Wait for the worker, then charge the calls it made meanwhile."""
        nonlocal calls_seen
        stack.wait_idle(timeout)
        calls = stack.sim.calls()
        attribute(tally, calls[calls_seen:], kind_of, duplicated)
        calls_seen = len(calls)

    done = 0
    try:
        while done < deliveries:
            size = min(MIX_CHUNK, deliveries - done)
            counts = {kind: size * share // 100 for kind, share in MIX.items()}
            counts["runs"] += size - sum(counts.values())  # rounding goes to runs
            tally.delivered.update(counts)
            for kind, count in counts.items():
                tally.minimum[kind] += count * sum(FEWEST.get(kind, {}).values())

            # New runs and rides; some delivered twice, as Strava retries a slow answer.
            kinds = ["runs"] * counts["runs"] + ["rides"] * counts["rides"]
            rng.shuffle(kinds)
            kind_of: dict[int, str] = {}
            owner: dict[int, int] = {}
            for i, kind in enumerate(kinds):
                athlete_id = athletes[i % MIX_ATHLETES]
                activity = stack.sim.create_activity(
                    athlete_id, sport_type="Run" if kind == "runs" else "Ride",
                    start_date_local=first_day + spacing * made[athlete_id],
                    distance=round(rng.uniform(4000, 21000)), fire=False,
                )  # fmt: skip
                made[athlete_id] += 1
                kind_of[int(activity["id"])] = kind
                owner[int(activity["id"])] = athlete_id
            runs += [a for a, kind in kind_of.items() if kind == "runs"]
            duplicated = set(rng.sample(sorted(kind_of), counts["duplicates"]))
            event_time = int(time.time())

            stack.deliver(
                [
                    functools.partial(
                        announce, stack, a, owner[a], event_time, 1 + (a in duplicated)
                    )
                    for a in kind_of
                ]
            )
            settle(kind_of, duplicated, timeout=300 + size)

            # Later, some of them are renamed on strava.com and some deleted.
            chosen = rng.sample(sorted(kind_of), counts["updates"] + counts["deletes"])
            renamed, deleted = chosen[: counts["updates"]], chosen[counts["updates"] :]
            jobs: list[Callable[[], Any]] = [
                lambda a=a: stack.sim.update_activity(a, name=f"Renamed {a}") for a in renamed
            ]
            jobs += [lambda a=a: stack.sim.delete_activity(a) for a in deleted]
            stack.deliver(jobs)
            gone.update(deleted)
            later = {a: "updates" for a in renamed} | {a: "deletes" for a in deleted}
            settle(later, set(), timeout=300 + size)
            done += size
            echo(f"mix: {done}/{deliveries} deliveries processed")
        memory = {"worker": memory_mb(worker.proc.pid)}
        memory |= {f"web {pid}": memory_mb(pid) for pid in stack.web_pids()}
    finally:
        stack.stop_workers()

    events = stack.events_after(mark)
    expected = deliveries - tally.delivered["duplicates"]
    statuses = Counter(e.status for e in events)
    if len(events) != expected or set(statuses) != {"done"}:
        outcomes = Counter(e.outcome for e in events if e.status != "done")
        raise SystemExit(f"{len(events)} events stored (expected {expected}): {outcomes}")
    check_notes(stack, runs, frozenset(gone))
    total = sum(sum(c.values()) for c in tally.calls.values())
    fewest = sum(tally.minimum.values())
    web_peaks = {k: v["VmHWM"] for k, v in memory.items() if k.startswith("web")}
    return {
        "deliveries": deliveries,
        "stored_events": len(events),
        "delivered": dict(tally.delivered),
        "calls": {kind: dict(c) for kind, c in tally.calls.items()},
        "minimum": dict(tally.minimum),
        "total_calls": total,
        "minimum_calls": fewest,
        "calls_per_event": total / len(events),
        "minimum_per_event": fewest / len(events),
        "ratio": total / fewest,
        "memory": {
            "web_start_mb": max(stack.web_start_mb.values()),
            "web_peak_mb": max(web_peaks.values()),
            "worker_start_mb": worker_start,
            "worker_peak_mb": memory["worker"]["VmHWM"],
            "webhooks_served": deliveries + earlier_webhooks,
            "processes": memory,
        },
    }


# -- running and reporting -----------------------------------------------------------------------


def run(
    events: int = 300,
    backend: str = "sqlite",
    *,
    repeat: int = 3,
    mix_events: int = 10_000,
    threads: int = 2,
    web: tuple[int, int] = (2, 8),
    seed: int = 7,
    json_path: Path | None = RESULTS,
    echo: Echo = progress,
    show: bool = True,
) -> dict[str, Any]:
    """Measure throughput, calls per event and memory on one backend; print and save them.

    `events` runs per worker process in a timed batch, `repeat` alternating rounds (medians
    are reported), `mix_events` webhook deliveries in the mix, `threads` per worker process,
    `web` gunicorn's (processes, threads). Results are merged into `json_path` by backend.
    """
    # The simulator logs every delivered event at INFO, Alembic every migration: noise here.
    for name in ("strava_massage.simulator", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="legwork-pipeline-"))
    try:
        with backend_settings(backend, folder) as settings:
            stack = Pipeline(settings, folder, web)
            try:
                stack.start()
                flow = throughput(stack, events, repeat, threads, echo)
                calls = mix(stack, mix_events, threads, seed, echo, flow["runs_checked"])
            finally:
                stack.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {
        "backend": backend,
        "described": BACKENDS[backend],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repeat": repeat,
        "threads": threads,
        "web": {"workers": web[0], "threads": web[1]},
        "throughput": flow,
        "mix": calls,
    }
    result["checks"] = {
        f"overhead per event under {TARGET_OVERHEAD_MS:g} ms": flow["overhead_ms"]
        < TARGET_OVERHEAD_MS,
        "Strava calls within 2 % of the minimum": calls["ratio"] <= TARGET_CALL_RATIO,
        f"web peak RSS under {TARGET_WEB_MB:g} MB": calls["memory"]["web_peak_mb"] < TARGET_WEB_MB,
    }
    if show:
        report(result)
    if json_path is not None:
        save(result, json_path)
        if show:
            print(f"results written to {json_path}")
    return result


def report(result: dict[str, Any]) -> None:
    """Print the three tables and the verdicts."""
    flow, calls = result["throughput"], result["mix"]
    med = flow["median"]
    web = result["web"]
    print(
        f"\npipeline, {result['described']}: webhook to note, simulator latency 0\n"
        f"web: gunicorn gthread {web['workers']}x{web['threads']}; workers: `strava-massage "
        f"worker` processes, {flow['runs_per_process']} runs each per batch\n"
        "events/s from when every worker process consumed until the batch's last task left "
        f"the queue; median of {result['repeat']} alternating rounds\n"
    )
    print(f"{'':<34}{'events/s':>10}{'ms/event':>10}{'vs 1x1':>8}{'start-up s':>12}")
    base = med["1x1"]["events_per_s"]
    print(
        f"{'bare GET+PUT (requests, 1 by 1)':<34}{med['bare']['events_per_s']:>10.1f}"
        f"{med['bare']['ms_per_event']:>10.2f}"
    )
    for label, row in med.items():
        if label == "bare":
            continue
        processes, threads = (int(n) for n in label.split("x"))
        name = f"{processes} worker{'s' * (processes > 1)} x {threads} thread{'s' * (threads > 1)}"
        # Per-event time only where one thing runs at a time: elsewhere wall/event is no cost.
        per_event = f"{row['ms_per_event']:>10.2f}" if label == "1x1" else f"{'':>10}"
        print(
            f"{name:<34}{row['events_per_s']:>10.1f}{per_event}"
            f"{row['events_per_s'] / base:>8.2f}{row['startup_s']:>12.1f}"
        )
    print(
        f"\nservice overhead per event (1x1 minus bare): {flow['overhead_ms']:.2f} ms "
        f"(1x1 takes {flow['ratio_1x1_to_bare']:.1f}x the bare calls)"
    )
    print(f"notes checked: {flow['runs_checked']} runs, one PUT and one note block each")

    print(
        f"\nStrava calls over a mix of {calls['deliveries']} webhook deliveries "
        f"({calls['stored_events']} events stored; duplicates are dropped at intake)\n"
        "minimum: GET+PUT per new run, GET per ride, none per duplicate or delete, and GET per "
        "rename\n(taken as the minimum: the event names the new title only)\n"
    )
    print(f"{'':<12}{'delivered':>10}{'GET':>8}{'PUT':>8}{'other':>7}{'calls':>8}{'minimum':>9}")
    kinds = [*MIX, *(k for k in calls["calls"] if k not in MIX)]
    for kind in kinds:
        made = Counter(calls["calls"].get(kind, {}))
        get, put = made.pop("GET", 0), made.pop("PUT", 0)
        print(
            f"{kind:<12}{calls['delivered'].get(kind, 0):>10}{get:>8}{put:>8}"
            f"{sum(made.values()):>7}{get + put + sum(made.values()):>8}"
            f"{calls['minimum'].get(kind, 0):>9}"
        )
    print(
        f"{'total':<12}{calls['deliveries']:>10}{'':>23}{calls['total_calls']:>8}"
        f"{calls['minimum_calls']:>9}"
    )
    print(
        f"calls per processed event {calls['calls_per_event']:.3f}, minimum "
        f"{calls['minimum_per_event']:.3f}: ratio {calls['ratio']:.4f}"
    )

    memory = calls["memory"]
    print(
        f"\nmemory after the mix (one worker process of {result['threads']} threads; "
        f"{memory['webhooks_served']} webhook deliveries to the web in all)\n"
    )
    print(f"{'':<28}{'RSS at start MB':>16}{'peak RSS MB':>13}{'ratio':>7}")
    for name, start, peak in (
        ("web (largest gunicorn worker)", memory["web_start_mb"], memory["web_peak_mb"]),
        ("worker process", memory["worker_start_mb"], memory["worker_peak_mb"]),
    ):
        print(f"{name:<28}{start:>16.1f}{peak:>13.1f}{peak / start:>7.2f}")
    print()
    for label, ok in result["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")


def save(result: dict[str, Any], path: Path) -> None:
    """Merge this backend's results into the JSON file, keeping the other backend's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        saved = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        saved = {}
    saved[result["backend"]] = result
    path.write_text(json.dumps(saved, indent=2, default=str))


def main() -> None:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="sqlite")
    parser.add_argument("--events", type=int, default=300, help="runs per worker process [300]")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds [3]")
    parser.add_argument("--mix-events", type=int, default=10_000, help="deliveries [10000]")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker [2]")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes [2]")
    parser.add_argument("--web-threads", type=int, default=8, help="threads each [8]")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    run(
        args.events,
        args.backend,
        repeat=args.repeat,
        mix_events=args.mix_events,
        threads=args.threads,
        web=(args.web_workers, args.web_threads),
        json_path=args.json,
    )


if __name__ == "__main__":
    main()

"""What the benchmarks share: a backend, the service's processes, the simulator, the clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from strava_massage.db import Database
from strava_massage.models import Athlete, Event
from strava_massage.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
# The machine's servers (see the README's Tests section); each run makes its own database.
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
BACKENDS = {
    "embedded": "SQLite database and queue, `strava-massage serve` (web + worker in one process)",
    "scale-out": "PostgreSQL and Redis, gunicorn 2x8 web + `strava-massage worker` processes",
}
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 (a benchmark's own)
WEB_SHAPE = {"embedded": (1, 8), "scale-out": (2, 8)}  # gunicorn processes x threads


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A name of letters, digits and underscores (huey drops other characters from queues)."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def progress(message: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@contextlib.contextmanager
def fresh_postgres(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{POSTGRES.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            # FORCE: a process that did not stop in time must not keep the database alive.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@contextlib.contextmanager
def backend(kind: str, folder: Path) -> Iterator[dict[str, str]]:
    """DATABASE_URL, QUEUE_URL and QUEUE_NAME of a fresh backend, removed afterwards."""
    name = unique_name("legwork_bench")
    if kind == "embedded":
        yield {
            "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
            "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
            "QUEUE_NAME": name,
        }
        return
    import redis

    with fresh_postgres(name) as url:
        try:
            yield {"DATABASE_URL": url, "QUEUE_URL": REDIS, "QUEUE_NAME": name}
        finally:
            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(match=f"*{name}*"))
            if keys:
                client.delete(*keys)
            client.close()


class Stack:
    """The simulator (in this process), the service's web and worker processes, a backend."""

    def __init__(self, kind: str, settings: dict[str, str], folder: Path) -> None:
        self.kind, self.folder = kind, folder
        self.sim = Simulator().start()
        # Far beyond any run here: the rate budget is not what these benchmarks measure.
        self.sim.set_rate_limits(short=10**6, daily=10**7, read_short=10**6, read_daily=10**7)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.settings = {
            **settings,
            "STRAVA_BASE_URL": self.sim.url,
            "STRAVA_CLIENT_ID": str(self.sim.client_id),
            "STRAVA_CLIENT_SECRET": self.sim.client_secret,
            "STRAVA_VERIFY_TOKEN": "bench-verify",
            "STRAVA_RATE_LIMITS": "1000000,10000000",  # beyond any run here, and int32 x 10
            "PUBLIC_URL": self.url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SECRET_KEY": secrets.token_urlsafe(32),
            # One key for the web process that stores tokens and the workers that read them.
            "TOKEN_KEYS": Fernet.generate_key().decode(),
        }
        self.callback = f"{self.url}/webhooks/strava/{WEBHOOK_SECRET}"
        self.db = Database(settings["DATABASE_URL"])
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.start_mb: dict[str, float] = {}

    def env(self) -> dict[str, str]:
        """The service processes' environment."""
        return {**os.environ, **self.settings, "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str) -> str:
        """Run `python -m strava_massage ARGS` to completion; returns its output."""
        done = subprocess.run(
            [sys.executable, "-m", "strava_massage", *args],
            env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"strava_massage {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def spawn(self, command: list[str], log: str) -> subprocess.Popen[bytes]:
        """A service process writing its log into the run's folder."""
        with (self.folder / log).open("ab") as out:
            return subprocess.Popen(
                command, env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def start(self) -> None:
        """Schema, web process(es), a worker process on scale-out, the subscription."""
        self.cli("db", "upgrade")
        port = self.url.rsplit(":", 1)[1]
        if self.kind == "embedded":
            command = ["-m", "strava_massage", "serve", "--port", port, "--threads", "8"]
        else:
            workers, threads = WEB_SHAPE[self.kind]
            command = ["-m", "gunicorn", "--worker-class", "gthread", "--workers", str(workers),
                       "--threads", str(threads), "--log-level", "warning", "--bind",
                       f"127.0.0.1:{port}", "strava_massage:create_app()"]  # fmt: skip
        self.web = self.spawn([sys.executable, *command], "web.log")
        wait_healthy(self.url, self.web, self.folder / "web.log", WEB_SHAPE[self.kind][0])
        self.start_mb["web"] = max(memory_mb(p)["VmRSS"] for p in self.web_pids())
        if self.kind == "scale-out":
            self.start_worker()
        self.cli("subscription", "create")
        subscription = self.sim.subscription
        assert subscription is not None
        self.subscription_id = int(subscription["id"])

    def start_worker(self) -> subprocess.Popen[bytes]:
        """One `strava-massage worker` process (scale-out), once it consumes."""
        log = f"worker-{len(self.workers) + 1}.log"
        proc = self.spawn([sys.executable, "-m", "strava_massage", "worker"], log)
        deadline = time.monotonic() + 60
        while b"worker consuming" not in (self.folder / log).read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self.tail(log)}")
            time.sleep(0.05)
        self.workers.append(proc)
        self.start_mb.setdefault("worker", memory_mb(proc.pid)["VmRSS"])
        return proc

    def web_pids(self) -> list[int]:
        """The processes that serve requests (gunicorn's workers)."""
        assert self.web is not None
        return children(self.web.pid)

    def memory(self) -> dict[str, dict[str, float]]:
        """Current and peak RSS of every service process, by role."""
        procs = {f"web {pid}": pid for pid in self.web_pids()}
        procs |= {f"worker {w.pid}": w.pid for w in self.workers if w.poll() is None}
        return {name: memory_mb(pid) for name, pid in procs.items()}

    def tail(self, log: str, chars: int = 3000) -> str:
        """The end of a log in the run's folder."""
        path = self.folder / log
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def connect(self, count: int) -> list[tuple[int, requests.Session]]:
        """New runners connected through the service's OAuth flow: (id, logged-in browser)."""
        out = []
        for _ in range(count):
            athlete_id = int(self.sim.create_athlete(measurement_preference="meters")["id"])
            browser, response = self.sim.connect_via(self.url, athlete_id)
            if response.status_code != 200:
                raise SystemExit(
                    f"connecting answered {response.status_code}:\n{self.tail('web.log')}"
                )
            out.append((athlete_id, browser))
            # One at a time: on SQLite, a connect beside the previous runner's history import
            # can fail with "database is locked" (a 500; seen 2026-12-03, reported).
            self.wait_idle()
        return out

    def new_run(self, athlete_id: int, when: dt.datetime, km: float = 10.0) -> int:
        """A run on the simulator, not announced yet; returns its id."""
        run = self.sim.create_activity(
            athlete_id, start_date_local=when, distance=km * 1000, moving_time=int(km * 330),
            fire=False,
        )  # fmt: skip
        return int(run["id"])

    def event(self, activity_id: int, owner: int, aspect: str = "create") -> dict[str, Any]:
        """A webhook body as Strava sends it."""
        return {"aspect_type": aspect, "event_time": int(time.time()), "object_id": activity_id,
                "object_type": "activity", "owner_id": owner,
                "subscription_id": self.subscription_id, "updates": {}}  # fmt: skip

    def wait_idle(self, timeout: float = 600) -> None:
        """Until no stored event is open and no history import runs."""
        open_events = (
            select(func.count())
            .select_from(Event)
            .where(Event.status.in_(("pending", "processing")))
        )
        importing = (
            select(func.count())
            .select_from(Athlete)
            .where(Athlete.backfill_status.in_(("pending", "running")))
        )
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as session:
                left = (session.scalar(open_events) or 0) + (session.scalar(importing) or 0)
                failed = session.scalar(select(func.count()).where(Event.status == "failed"))
            if failed:
                log = "worker-1.log" if self.workers else "web.log"
                raise SystemExit(f"{failed} events failed:\n{self.tail(log)}")
            if not left:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{left} events still open:\n{self.tail('web.log')}")
            dead = [w for w in [self.web, *self.workers] if w is not None and w.poll() is not None]
            if dead:
                raise SystemExit(f"a service process exited:\n{self.tail('web.log')}")
            time.sleep(0.1)

    def stop_workers(self) -> None:
        """SIGTERM the worker processes (running jobs finish) and wait for them."""
        for proc in self.workers:
            stop(proc)
        self.workers = []

    def close(self) -> None:
        """Stop every process started here and release the connections."""
        self.stop_workers()
        if self.web is not None:
            stop(self.web)
        self.sim.stop()
        self.db.dispose()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process, then SIGKILL it if it does not end in 40 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, processes: int) -> None:
    """Until /healthz answers and gunicorn has all its worker processes."""
    deadline = time.monotonic() + 60
    while True:
        try:
            ready = len(children(proc.pid)) >= processes
            if ready and requests.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still importing
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{url} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def stack(kind: str) -> Iterator[Stack]:
    """A started stack on a fresh backend; everything is stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="legwork-bench-"))
    try:
        with backend(kind, folder) as settings:
            running = Stack(kind, settings, folder)
            try:
                running.start()
                yield running
            finally:
                running.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

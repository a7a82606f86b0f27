"""The task queue (huey): a SQLite file by default, Redis to scale out.

Tasks are registered on the huey instance inside the app factory, so nothing is built at
import time, and each task runs inside its app's context.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer
from redis import BlockingConnectionPool

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)


def make_huey(url: str, name: str = "strava-massage", max_connections: int = 20) -> Huey:
    """A huey instance for QUEUE_URL: `sqlite:///path` or `redis://...`."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        # A writer waits up to 30 s for another process's enqueue or dequeue to finish.
        return SqliteHuey(
            name, filename=str(path), results=False, timeout=30, factory=_QueueConnection
        )
    if url.startswith(("redis://", "rediss://")):
        # A blocking pool: a burst waits for a free connection instead of failing with
        # "too many connections" when every one is in use.
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        # Workers block on BRPOP; a short read timeout lets a SIGTERM'd worker exit promptly.
        return RedisHuey(name, connection_pool=pool, results=False, read_timeout=0.25)
    raise ValueError(f"QUEUE_URL must be sqlite:///path or redis://...; got {url.split(':')[0]}")


class _QueueConnection(sqlite3.Connection):
    """The SQLite queue's connections: synchronous=NORMAL, as the database's (db.py).

    In WAL mode a commit then waits for no fsync: an enqueue costs a write into the WAL file,
    which a crashed or killed process does not lose. The queue is a hint, not the record: a
    task lost with the host's power is the sweep's to re-enqueue from the events table.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous=NORMAL")


@dataclass
class Tasks:
    """The app's huey instance and its registered tasks."""

    huey: Huey
    process_event: Any
    sweep: Any

    def enqueue(self, event_id: int, delay: float = 0) -> None:
        """Queue processing of a stored event, now or after `delay` seconds."""
        if delay > 0:
            self.process_event.schedule(args=(event_id,), delay=delay)
        else:
            self.process_event(event_id)

    def close(self) -> None:
        """Release the queue's connections (tests and shutdown)."""
        pool = getattr(self.huey.storage, "pool", None)  # RedisStorage's connection pool
        if pool is not None:
            pool.disconnect()
        else:
            self.huey.storage.close()

    def depth(self) -> int:
        """Tasks waiting in the queue (not counting scheduled ones)."""
        return int(self.huey.pending_count())


def init_app(app: Flask) -> Tasks:
    """Create the queue and register the tasks, each run inside this app's context."""
    from strava_massage import services
    from strava_massage.worker import jobs

    cfg = app.config
    huey = make_huey(cfg["QUEUE_URL"], cfg["QUEUE_NAME"], cfg["QUEUE_MAX_CONNECTIONS"])

    @huey.task(name="process_event")  # type: ignore[untyped-decorator]
    def process_event_task(event_id: int) -> None:
        """Process one stored webhook event."""
        with app.app_context():
            jobs.process_event(services.get(), event_id)

    @huey.task(name="sweep")  # type: ignore[untyped-decorator]
    def sweep_task() -> None:
        """Re-enqueue events a dead worker left behind, unless this interval's sweep ran.

        Every worker's lease keeper sweeps every SWEEP_INTERVAL_SECONDS; this task is for an
        operator who wants one now.
        """
        with app.app_context():
            _sweep_turn(app)

    tasks = Tasks(huey, process_event_task, sweep_task)
    app.extensions["tasks"] = tasks
    return tasks


def _idle_check_turn(app: Flask) -> bool:
    """Queue access checks for quiet runners if no worker did in this interval yet."""
    from strava_massage import services
    from strava_massage.worker import jobs, periodic

    svc = services.get()
    interval = float(app.config["IDLE_CHECK_INTERVAL_SECONDS"])
    if not periodic.take_turn(svc.db, "idle_check", svc.now().timestamp(), interval):
        return False
    jobs.check_idle_runners(svc, float(app.config["IDLE_CHECK_DAYS"]))
    return True


def _sweep_turn(app: Flask) -> bool:
    """Sweep if no worker has swept in this interval yet (inside an app context)."""
    from strava_massage import services
    from strava_massage.worker import jobs, periodic

    svc = services.get()
    interval = float(app.config["SWEEP_INTERVAL_SECONDS"])
    if not periodic.take_turn(svc.db, "sweep", svc.now().timestamp(), interval):
        return False
    jobs.sweep(svc)
    return True


class LeaseKeeper:
    """A worker process's thread that keeps its claims' leases running, and sweeps.

    Every quarter lease it renews the lease of every job this process is running (a lease then
    runs out only when its holder died), and every SWEEP_INTERVAL_SECONDS one worker of all of
    them sweeps the events table: a job lost by a killed worker is handed out again within
    a lease and a sweep interval (about 35 s with the defaults). One also queues the access
    checks of quiet runners every IDLE_CHECK_INTERVAL_SECONDS.
    """

    def __init__(self, app: Flask, *, sweep: bool = True) -> None:
        self.app = app
        self.sweep = sweep
        lease = float(app.config["SWEEP_AFTER_SECONDS"])
        self.interval = float(app.config["SWEEP_INTERVAL_SECONDS"])
        self.tick = max(min(lease / 4, self.interval), 0.1)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the consumer's jobs have finished)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        """Renew, and sweep when a new interval began; a failure waits for the next tick."""
        from strava_massage import services
        from strava_massage.worker import jobs

        swept = -1
        while not self._stopped.wait(self.tick):
            try:
                with self.app.app_context():
                    svc = services.get()
                    jobs.renew_leases(svc)
                    slot = int(svc.clock() // self.interval)
                    if self.sweep and slot != swept:
                        swept = slot
                        _sweep_turn(self.app)
                        _idle_check_turn(self.app)
            except Exception:
                log.exception("lease keeper: renewal or sweep failed; trying again")


class _Consumer(Consumer):  # type: ignore[misc]
    """huey's consumer, stopping the process's lease keeper after its jobs."""

    keeper: LeaseKeeper | None = None

    def stop(self, graceful: bool = False) -> None:  # overrides only huey's public stop()
        """Stop consuming (running jobs finish first when graceful), then the keeper."""
        try:
            super().stop(graceful=graceful)
        finally:
            if self.keeper is not None:
                self.keeper.stop()


# The signals huey's Consumer.start() takes over (graceful stop, interrupt, restart).
_HOST_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


class EmbeddedConsumer(_Consumer):
    """A huey consumer that runs inside another server's process (no signal handlers).

    The host process (gunicorn, a test) owns the signals: start() puts back its handlers.
    Call start() from the host's main thread, as gunicorn's post_worker_init does.
    """

    def start(self) -> None:  # overrides only huey's public start()
        """Start the workers and scheduler, leaving the host's signal handlers in place."""
        saved = {signum: signal.getsignal(signum) for signum in _HOST_SIGNALS}
        try:
            super().start()
        finally:
            for signum, handler in saved.items():
                if handler is not None:  # None: set outside Python, cannot be put back
                    signal.signal(signum, handler)


def make_consumer(
    app: Flask, *, workers: int, periodic: bool = True, embedded: bool = False
) -> Consumer:
    """A thread-pool consumer for the app's queue; SIGTERM lets running tasks finish."""
    tasks: Tasks = app.extensions["tasks"]
    cls = EmbeddedConsumer if embedded else _Consumer
    return cls(
        tasks.huey,
        workers=workers,
        worker_type="thread",
        periodic=periodic,
        initial_delay=0.05,
        # A SQLite queue is polled; keep an idle worker's pickup latency under a second.
        max_delay=0.5,
        graceful_signal="TERM",
        shutdown_timeout=30,
    )


def start_worker(app: Flask, consumer: Consumer) -> None:
    """Sweep once (a restart picks up what a crash left), start consuming, and start the
    lease keeper (leases renewed; the sweep every SWEEP_INTERVAL_SECONDS if `periodic`).

    The worker inside `serve` is the deployment's only one, so what a killed `serve` held is
    taken over at once rather than after its leases.
    """
    from strava_massage import services
    from strava_massage.worker import jobs

    with app.app_context():
        jobs.sweep(services.get(), take_over=isinstance(consumer, EmbeddedConsumer))
    consumer.start()
    keeper = LeaseKeeper(app, sweep=bool(getattr(consumer, "periodic", True)))
    keeper.start()
    consumer.keeper = keeper

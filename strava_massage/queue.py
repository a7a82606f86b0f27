"""The task queue (huey): a SQLite file by default, Redis to scale out.

Tasks are registered on the huey instance inside the app factory, so nothing is built at
import time, and each task runs inside its app's context.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer
from huey.storage import SqliteStorage
from redis import BlockingConnectionPool

from strava_massage.db import SqliteWriteLock

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)
# The sweep's crontab fires every minute in every worker; one of them runs it.
SWEEP_PERIOD = 60.0


class _SqliteStorage(SqliteStorage):  # type: ignore[misc]
    """huey's SQLite storage without an fsync per task.

    WAL with synchronous=NORMAL cannot corrupt the file; a power cut may drop the newest
    tasks, which the sweep re-enqueues from the events table (the durable record of work).
    """

    def _create_connection(self) -> Any:
        """Open a connection and relax its sync mode."""
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def make_huey(url: str, name: str = "strava-massage", max_connections: int = 20) -> Huey:
    """A huey instance for QUEUE_URL: `sqlite:///path` or `redis://...`."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(
            name,
            filename=str(path),
            results=False,
            timeout=30,
            storage_class=_SqliteStorage,
        )
    if url.startswith(("redis://", "rediss://")):
        # A blocking pool: a burst waits for a free connection instead of failing with
        # "too many connections" when every one is in use.
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        # Workers block on BRPOP; a short read timeout lets a SIGTERM'd worker exit promptly.
        return RedisHuey(name, connection_pool=pool, results=False, read_timeout=0.25)
    raise ValueError(f"QUEUE_URL must be sqlite:///path or redis://...; got {url.split(':')[0]}")


@dataclass
class Tasks:
    """The app's huey instance and its registered tasks."""

    huey: Huey
    process_event: Any
    sweep: Any
    write_lock: AbstractContextManager[Any] = field(default_factory=nullcontext)

    def enqueue(self, event_id: int, delay: float = 0) -> None:
        """Queue processing of a stored event, now or after `delay` seconds."""
        with self.write_lock:
            if delay > 0:
                self.process_event.schedule(args=(event_id,), delay=delay)
            else:
                self.process_event(event_id)

    def close(self) -> None:
        """Release the queue's connections (tests and shutdown)."""
        pool = getattr(self.huey.storage, "pool", None)
        if pool is not None:
            pool.disconnect()
        else:
            self.huey.storage.close()

    def depth(self) -> int:
        """Tasks waiting in the queue (not counting scheduled ones)."""
        return int(self.huey.pending_count())


def init_app(app: Flask) -> Tasks:
    """Create the queue and register the tasks, each run inside this app's context."""
    from strava_massage import periodic, processing, services

    cfg = app.config
    huey = make_huey(cfg["QUEUE_URL"], cfg["QUEUE_NAME"], cfg["QUEUE_MAX_CONNECTIONS"])

    @huey.task(name="process_event")  # type: ignore[untyped-decorator]
    def process_event_task(event_id: int) -> None:
        """Process one stored webhook event."""
        with app.app_context():
            processing.process_event(services.get(), event_id)

    @huey.periodic_task(crontab(minute="*"), name="sweep")  # type: ignore[untyped-decorator]
    def sweep_task() -> None:
        """Re-enqueue events a dead worker left behind (every minute, by one worker of many)."""
        with app.app_context():
            svc = services.get()
            if periodic.take_turn(svc.db, "sweep", svc.now().timestamp(), SWEEP_PERIOD):
                processing.sweep(svc)

    url = app.config["QUEUE_URL"]
    lock = SqliteWriteLock(url) if url.startswith("sqlite") else nullcontext()
    tasks = Tasks(huey, process_event_task, sweep_task, lock)
    app.extensions["tasks"] = tasks
    return tasks


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A huey consumer that runs inside another server's process (no signal handlers)."""

    def _set_signal_handlers(self) -> None:
        """The host process (gunicorn, a test) owns the signals."""


def make_consumer(
    app: Flask, *, workers: int, periodic: bool = True, embedded: bool = False
) -> Consumer:
    """A thread-pool consumer for the app's queue; SIGTERM lets running tasks finish."""
    tasks: Tasks = app.extensions["tasks"]
    cls = EmbeddedConsumer if embedded else Consumer
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
    """Sweep once (a restart picks up what a crash left), then start consuming."""
    from strava_massage import processing, services

    with app.app_context():
        processing.sweep(services.get())
    consumer.start()

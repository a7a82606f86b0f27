"""Test harness: the simulator and the service, both over real HTTP, with a real queue; and
the worker's services on fakes (tests/fakes.py) for the decisions."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, text
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from strava_massage import create_app
from strava_massage.db import Database
from strava_massage.models import Event
from strava_massage.services.subscriptions import create_subscription
from strava_massage.simulator import Simulator
from strava_massage.worker.queue import make_consumer, start_worker

from .browser import chromium, page  # noqa: F401  (the browser and a fresh page, for page tests)
from .fakes import World, make_world

VERIFY_TOKEN = "test-verify-token"
REQUIRE_SCALEOUT = os.environ.get("STRAVA_MASSAGE_REQUIRE_SCALEOUT") == "1"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class _Quiet(WSGIRequestHandler):
    """No per-request log lines in test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing."""


class _LateApp:
    """A WSGI app filled in after the server is bound (the app needs the server's URL)."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


def serve(wsgi: Any) -> tuple[BaseWSGIServer, str]:
    """Serve a WSGI app on a free loopback port from a daemon thread."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _scaleout_available() -> str | None:
    """Why PostgreSQL or Redis cannot be used here, or None if both answer."""
    try:
        import psycopg
        import redis

        psycopg.connect(TEST_DATABASE_URL.replace("+psycopg", ""), connect_timeout=2).close()
        with redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2) as client:
            client.ping()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


def _psycopg_url(url: str) -> str:
    """The SQLAlchemy form of a PostgreSQL URL."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, so parallel runs never collide."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(_psycopg_url(TEST_DATABASE_URL))
    name = f"legwork_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def reset_postgres(url: str) -> None:
    """Drop every table so migrations start from nothing."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@dataclass
class Backend:
    """Where the database and the queue live for one test."""

    name: str
    database_url: str
    queue_url: str


@pytest.fixture(params=["sqlite", pytest.param("postgres+redis", marks=pytest.mark.scaleout)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each end-to-end test runs on the embedded default and on PostgreSQL + Redis."""
    if request.param == "sqlite":
        return Backend(
            "sqlite", f"sqlite:///{tmp_path / 'app.db'}", f"sqlite:///{tmp_path / 'q.db'}"
        )
    reason = _scaleout_available()
    if reason:
        if REQUIRE_SCALEOUT:
            pytest.fail(f"PostgreSQL/Redis required in CI but unavailable: {reason}")
        pytest.skip(f"PostgreSQL/Redis unavailable: {reason}")
    database = request.getfixturevalue("pg_database")
    reset_postgres(database)
    return Backend("postgres+redis", database, TEST_REDIS_URL)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh Strava simulator on a free port."""
    with Simulator() as s:
        yield s


class Stack:
    """The service (web + optional in-process worker) wired to a simulator."""

    def __init__(self, app: Flask, url: str, sim: Simulator) -> None:
        self.app = app
        self.url = url
        self.sim = sim
        self.consumer: Any = None

    @property
    def db(self) -> Any:
        """The app's Database."""
        return self.app.extensions["db"]

    def start_worker(self, threads: int = 2) -> None:
        """Run the queue consumer in this process, as `serve` does."""
        self.consumer = make_consumer(self.app, workers=threads, embedded=True)
        start_worker(self.app, self.consumer)

    def stop_worker(self) -> None:
        """Stop the in-process consumer, letting running jobs finish."""
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None

    def drop_server_connections(self) -> int:
        """PostgreSQL: end every other connection to the app's database, as a restart would."""
        with self.db.engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        return int(ended or 0)

    def subscribe(self) -> int:
        """Create the webhook subscription (the simulator performs the handshake)."""
        sub_id, _ = create_subscription(self.app)
        return sub_id

    def connect(self, athlete_id: int, granted: list[str] | None = None) -> requests.Session:
        """Walk the OAuth flow in a browser-like session; returns it, logged in."""
        browser, response = self.sim.connect_via(self.url, athlete_id, granted)
        browser.last_response = response  # type: ignore[attr-defined]
        if self.consumer is not None:
            self.wait_idle()  # the history import the connect started
        return browser

    def events(self, backfill: bool = False) -> list[Event]:
        """Stored webhook events (and, if asked, history imports), oldest first."""
        query = select(Event).order_by(Event.id)
        if not backfill:
            query = query.where(Event.aspect_type != "backfill")
        with self.db.session() as session:
            return list(session.scalars(query))

    def wait_idle(self, timeout: float = 20.0) -> list[Event]:
        """Wait until no stored event is pending or in progress; returns the events."""
        deadline = time.monotonic() + timeout
        # A count, not the rows: this poll shares the GIL with the worker it waits for.
        still_open = (
            select(func.count())
            .select_from(Event)
            .where(Event.status.in_(("pending", "processing")))
        )
        while True:
            with self.db.session() as session:
                done = not session.scalar(still_open)
            if done:
                return self.events()
            if time.monotonic() > deadline:
                events = self.events(backfill=True)
                raise AssertionError(
                    "events still open: "
                    + ", ".join(f"{e.id}:{e.status}:{e.outcome}" for e in events)
                )
            time.sleep(0.05)


@pytest.fixture
def make_stack(sim: Simulator, backend: Backend) -> Iterator[Callable[..., Stack]]:
    """Build a Stack with optional config overrides; everything is torn down afterwards."""
    stacks: list[tuple[Stack, BaseWSGIServer]] = []

    def build(**overrides: Any) -> Stack:
        late = _LateApp()
        server, url = serve(late)
        config = {
            "TESTING": True,
            "STRAVA_BASE_URL": sim.url,
            "STRAVA_CLIENT_ID": str(sim.client_id),
            "STRAVA_CLIENT_SECRET": sim.client_secret,
            "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN,
            "PUBLIC_URL": url,
            "DATABASE_URL": backend.database_url,
            "QUEUE_URL": backend.queue_url,
            # A queue name of this test's own: Redis is shared with other test runs.
            "QUEUE_NAME": f"test-{uuid.uuid4().hex}",
            **overrides,
        }
        app = create_app(config)
        app.extensions["db"].upgrade()
        late.app = app
        stack = Stack(app, url, sim)
        stacks.append((stack, server))
        return stack

    yield build
    for stack, server in stacks:
        stack.stop_worker()
        server.shutdown()
        server.server_close()
        tasks = stack.app.extensions["tasks"]
        tasks.huey.storage.flush_all()  # this test's queue keys only
        tasks.close()
        stack.db.dispose()


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    """The backend's database with the schema."""
    database = Database(backend.database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """The service with a subscription and a running in-process worker."""
    s = make_stack()
    s.subscribe()
    s.start_worker()
    return s


@pytest.fixture
def fake() -> Iterator[World]:
    """The worker's services on an in-memory database, a fake Strava and a stopped clock."""
    world = make_world()
    yield world
    world.db.dispose()

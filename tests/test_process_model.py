"""The Procfile's processes: gunicorn from its config, workers that stop cleanly, one sweeper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from huey.signals import SIGNAL_COMPLETE
from sqlalchemy import func, select

from strava_massage.db import Database
from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Event, Note
from strava_massage.worker.periodic import take_turn

from .conftest import VERIFY_TOKEN, Backend, Stack
from .helpers import free_port, worker_process

ROOT = Path(__file__).resolve().parents[1]


def test_the_procfile_web_command_serves_and_stops_gracefully(make_stack, tmp_path: Path) -> None:
    stack: Stack = make_stack()
    procfile = (ROOT / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert "python:strava_massage.gunicorn_config" in web
    port = free_port()
    cfg = stack.app.config
    env = {
        **os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "2",
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "STRAVA_CLIENT_ID": str(cfg["STRAVA_CLIENT_ID"]),
        "STRAVA_CLIENT_SECRET": cfg["STRAVA_CLIENT_SECRET"], "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN,
        "DATABASE_URL": cfg["DATABASE_URL"], "QUEUE_URL": cfg["QUEUE_URL"],
        "QUEUE_NAME": cfg["QUEUE_NAME"], "SECRET_KEY": "s", "TOKEN_KEYS": cfg["TOKEN_KEYS"],
    }  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", "-c", "python:strava_massage.gunicorn_config",
               "strava_massage:create_app()"]  # fmt: skip
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web_proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except (requests.ConnectionError, requests.Timeout):  # still booting, or busy
                time.sleep(0.1)
        assert health is not None, log.read_text()[-2000:]
        assert health.status_code == 200
        assert health.json()["database"] == "ok" and health.json()["queue"] == "ok"
        # Two processes answer (WEB_CONCURRENCY), each with its own pid.
        assert log.read_text().count("Booting worker") == 2
    finally:
        web_proc.send_signal(signal.SIGTERM)
        code = web_proc.wait(timeout=30)
    assert code == 0, log.read_text()[-2000:]


def test_a_worker_told_to_stop_finishes_the_job_in_hand(make_stack, tmp_path: Path) -> None:
    stack: Stack = make_stack(TOKEN_KEYS=Fernet.generate_key().decode())
    stack.subscribe()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    worker = worker_process(stack, tmp_path / "worker.log")
    try:
        stack.wait_idle()  # the history import
        stack.sim.latency = 1.5  # Strava is slow: the SIGTERM lands mid-job
        run = stack.sim.create_activity(athlete)
        deadline = time.monotonic() + 20
        while not any(e.status == "processing" for e in stack.events()):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0
    [event] = stack.events()
    assert event.status == "done", event.outcome
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1


def test_exactly_one_caller_takes_each_periodic_turn(backend: Backend) -> None:
    databases = [Database(backend.database_url) for _ in range(4)]
    databases[0].upgrade()
    wins: list[tuple[int, int]] = []
    lock = threading.Lock()
    for slot in range(5):
        barrier = threading.Barrier(len(databases))

        def contend(db: Database, slot: int = slot, barrier: threading.Barrier = barrier) -> None:
            """Wait for the others, then try to take this slot's turn."""
            barrier.wait()
            if take_turn(db, "sweep", now=slot * 60 + 1, interval=60):
                with lock:
                    wins.append((slot, id(db)))

        threads = [threading.Thread(target=contend, args=(db,)) for db in databases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(slot for slot, _ in wins) == [0, 1, 2, 3, 4]  # one winner per slot
    assert not take_turn(databases[1], "sweep", now=4 * 60 + 30, interval=60)  # same slot
    for db in databases:
        db.dispose()


@pytest.mark.slow
@pytest.mark.scaleout
@pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
def test_two_worker_processes_process_500_events_exactly_once(make_stack, tmp_path: Path) -> None:
    # The quota is not what is tested here: Strava's and the service's own are both lifted.
    stack: Stack = make_stack(
        TOKEN_KEYS=Fernet.generate_key().decode(), STRAVA_RATE_LIMITS=(100_000, 1_000_000)
    )
    stack.subscribe()
    stack.sim.set_rate_limits(
        short=100_000, daily=1_000_000, read_short=100_000, read_daily=1_000_000
    )
    athletes = [stack.sim.create_athlete()["id"] for _ in range(20)]
    for athlete_id in athletes:
        stack.connect(athlete_id)
    # 500 runs announced while no worker runs, plus 50 of them delivered twice more: both
    # processes race for the same queue for several seconds, which is what exactly-once needs
    # (the throughput at volume is the benchmarks' to measure: benchmarks/pipeline.py).
    runs = [stack.sim.create_activity(athletes[n % 20]) for n in range(500)]
    for run in runs[::10]:
        stack.sim.fire_event("activity", run["id"], "create", run["athlete"]["id"], event_time=7)
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [worker_process(stack, log) for log in logs]
    try:
        stack.wait_idle(timeout=400)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=30)
    with stack.db.session() as session:
        statuses = dict(
            session.execute(select(Event.status, func.count()).group_by(Event.status)).all()
        )
        notes = session.scalar(
            select(func.count()).select_from(Note).where(Note.status == "written")
        )
    assert statuses == {"done": 500 + 50 + 20}, statuses  # runs, re-deliveries, imports
    assert notes == 500
    puts = [c.path for c in stack.sim.calls("PUT", "/api/v3/activities/")]
    assert len(puts) == len(set(puts)) == 500  # one PUT per run: none lost, none doubled
    for run in runs[::25]:
        assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1
    assert all("event processed" in log.read_text() for log in logs)  # both did work


def test_the_events_table_decides_whether_a_task_runs(stack: Stack) -> None:
    """A task queued again for an event already done does nothing: one note, one PUT."""
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    run = stack.sim.create_activity(athlete["id"])
    events = stack.wait_idle()
    assert str(events[-1].outcome).startswith("note")
    puts = len(stack.sim.calls("PUT", "/api/v3/activities/"))
    tasks = stack.app.extensions["tasks"]
    finished: list[int] = []

    @tasks.huey.signal(SIGNAL_COMPLETE)  # type: ignore[untyped-decorator]
    def completed(signal: str, task: Any) -> None:
        finished.extend(task.args)

    for event in events:
        tasks.enqueue(event.id)  # a second delivery of the queue's message
    deadline = time.monotonic() + 10
    while not {e.id for e in events} <= set(finished):
        assert time.monotonic() < deadline, finished
        time.sleep(0.05)
    assert [e.outcome for e in stack.wait_idle()] == [e.outcome for e in events]
    assert len(stack.sim.calls("PUT", "/api/v3/activities/")) == puts
    assert stack.sim.activity(run["id"])["description"].count(BLOCK_START) == 1

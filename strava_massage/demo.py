"""`strava-massage demo`: the whole service on localhost against the built-in simulator."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from strava_massage.models import Event
from strava_massage.simulator import Simulator


class _Quiet(WSGIRequestHandler):
    """No access-log line per request in the demo's output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing."""


# A few weeks of a steady runner: (days ago, km, workout type); a long run each weekend.
# The demo clinic's staff login: a throwaway database on localhost, printed for the visitor.
DEMO_STAFF = "staff@riverside.example"
DEMO_PASSWORD = "riverside-demo"  # noqa: S105
HISTORY = [(1, 8.0, None), (3, 10.0, None), (5, 6.0, None), (7, 18.0, 2)]


def run_demo(*, port: int, weeks: int, keep_serving: bool) -> None:
    """Start simulator, service and worker; connect a demo runner; show a note on a new run.

    Everything lives in a temporary folder, removed when the demo ends (Ctrl-C, or at once
    with keep_serving False).
    """
    # The demo speaks for itself; routine log lines would bury what it prints.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    folder = Path(tempfile.mkdtemp(prefix="legwork-demo-"))
    sim = Simulator(quiet=True).start()
    try:
        _run(sim, folder, port=port, weeks=weeks, keep_serving=keep_serving)
    finally:
        sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
    click.echo("\nDemo finished: servers stopped, demo data removed.")


def _run(sim: Simulator, folder: Path, *, port: int, weeks: int, keep_serving: bool) -> None:
    """The demo itself; the caller stops the simulator and removes `folder`."""
    from strava_massage import create_app

    public_url = f"http://127.0.0.1:{port}"
    app = create_app(
        {
            "DEMO": True,
            "STRAVA_BASE_URL": sim.url,
            "STRAVA_CLIENT_ID": str(sim.client_id),
            "STRAVA_CLIENT_SECRET": sim.client_secret,
            "STRAVA_VERIFY_TOKEN": secrets.token_urlsafe(16),
            "PUBLIC_URL": public_url,
            "DATA_DIR": str(folder),
            "DATABASE_URL": f"sqlite:///{folder / 'demo.db'}",
            "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
        }
    )
    # The app's logging shows the consumer's start and stop: not news in a demo.
    logging.getLogger("huey.consumer").setLevel(logging.WARNING)
    try:
        _serve(app, sim, port=port, weeks=weeks, keep_serving=keep_serving)
    finally:
        app.extensions["tasks"].close()
        app.extensions["db"].dispose()


def _serve(app: Flask, sim: Simulator, *, port: int, weeks: int, keep_serving: bool) -> None:
    """Serve the app and its worker, play the demo runner's weeks, then wait for Ctrl-C."""
    from strava_massage.worker.queue import make_consumer, start_worker

    app.extensions["db"].upgrade()
    try:
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)
    except OSError as e:
        raise click.ClickException(f"port {port} is busy ({e}); try --port 5050") from None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    consumer = make_consumer(app, workers=2, embedded=True)
    start_worker(app, consumer)
    try:
        public_url = str(app.config["PUBLIC_URL"])
        run_id = _play(app, sim, public_url=public_url, weeks=weeks)
        if not keep_serving:
            return
        click.echo("\nOpen these:")
        click.echo(f"  {public_url}/            landing page (connect as 'Demo Runner')")
        click.echo(f"  {sim.url}/_sim/activities/{run_id}   the run as the simulator stores it")
        click.echo(
            f"  {public_url}/clinic/login   the clinic's side: {DEMO_STAFF} / {DEMO_PASSWORD}"
        )
        click.echo("\nServing until Ctrl-C.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass  # the end the visitor chose: stop and clean up below
    finally:
        consumer.stop(graceful=True)
        server.shutdown()
        server.server_close()


def _play(app: Flask, sim: Simulator, *, public_url: str, weeks: int) -> int:
    """Subscribe, connect the demo runner, replay past weeks and upload today's run (its id
    is returned)."""
    from strava_massage.services.subscriptions import create_subscription

    click.echo(f"Strava simulator: {sim.url}")
    click.echo(f"service:          {public_url}")
    sub_id, _ = create_subscription(app)
    click.echo(f"webhook subscription {sub_id} created (the simulator checked the handshake)")

    athlete = sim.create_athlete("Demo", "Runner", measurement_preference="feet")
    _, response = sim.connect_via(public_url, athlete["id"])
    response.raise_for_status()
    click.echo(f"demo runner {athlete['id']} connected")
    _demo_clinic(app, athlete["id"])

    today = dt.date.today()
    runs = [
        (week * 7 + days_ago, km, kind) for week in range(weeks) for days_ago, km, kind in HISTORY
    ]
    with click.progressbar(sorted(runs, reverse=True), label="replaying past runs") as bar:
        for days_ago, km, kind in bar:
            start = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(7, 30))
            sim.create_activity(
                athlete["id"],
                distance=km * 1000,
                moving_time=int(km * 330),
                start_date_local=start,
                workout_type=kind,
            )
            _wait_idle(app)

    run = sim.create_activity(
        athlete["id"],
        distance=12000.0,
        moving_time=3900,
        name="Today's run",
        description="Easy loop by the river. Legs a bit heavy.",
        start_date_local=dt.datetime.combine(today, dt.time(8, 0)),
    )
    _wait_idle(app)
    click.echo("\nA new run was uploaded; its description on (simulated) Strava now reads:\n")
    click.echo(sim.activity(run["id"])["description"])
    return int(run["id"])


def _demo_clinic(app: Flask, athlete_id: int) -> None:
    """A clinic the demo runner joined and shares with, so its pages have something to show."""
    from strava_massage.models import Athlete, utcnow
    from strava_massage.services import clinics

    with app.extensions["db"].session() as session:
        clinic, staff = clinics.create_clinic(
            session, "riverside", "Riverside Physio", DEMO_STAFF, "https://riverside.example/book"
        )
        clinics.set_password(staff, DEMO_PASSWORD)
        runner = session.get(Athlete, athlete_id)
        assert runner is not None
        clinics.join_clinic(session, runner, clinic, utcnow())
        clinics.set_sharing(session, runner, True, "Demo Runner", utcnow())
        session.commit()
    click.echo("demo clinic 'Riverside Physio' created; the demo runner joined and shares with it")


def _wait_idle(app: Flask, timeout: float = 30.0) -> None:
    """Wait until the worker has finished every stored event."""
    db = app.extensions["db"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as session:
            open_events = session.scalar(
                select(Event.id).where(Event.status.in_(("pending", "processing"))).limit(1)
            )
        if open_events is None:
            return
        time.sleep(0.05)
    raise click.ClickException("the worker did not finish in time")

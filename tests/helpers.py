"""Helpers shared by the end-to-end test modules (the stack of tests/conftest.py): forms,
clinic logins, a runner's rows, worker processes. One place, imported by name; each test
module keeps to itself only what no other module uses.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import requests
from sqlalchemy import func, select

from strava_massage.models import Activity, Athlete, Clinic, Event, Note, Token, utcnow
from strava_massage.services import clinics

from .conftest import VERIFY_TOKEN, Stack

PASSWORD = "correct horse battery"  # a clinic staff login's, as make_clinic sets it
LEASE = 2  # seconds: a worker process's lease (SWEEP_AFTER_SECONDS) in the crash tests


def csrf_token(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def rows_about(stack: Stack, athlete_id: int) -> int:
    """Rows about one runner, across every table that holds any."""
    with stack.db.session() as session:
        return sum(
            session.scalar(select(func.count()).where(column == athlete_id)) or 0
            for column in (
                Athlete.id,
                Token.athlete_id,
                Activity.athlete_id,
                Note.athlete_id,
                Event.owner_id,
            )
        )


# -- clinics --------------------------------------------------------------------------------


def make_clinic(
    stack: Stack, slug: str, name: str | None = None, booking: str | None = None
) -> tuple[int, str]:
    """A clinic with one staff login whose password is PASSWORD; returns (clinic id, email)."""
    email = f"desk@{slug}.example"
    with stack.db.session() as session:
        clinic, staff = clinics.create_clinic(
            session, slug, name or slug.title(), email, booking or f"https://{slug}.example/book"
        )
        clinics.set_password(staff, PASSWORD)
        session.commit()
        return clinic.id, email


def staff_login(stack: Stack, email: str, password: str = PASSWORD) -> requests.Session:
    """A browser logged in as a clinic's staff member."""
    browser = requests.Session()
    page = browser.get(stack.url + "/clinic/login", timeout=10)
    r = browser.post(
        stack.url + "/clinic/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
        timeout=10,
    )
    assert r.status_code == 200 and r.url.endswith("/clinic"), (r.status_code, r.url)
    return browser


def runner_in(stack: Stack, clinic_id: int, name: str | None = None) -> int:
    """A connected runner who joined the clinic; sharing under `name` if one is given."""
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    stack.connect(athlete)
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        clinic = session.get(Clinic, clinic_id)
        assert runner is not None and clinic is not None
        clinics.join_clinic(session, runner, clinic, utcnow())
        if name:
            clinics.set_sharing(session, runner, True, name, utcnow())
        session.commit()
    return athlete


def set_sharing(stack: Stack, athlete: int, on: bool, name: str = "Sam Runner") -> None:
    """Switch the runner's sharing, as their settings page does."""
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        assert runner is not None
        clinics.set_sharing(session, runner, on, name, utcnow())
        session.commit()


# -- processes ------------------------------------------------------------------------------


def worker_process(
    stack: Stack, log: Path, lease: float | None = LEASE, command: tuple[str, ...] = ("worker",)
) -> subprocess.Popen[bytes]:
    """`strava-massage worker` (or another `command`, such as `serve`) in its own process,
    configured like the test's app (with the default lease and sweep interval when `lease` is
    None)."""
    cfg = stack.app.config
    env = {
        **os.environ,
        "STRAVA_CLIENT_ID": str(cfg["STRAVA_CLIENT_ID"]),
        "STRAVA_CLIENT_SECRET": cfg["STRAVA_CLIENT_SECRET"],
        "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN,
        "STRAVA_BASE_URL": cfg["STRAVA_BASE_URL"],
        "PUBLIC_URL": cfg["PUBLIC_URL"],
        "DATABASE_URL": cfg["DATABASE_URL"],
        "QUEUE_URL": cfg["QUEUE_URL"],
        "QUEUE_NAME": cfg["QUEUE_NAME"],
        "SECRET_KEY": "worker-test-secret",
        "TOKEN_KEYS": cfg["TOKEN_KEYS"],
        "RATE_WINDOW_SECONDS": str(cfg["RATE_WINDOW_SECONDS"]),
        "STRAVA_RATE_LIMITS": ",".join(map(str, cfg["STRAVA_RATE_LIMITS"])),
    }
    if command[0] == "serve" and "--port" in command:
        # serve refuses a local PUBLIC_URL that names another port than the one it binds.
        env["PUBLIC_URL"] = f"http://127.0.0.1:{command[command.index('--port') + 1]}"
    env.pop("SWEEP_AFTER_SECONDS", None)
    env.pop("SWEEP_INTERVAL_SECONDS", None)
    if lease is not None:
        env["SWEEP_AFTER_SECONDS"] = str(lease)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "strava_massage", *command, "--threads", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
            start_new_session=True,  # its own process group: a kill reaches serve's children
        )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

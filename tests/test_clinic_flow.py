"""A clinic from start to finish over real HTTP: created from the command line, its staff log
in and word the notes, a runner connects through its invite link on the Strava simulator, runs,
shares, gets a session logged, and stops sharing."""

from __future__ import annotations

import re
from collections.abc import Callable

import requests
from sqlalchemy import select

from strava_massage.advice import KINDS
from strava_massage.models import Athlete, ConsentChange
from strava_massage.services.dashboard import runner_today

from .conftest import Stack
from .helpers import csrf_token

PASSWORD = "a long clinic passphrase"


def test_a_clinic_from_signup_to_a_logged_session(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES=True)  # the operator shows shared figures
    stack.subscribe()
    stack.start_worker()
    # The clinic is created; its first staff member chooses a password from the printed link.
    created = stack.app.test_cli_runner().invoke(
        args=["clinic", "create", "--slug", "knead", "--name", "Knead Physio",
              "--email", "desk@knead.example", "--booking-url", "https://knead.example/book"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    link = re.search(r"(http\S+/clinic/password/\S+)", created.output)
    assert link
    staff = requests.Session()
    form = staff.get(link.group(1), timeout=10)
    staff.post(
        link.group(1),
        data={"csrf_token": csrf_token(form.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=10,
    )
    # A fresh browser logs in with it.
    staff = requests.Session()
    login = staff.get(stack.url + "/clinic/login", timeout=10)
    home = staff.post(
        stack.url + "/clinic/login",
        data={
            "csrf_token": csrf_token(login.text),
            "email": "desk@knead.example",
            "password": PASSWORD,
        },
        timeout=10,
    )
    assert home.url == stack.url + "/clinic" and "Knead Physio" in home.text

    # The clinic words every rule's note its own way.
    token = csrf_token(staff.get(stack.url + "/clinic/wording", timeout=10).text)
    wording = "{{ headline }} (from the {{ clinic }} team)\n{{ body }}\nWhy: {{ reason }}"
    for kind in KINDS:
        saved = staff.post(
            f"{stack.url}/clinic/wording/rules/{kind}",
            data={"csrf_token": token, "source": wording, "action": "save"},
            timeout=10,
        )
        assert saved.status_code == 200, (kind, saved.status_code)

    # A runner follows the invite link and connects on the simulator.
    invite = requests.get(stack.url + "/c/knead", timeout=10)
    assert invite.status_code == 200 and "/connect?clinic=knead" in invite.text
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    runner, landed = stack.sim.connect_via(stack.url, athlete, start="/connect?clinic=knead")
    assert landed.url.endswith("/dashboard") and "Knead Physio" in landed.text
    stack.wait_idle()

    # Their next run's note carries the clinic's wording and booking link.
    run = stack.sim.create_activity(athlete, distance=10_000.0)
    stack.wait_idle()
    note = stack.sim.activity(run["id"])["description"]
    assert "(from the Knead Physio team)" in note
    assert "Book a session with Knead Physio: https://knead.example/book" in note

    # Not sharing (the default): the clinic counts them and sees nothing else.
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "1 runner is with your clinic" in page and "1 of them does not share" in page
    assert "10.0 km" not in page

    # Sharing on: the figures appear.
    settings = runner.get(stack.url + "/settings", timeout=10)
    shared = runner.post(
        stack.url + "/settings/clinic/sharing",
        data={"csrf_token": csrf_token(settings.text), "share": "y", "display_name": "Ada L."},
        timeout=10,
    )
    assert shared.status_code == 200
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Ada L." in page and "10.0 km" in page

    # The clinic logs a session: the runner's counter starts again.
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None
        today = runner_today(row)
    logged = staff.post(
        f"{stack.url}/clinic/runners/{athlete}/sessions",
        data={"csrf_token": csrf_token(page), "on": today.isoformat()},
        timeout=10,
    )
    assert "0.0 km · 0 days" in logged.text
    assert "Since your last massage (" in runner.get(stack.url + "/dashboard", timeout=10).text

    # Sharing off: hidden from the clinic at once, and both changes are on record.
    runner.post(
        stack.url + "/settings/clinic/sharing",
        data={"csrf_token": csrf_token(settings.text), "display_name": "Ada L."},
        timeout=10,
    )
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Ada L." not in page and "1 of them does not share" in page
    assert "Ada" not in staff.get(stack.url + "/clinic/export.csv", timeout=10).text
    with stack.db.session() as session:
        changes = list(session.scalars(select(ConsentChange).order_by(ConsentChange.id)))
    assert [c.shared for c in changes] == [True, False]

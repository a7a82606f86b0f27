"""CLINIC_SHARED_FIGURES: off by default, a clinic sees no figure derived from Strava.

Strava's API agreement lets data a user provides be shown to that user only; a clinic then sees
who joined, the sessions it logged and what a runner chose to send it (a sore area). On, the
operator's decision, the roster and its export carry the shared figures as before.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
import requests

from strava_massage.config import ConfigError, load_config
from strava_massage.models import Athlete, Clinic, utcnow
from strava_massage.services import clinics
from strava_massage.services.dashboard import runner_today

from .conftest import VERIFY_TOKEN, Stack
from .helpers import PASSWORD, staff_login


def _clinic_with_a_sharing_runner(stack: Stack) -> requests.Session:
    """A clinic, a runner sharing with it (a 12.345 km run, a sore area, a session the clinic
    logged), and a browser logged in as the clinic's staff."""
    email = "desk@knead.example"
    with stack.db.session() as session:
        clinic, staff = clinics.create_clinic(
            session, "knead", "Knead", email, "https://knead.example/book"
        )
        clinics.set_password(staff, PASSWORD)
        session.commit()
        clinic_id = clinic.id
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    stack.connect(athlete)
    stack.sim.create_activity(athlete, distance=12_345.0)
    stack.wait_idle()
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        clinic = session.get(Clinic, clinic_id)
        assert runner is not None and clinic is not None
        clinics.join_clinic(session, runner, clinic, utcnow())
        clinics.set_sharing(session, runner, True, "Ada Lovelace", utcnow())
        today = runner_today(runner)
        runner.niggle_area, runner.niggle_on = "calves", today
        clinics.log_session(session, clinic, athlete, today, utcnow())
        session.commit()
    return staff_login(stack, email)


def _started(make_stack: Callable[..., Stack], **config: object) -> Stack:
    """A stack with a subscription and a worker, configured with `config`."""
    stack = make_stack(**config)
    stack.subscribe()
    stack.start_worker()
    return stack


def test_by_default_a_clinic_sees_no_figure_derived_from_strava(
    make_stack: Callable[..., Stack],
) -> None:
    stack = _started(make_stack)
    assert stack.app.config["CLINIC_SHARED_FIGURES"] is False
    staff = _clinic_with_a_sharing_runner(stack)

    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "1 runner is with your clinic" in page
    assert "Ada Lovelace" in page  # who joined and shares with the clinic
    assert "Sessions logged here" in page and "Calves since" in page
    roster = page[page.index('<table class="roster"') :]
    for figure in ("12.3", " km", " mi", "This week", "Since the last session", "Due", "Not yet"):
        assert figure not in roster, figure
    assert "/runners/" in roster  # staff still log sessions

    exported = staff.get(stack.url + "/clinic/export.csv", timeout=10)
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == list(clinics.CSV_HEADER_NO_FIGURES)
    derived = {"units", "this_week", "since_last_session", "days_since_last_session"}
    assert not (derived | {"due_for_session"}) & {*rows[0]}
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["name"] == "Ada Lovelace" and record["sessions_logged_here"] == "1"
    assert record["sore_area"] == "calves" and record["last_session"]
    assert "12.3" not in exported.text and "km" not in exported.text


def test_with_shared_figures_on_a_clinic_sees_them_as_before(
    make_stack: Callable[..., Stack],
) -> None:
    stack = _started(make_stack, CLINIC_SHARED_FIGURES="on")
    assert stack.app.config["CLINIC_SHARED_FIGURES"] is True
    staff = _clinic_with_a_sharing_runner(stack)

    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Ada Lovelace" in page and "12.3 km" in page and "This week" in page
    assert "0.0 km · 0 days" in page  # since the session the clinic logged today
    exported = staff.get(stack.url + "/clinic/export.csv", timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == list(clinics.CSV_HEADER)
    assert rows[0]["this_week"] == "12.3" and rows[0]["units"] == "km"
    assert rows[0]["due_for_session"] in ("yes", "no") and rows[0]["sore_area"] == "calves"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, False), ("off", False), ("on", True), ("ON", True), ("true", True), ("0", False)],
)
def test_the_setting_reads_on_and_off(
    value: str | None, shown: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("CLINIC_SHARED_FIGURES", raising=False)
    if value is not None:
        monkeypatch.setenv("CLINIC_SHARED_FIGURES", value)
    cfg = load_config(str(tmp_path), {"TESTING": True, "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN})
    assert cfg["CLINIC_SHARED_FIGURES"] is shown


def test_a_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("CLINIC_SHARED_FIGURES", "maybe")
    with pytest.raises(ConfigError, match="CLINIC_SHARED_FIGURES"):
        load_config(str(tmp_path), {"TESTING": True, "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN})

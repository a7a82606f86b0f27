"""Small things a person notices on the pages: units in forms, "none logged", plurals, the
booking link's rule, the login boxes, and where "View on Strava" leads."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from strava_massage.config import DEFAULT_STRAVA_BASE_URL
from strava_massage.models import Athlete, Clinic, LoginThrottle, Note
from strava_massage.services import clinics
from strava_massage.services.dashboard import runner_today
from strava_massage.services.runner import InputError
from strava_massage.web.brand import activity_url

from .conftest import Stack
from .helpers import PASSWORD, csrf_token, make_clinic, runner_in, staff_login

# Pages are the same on every backend: these run on the embedded default.
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
MILE = 1609.344


def _race_field(page: str) -> tuple[str, str | None]:
    """The race distance's label and the value its box shows."""
    label = re.search(r'<label for="race_distance">([^<]+)</label>', page)
    box = re.search(r'<input [^>]*id="race_distance"[^>]*>', page)
    assert label and box, page[:300]
    value = re.search(r'value="([^"]*)"', box.group(0))
    return html.unescape(label.group(1)), value.group(1) if value else None


def _stored_race(stack: Stack, athlete: int) -> tuple[dt.date | None, float | None]:
    """The runner's next race as stored: its date and distance in metres."""
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None
        return row.next_race_on, row.next_race_distance_m


def _save_settings(browser: requests.Session, stack: Stack, **fields: str) -> requests.Response:
    """Post the settings form as the page would, with its other fields as they are."""
    token = csrf_token(browser.get(stack.url + "/settings").text)
    data = {"csrf_token": token, "units": "strava", "notes": "on", "target": "description"}
    return browser.post(stack.url + "/settings", data={**data, **fields})


@SQLITE
def test_the_race_distance_is_asked_and_shown_in_the_runners_units(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")["id"]  # miles
    browser = stack.connect(athlete)
    label, value = _race_field(browser.get(stack.url + "/settings").text)
    assert label == "Next race: distance in miles (26.2 for a marathon)" and not value

    race_day = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    too_far = _save_settings(browser, stack, race_on=race_day, race_distance="300")
    assert too_far.status_code == 400
    assert re.search(r'id="race_distance-error">Number must be between 0.1 and 250.', too_far.text)

    saved = _save_settings(browser, stack, race_on=race_day, race_distance="26.2")
    assert saved.status_code == 200 and "Saved." in saved.text
    on, metres = _stored_race(stack, athlete)
    assert on == dt.date.fromisoformat(race_day)
    assert metres == pytest.approx(26.2 * MILE)  # miles in, metres stored
    assert _race_field(saved.text) == ("Next race: distance in miles (26.2 for a marathon)", "26.2")

    # Switching to kilometres in the same post: the typed 26.2 was miles, the page said so.
    switched = _save_settings(browser, stack, units="km", race_on=race_day, race_distance="26.2")
    assert switched.status_code == 200
    assert _stored_race(stack, athlete)[1] == pytest.approx(26.2 * MILE)
    assert _race_field(switched.text) == ("Next race: distance in km (42.2 for a marathon)", "42.2")


@SQLITE
def test_a_runner_in_kilometres_types_kilometres(stack: Stack) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    browser = stack.connect(athlete)
    race_day = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    saved = _save_settings(browser, stack, race_on=race_day, race_distance="42.2")
    assert _race_field(saved.text) == ("Next race: distance in km (42.2 for a marathon)", "42.2")
    assert _stored_race(stack, athlete)[1] == pytest.approx(42_200.0)
    refused = _save_settings(browser, stack, race_on=race_day, race_distance="401")
    assert "Number must be between 0.1 and 400." in refused.text


@SQLITE
def test_no_session_logged_reads_so_on_the_clinic_page_and_in_its_csv(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES="on")
    stack.subscribe()
    stack.start_worker()
    clinic_id, email = make_clinic(stack, "knead")
    athlete = runner_in(stack, clinic_id, name="Ada Lovelace")
    stack.sim.create_activity(athlete, distance=10_000.0)
    stack.wait_idle()
    staff = staff_login(stack, email)

    page = staff.get(stack.url + "/clinic", timeout=10).text
    cells = re.findall(r"<td>(.*?)</td>", page[page.index("<tbody>") :], re.S)
    assert cells[:4] == ["10.0 km", "10.0 km since connecting", "none logged", "Not yet"]
    assert " days" not in page and " day<" not in page
    rows = list(csv.DictReader(io.StringIO(staff.get(stack.url + "/clinic/export.csv").text)))
    assert list(rows[0]) == list(clinics.CSV_HEADER)
    assert rows[0]["this_week"] == "10.0"
    assert rows[0]["since_last_session"] == rows[0]["last_session"] == ""
    assert rows[0]["days_since_last_session"] == ""

    # Once a session is logged, the days since it count from it.
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        assert runner is not None
        three_days_ago = runner_today(runner) - dt.timedelta(days=3)
    logged = staff.post(
        f"{stack.url}/clinic/runners/{athlete}/sessions",
        data={"csrf_token": csrf_token(page), "on": three_days_ago.isoformat()},
        timeout=10,
    )
    assert "10.0 km · 3 days" in logged.text
    rows = list(csv.DictReader(io.StringIO(staff.get(stack.url + "/clinic/export.csv").text)))
    assert rows[0]["since_last_session"] == "10.0"
    assert rows[0]["last_session"] == three_days_ago.isoformat()
    assert rows[0]["days_since_last_session"] == "3"


@SQLITE
def test_counts_on_pages_are_singular_for_one(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TRUSTED_PROXIES=1)
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete)
    stack.wait_idle()
    assert "1 run counted in all." in browser.get(stack.url + "/dashboard").text

    _, email = make_clinic(stack, "knead")

    def attempt(password: str) -> requests.Response:
        """One login attempt from one client address."""
        guesser = requests.Session()
        guesser.headers["X-Forwarded-For"] = "203.0.113.9"
        token = csrf_token(guesser.get(stack.url + "/clinic/login", timeout=10).text)
        data = {"csrf_token": token, "email": email, "password": password}
        return guesser.post(stack.url + "/clinic/login", data=data, timeout=10)

    for i in range(clinics.MAX_FAILED_LOGINS):
        assert attempt(f"guess number {i}").status_code == 401
    paused = attempt(PASSWORD)
    assert paused.status_code == 429
    assert "Too many wrong passwords from here: try again in 1 minute." in paused.text
    with stack.db.session() as session:
        for row in session.scalars(select(LoginThrottle)):
            row.free_at = 0.0  # the wait is over
        session.commit()
    assert attempt("guess number 6").status_code == 401
    again = attempt(PASSWORD)
    assert "Too many wrong passwords from here: try again in 2 minutes." in again.text


def _clinic_settings(stack: Stack, staff: requests.Session) -> Callable[..., requests.Response]:
    """A function posting the clinic details form with the given fields."""
    token = csrf_token(staff.get(stack.url + "/clinic/settings", timeout=10).text)

    def save(**fields: str) -> requests.Response:
        """Post the details form."""
        data = {"csrf_token": token, "name": "Knead Physio", "booking_url": "", **fields}
        return staff.post(stack.url + "/clinic/settings", data=data, timeout=10)

    return save


@SQLITE
def test_the_booking_link_needs_https_except_on_this_machine(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    clinic_id, email = make_clinic(stack, "knead")
    save = _clinic_settings(stack, staff_login(stack, email))
    refused = save(booking_url="http://knead.example/book")
    assert refused.status_code == 400
    assert (
        "the booking link must be a web address starting with https:// "
        "(http:// only for localhost or 127.0.0.1, for testing)"
    ) in html.unescape(refused.text)
    for link in ("http://localhost:8000/book", "http://127.0.0.1:5000/book", "https://k.example"):
        saved = save(booking_url=link)
        assert saved.status_code == 200 and "Saved." in saved.text, link
        with stack.db.session() as session:
            clinic = session.get(Clinic, clinic_id)
            assert clinic is not None and clinic.booking_url == link
    for bad in ("ftp://k.example/book", "http://localhost.evil.example/book", "https://"):
        with pytest.raises(InputError, match="starting with https://"):
            clinics.check_booking_url(bad)


@SQLITE
def test_a_rule_that_stops_fitting_is_counted_in_words(stack: Stack) -> None:
    clinic_id, email = make_clinic(stack, "knead")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.note_templates = {"recovery_tip": "{{ headline }}\n{{ body }}\nWhy: {{ reason }}"}
        session.commit()
    save = _clinic_settings(stack, staff_login(stack, email))
    warned = save(booking_url="https://knead.example/book?" + "x" * 260)
    assert warned.status_code == 200
    assert "your wording for 1 rule no longer fits a note with its booking line" in warned.text
    assert "Shorten it on the Note wording page." in warned.text


@SQLITE
def test_view_on_strava_leads_to_the_strava_the_service_talks_to(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete)
    stack.wait_idle()
    with stack.db.session() as session:
        run = session.scalar(select(Note.activity_id).where(Note.athlete_id == athlete))
    page = browser.get(stack.url + "/dashboard").text
    links = re.findall(r'<a href="([^"]+)" class="strava-link">([^<]+)<', page)
    # The simulator in tests and in the demo: its ids mean nothing at www.strava.com.
    assert links == [(f"{stack.sim.url}/activities/{run}", "View on Strava")]
    assert "www.strava.com" not in page
    shown = requests.get(links[0][0], timeout=5)  # the simulator's page of the run, with its note
    assert shown.status_code == 200 and "Legwork note" in shown.text
    production = Flask(__name__)
    production.config["STRAVA_BASE_URL"] = DEFAULT_STRAVA_BASE_URL
    with production.app_context():
        assert activity_url(123) == "https://www.strava.com/activities/123"


@SQLITE
def test_the_login_boxes_are_the_same_width(make_stack: Callable[..., Stack], page: Any) -> None:
    stack = make_stack()
    page.goto(stack.url + "/clinic/login")
    email = page.get_by_label("Email").bounding_box()
    password = page.get_by_label("Password").bounding_box()
    assert email["width"] > 200 and password["width"] == email["width"]

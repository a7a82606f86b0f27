"""Clinic staff: accounts from the CLI, login and passwords, the roster, sessions, export, and
the authorization table (every clinic route against everyone who must not get in)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import select

from strava_massage.models import (
    Athlete,
    Clinic,
    ClinicStaff,
    ConsentChange,
    LoginThrottle,
    MassageSession,
    utcnow,
)
from strava_massage.services import clinics
from strava_massage.services.dashboard import runner_today

from .conftest import Stack
from .helpers import PASSWORD, csrf_token, make_clinic, runner_in, set_sharing, staff_login

# -- accounts ----------------------------------------------------------------------------------


def test_clinic_create_prints_a_password_link_that_works_once(stack: Stack) -> None:
    cli = stack.app.test_cli_runner()
    out = cli.invoke(
        args=["clinic", "create", "--slug", "knead", "--name", "Knead Clinic",
              "--email", "Desk@Knead.example", "--booking-url", "https://knead.example/book"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"{stack.url}/c/knead" in out.output
    link = re.search(r"(http\S+/clinic/password/\S+)", out.output)
    assert link, out.output
    with stack.db.session() as session:
        staff = session.scalar(select(ClinicStaff))
        assert staff is not None and staff.email == "desk@knead.example"
        assert staff.password_hash is None  # no password until they choose one
        assert staff.reset_hash and link.group(1).rsplit("/", 1)[1] not in staff.reset_hash

    browser = requests.Session()
    form = browser.get(link.group(1), timeout=10)
    assert form.status_code == 200
    short = browser.post(
        link.group(1),
        data={"csrf_token": csrf_token(form.text), "password": "short", "confirm": "short"},
        timeout=10,
    )
    assert short.status_code == 400 and "at least 10" in short.text
    done = browser.post(
        link.group(1),
        data={"csrf_token": csrf_token(form.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=10,
    )
    assert done.status_code == 200 and done.url.endswith("/clinic") and "Knead Clinic" in done.text
    with stack.db.session() as session:
        staff = session.scalar(select(ClinicStaff))
        assert staff is not None and staff.password_hash
        assert PASSWORD not in staff.password_hash and staff.password_hash.startswith("scrypt:")
    # The link is single-use.
    assert requests.get(link.group(1), timeout=10).status_code == 404
    # Mistakes in the command are one clear line, and nothing is created.
    for slug, says in (("knead", "taken"), ("Bad Slug!", "link name")):
        refused = cli.invoke(
            args=["clinic", "create", "--slug", slug, "--name", "X", "--email", "a@b.example"]
        )
        assert refused.exit_code != 0 and says in refused.output
    with stack.db.session() as session:
        assert len(list(session.scalars(select(Clinic)))) == 1


def test_login_logout_and_a_reset_link(stack: Stack) -> None:
    _, email = make_clinic(stack, "knead")
    browser = requests.Session()
    page = browser.get(stack.url + "/clinic/login", timeout=10)
    wrong = browser.post(
        stack.url + "/clinic/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": "not the password"},
        timeout=10,
    )
    assert wrong.status_code == 401 and "do not match" in wrong.text
    nobody = browser.post(
        stack.url + "/clinic/login",
        data={"csrf_token": csrf_token(page.text), "email": "who@x.example", "password": PASSWORD},
        timeout=10,
    )
    assert nobody.status_code == 401 and "do not match" in nobody.text  # the same answer

    staff = staff_login(stack, email)
    home = staff.get(stack.url + "/clinic", timeout=10)
    out = staff.post(
        stack.url + "/clinic/logout", data={"csrf_token": csrf_token(home.text)}, timeout=10
    )
    assert out.url.endswith("/clinic/login")
    assert staff.get(stack.url + "/clinic", timeout=10).url.startswith(stack.url + "/clinic/login")

    cli = stack.app.test_cli_runner()
    reset = cli.invoke(args=["clinic", "reset-password", email.upper()])
    assert reset.exit_code == 0, reset.output
    link = re.search(r"(http\S+/clinic/password/\S+)", reset.output)
    assert link
    browser = requests.Session()
    form = browser.get(link.group(1), timeout=10)
    new = "a brand new passphrase"
    browser.post(
        link.group(1),
        data={"csrf_token": csrf_token(form.text), "password": new, "confirm": new},
        timeout=10,
    )
    staff_login(stack, email, new)
    with pytest.raises(AssertionError):
        staff_login(stack, email, PASSWORD)  # the old password is gone
    unknown = cli.invoke(args=["clinic", "reset-password", "nobody@x.example"])
    assert unknown.exit_code != 0 and "no staff login" in unknown.output


def test_an_old_reset_link_has_expired(stack: Stack) -> None:
    _, email = make_clinic(stack, "knead")
    with stack.db.session() as session:
        staff = session.scalar(select(ClinicStaff).where(ClinicStaff.email == email))
        assert staff is not None
        token = clinics.issue_reset(staff, utcnow() - clinics.RESET_VALID - dt.timedelta(minutes=1))
        session.commit()
    page = requests.get(f"{stack.url}/clinic/password/{token}", timeout=10)
    assert page.status_code == 404 and "more than two hours old" in page.text


# -- the roster --------------------------------------------------------------------------------


def test_the_roster_shows_figures_only_while_a_runner_shares_them(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES=True)  # the operator shows shared figures
    stack.subscribe()
    stack.start_worker()
    clinic_id, email = make_clinic(stack, "knead")
    sharing = runner_in(stack, clinic_id, name="Ada Lovelace")
    private = runner_in(stack, clinic_id)
    for athlete in (sharing, private):
        stack.sim.create_activity(athlete, distance=12_345.0)
    stack.wait_idle()
    staff = staff_login(stack, email)

    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "2 runners are with your clinic" in page
    assert "1 of them does not share" in page
    assert "Ada Lovelace" in page and "12.3 km" in page
    assert str(private) not in page  # not even the id of a runner who does not share
    exported = staff.get(stack.url + "/clinic/export.csv", timeout=10)
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["name"] for r in rows] == ["Ada Lovelace"]
    assert rows[0]["this_week"] == "12.3" and rows[0]["units"] == "km"

    set_sharing(stack, sharing, False)  # withdrawn: hidden at once
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Ada Lovelace" not in page and "12.3 km" not in page
    assert "2 of them do not share" in page
    assert list(csv.DictReader(io.StringIO(staff.get(stack.url + "/clinic/export.csv").text))) == []
    with stack.db.session() as session:
        record = list(session.scalars(select(ConsentChange).order_by(ConsentChange.id)))
    assert [(c.athlete_id, c.shared) for c in record] == [(sharing, True), (sharing, False)]
    assert all(c.at is not None for c in record)


def test_a_logged_session_resets_the_runners_counter(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES=True)  # the operator shows shared figures
    stack.subscribe()
    stack.start_worker()
    clinic_id, email = make_clinic(stack, "knead")
    athlete = runner_in(stack, clinic_id, name="Ada Lovelace")
    stack.sim.create_activity(athlete, distance=10_000.0)
    stack.wait_idle()
    staff = staff_login(stack, email)
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "10.0 km since connecting" in page and "none logged" in page  # no session yet

    # The runner's own today: their runs' time zone, which the worker learnt from the run.
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        assert runner is not None
        today = runner_today(runner)
    r = staff.post(
        f"{stack.url}/clinic/runners/{athlete}/sessions",
        data={"csrf_token": csrf_token(page), "on": today.isoformat()},
        timeout=10,
    )
    assert r.status_code == 200 and "Session logged" in r.text
    assert "0.0 km · 0 days" in r.text
    with stack.db.session() as session:
        logged = session.scalar(select(MassageSession).where(MassageSession.athlete_id == athlete))
    assert logged is not None and logged.clinic_id == clinic_id and logged.place == "Knead"
    # The runner's next note counts from it.
    run = stack.sim.create_activity(athlete, distance=5_000.0)
    stack.wait_idle()
    assert stack.sim.activity(run["id"])["description"]

    future = (today + dt.timedelta(days=5)).isoformat()
    r = staff.post(
        f"{stack.url}/clinic/runners/{athlete}/sessions",
        data={"csrf_token": csrf_token(page), "on": future},
        timeout=10,
    )
    assert "once it has happened" in r.text


def test_a_clinic_runners_note_carries_its_link_and_wording(stack: Stack) -> None:
    clinic_id, _ = make_clinic(stack, "knead", "Knead Clinic", "https://knead.example/book")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.note_templates = {
            "recovery_tip": "From {{ clinic }}: {{ headline|lower }}\n{{ body }}"
        }
        session.commit()
    athlete = runner_in(stack, clinic_id)
    run = stack.sim.create_activity(athlete, distance=5_000.0)
    stack.wait_idle()
    description = stack.sim.activity(run["id"])["description"]
    assert "From Knead Clinic: " in description
    assert "Book a session with Knead Clinic: https://knead.example/book" in description

    # Leaving the clinic: the next note is the service's own again.
    with stack.db.session() as session:
        runner = session.get(Athlete, athlete)
        assert runner is not None
        clinics.leave_clinic(session, runner, utcnow())
        session.commit()
    run = stack.sim.create_activity(athlete, distance=5_000.0)
    stack.wait_idle()
    description = stack.sim.activity(run["id"])["description"]
    assert "Knead" not in description and description.strip()


# -- authorization -----------------------------------------------------------------------------

# Every clinic route; {runner} is clinic A's runner who shares their figures with A.
ROUTES = [
    ("GET", "/clinic"),
    ("GET", "/clinic/export.csv"),
    ("GET", "/clinic/settings"),
    ("POST", "/clinic/settings"),
    ("GET", "/clinic/wording"),
    ("POST", "/clinic/wording/rules/recovery_tip"),
    ("POST", "/clinic/wording/rules/recovery_tip/reset"),
    ("POST", "/clinic/wording/thresholds"),
    ("POST", "/clinic/wording/preview"),
    ("POST", "/clinic/runners/{runner}/sessions"),
]


def _token(browser: requests.Session, stack: Stack, path: str) -> str:
    """A valid CSRF token for this browser, from one of the pages it can open."""
    return csrf_token(browser.get(stack.url + path, timeout=10).text)


def test_clinic_routes_refuse_everyone_but_their_own_staff(stack: Stack) -> None:
    a_id, a_email = make_clinic(stack, "alpha")
    b_id, b_email = make_clinic(stack, "bravo")
    a_sharing = runner_in(stack, a_id, name="Alpha Sharer")
    a_private = runner_in(stack, a_id)
    b_sharing = runner_in(stack, b_id, name="Bravo Sharer")
    own = staff_login(stack, a_email)
    anonymous = requests.Session()
    runner = stack.connect(a_sharing)  # even A's own runner is not A's staff
    other = staff_login(stack, b_email)
    # (who, their CSRF token: valid for their own session, so the refusal is not the token's)
    visitors = {
        "anonymous": (anonymous, _token(anonymous, stack, "/clinic/login")),
        "runner": (runner, _token(runner, stack, "/settings")),
        "other clinic's staff": (other, _token(other, stack, "/clinic")),
    }
    form = {"on": dt.date.today().isoformat(), "name": "Renamed", "booking_url": "",
            "source": "{{ headline }} Hijacked", "action": "save", "kind": "recovery_tip",
            "session_gap_days": "9"}  # fmt: skip
    with stack.db.session() as session:
        a_clinic = session.get(Clinic, a_id)
        assert a_clinic is not None
        a_clinic.note_templates = {"recovery_tip": "{{ headline }} from Alpha"}
        a_clinic.advice_overrides = {"session_gap_days": 4}
        session.commit()

    for who, (browser, token) in visitors.items():
        for method, path in ROUTES:
            url = stack.url + path.format(runner=a_sharing)
            r = browser.request(
                method, url, data={**form, "csrf_token": token}, timeout=10, allow_redirects=False
            )
            if who == "other clinic's staff":
                # No address names a clinic: B's staff reach B's own pages, never A's runner.
                if "/runners/" in path:
                    assert r.status_code == 404, (who, method, path, r.status_code)
                else:
                    assert r.status_code in (200, 302, 400, 422), (who, method, path, r.status_code)
            else:
                assert r.status_code == 302, (who, method, path, r.status_code)
                assert "/clinic/login" in r.headers["Location"], (who, method, path)
            assert "Alpha" not in r.text, (who, method, path)

    # A's own staff: no session for a runner who does not share, nor for B's runner.
    own_token = _token(own, stack, "/clinic")
    for target in (a_private, b_sharing):
        r = own.post(
            f"{stack.url}/clinic/runners/{target}/sessions",
            data={"csrf_token": own_token, "on": dt.date.today().isoformat()},
            timeout=10,
        )
        assert r.status_code == 404
    with stack.db.session() as session:
        assert session.scalar(select(MassageSession)) is None  # nothing logged by anyone
        a, b = session.get(Clinic, a_id), session.get(Clinic, b_id)
        assert a is not None and a.name == "Alpha"  # only B's own settings changed
        assert b is not None and b.name == "Renamed"
        assert a.note_templates == {"recovery_tip": "{{ headline }} from Alpha"}
        assert a.advice_overrides == {"session_gap_days": 4}
    # Each clinic's pages and export show its own sharing runners only.
    for browser, mine, theirs in ((own, "Alpha Sharer", "Bravo Sharer"),
                                  (other, "Bravo Sharer", "Alpha Sharer")):  # fmt: skip
        page = browser.get(stack.url + "/clinic", timeout=10).text
        exported = browser.get(stack.url + "/clinic/export.csv", timeout=10).text
        assert mine in page and mine in exported
        assert theirs not in page and theirs not in exported
    # A script whose staff login has ended gets JSON it can read, not the login page.
    ended = requests.post(
        stack.url + "/clinic/wording/preview",
        json={"kind": "recovery_tip", "source": "{{ headline }}"},
        headers={"Accept": "application/json", "X-CSRFToken": visitors["anonymous"][1]},
        cookies=anonymous.cookies,
        timeout=10,
    )
    assert ended.status_code == 401 and "log in again" in ended.json()["error"]
    # A POST without a token changes nothing either.
    r = own.post(f"{stack.url}/clinic/runners/{a_sharing}/sessions", data=form, timeout=10)
    assert r.status_code == 400


def test_the_export_never_holds_a_spreadsheet_formula() -> None:
    row = clinics.RosterRow(
        athlete_id=1, name='=HYPERLINK("http://evil.example","x")', units="mi", week_m=16093.44,
        since_session_m=0.0, last_session=None, since_days=3, due=False,
        shared_since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(clinics.roster_csv([row]))))
    assert rows[0] == list(clinics.CSV_HEADER)
    since = clinics.CSV_HEADER.index("sharing_since")
    assert rows[1][0].startswith("'=") and rows[1][2] == "10.0" and rows[1][since] == "2026-11-01"


def test_more_staff_and_the_clinic_list(stack: Stack) -> None:
    clinic_id, _ = make_clinic(stack, "knead")
    runner_in(stack, clinic_id, name="Ada")
    runner_in(stack, clinic_id)
    cli = stack.app.test_cli_runner()
    added = cli.invoke(args=["clinic", "add-staff", "knead", "second@knead.example"])
    assert added.exit_code == 0 and "/clinic/password/" in added.output
    again = cli.invoke(args=["clinic", "add-staff", "knead", "second@knead.example"])
    assert again.exit_code != 0 and "already has a login" in again.output
    missing = cli.invoke(args=["clinic", "add-staff", "nope", "third@knead.example"])
    assert missing.exit_code != 0 and "no clinic" in missing.output
    listed = cli.invoke(args=["clinic", "list"])
    assert "knead  Knead  runners=2 sharing=1 staff=2" in listed.output


def test_a_source_waits_after_five_wrong_passwords_and_the_owner_does_not(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(TRUSTED_PROXIES=1)
    _, email = make_clinic(stack, "knead")

    def attempt(source: str, password: str) -> requests.Response:
        """One login attempt from a client address (as the platform's proxy reports it)."""
        browser = requests.Session()
        browser.headers["X-Forwarded-For"] = source
        token = csrf_token(browser.get(stack.url + "/clinic/login", timeout=10).text)
        return browser.post(
            stack.url + "/clinic/login",
            data={"csrf_token": token, "email": email, "password": password},
            timeout=10,
            allow_redirects=False,
        )

    guesser, owner = "203.0.113.9", "198.51.100.7"
    wrong = [attempt(guesser, f"guess number {i}").status_code for i in range(5)]
    assert wrong == [401] * clinics.MAX_FAILED_LOGINS
    paused = attempt(guesser, PASSWORD)
    assert paused.status_code == 429 and 0 < int(paused.headers["Retry-After"]) <= 60
    assert attempt(owner, PASSWORD).status_code == 302  # the account itself is not locked
    with stack.db.session() as session:
        for row in session.scalars(select(LoginThrottle)):
            row.free_at = 0.0  # the wait is over
        session.commit()
    assert attempt(guesser, "guess number 6").status_code == 401  # one more try, then
    again = attempt(guesser, PASSWORD)
    assert again.status_code == 429 and 60 < int(again.headers["Retry-After"]) <= 120


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the signature is what the check reads


def test_clinic_details_logo_and_a_warning_when_wording_stops_fitting(stack: Stack) -> None:
    clinic_id, email = make_clinic(stack, "knead")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.note_templates = {"recovery_tip": "{{ headline }}\n{{ body }}\nWhy: {{ reason }}"}
        session.commit()
    staff = staff_login(stack, email)
    page = staff.get(stack.url + "/clinic/settings", timeout=10)
    token = csrf_token(page.text)

    def save(**fields: Any) -> requests.Response:
        """Post the details form with a file if one is given."""
        logo = fields.pop("logo", None)
        files = {"logo": ("logo.png", logo, "image/png")} if logo is not None else None
        data = {"csrf_token": token, "name": "Knead Physio", "booking_url": "", **fields}
        return staff.post(stack.url + "/clinic/settings", data=data, files=files, timeout=10)

    refused = save(logo=b"GIF89a not a png")
    assert refused.status_code == 400 and "PNG or JPEG" in refused.text
    bad_link = save(booking_url="javascript:alert(1)")
    assert bad_link.status_code == 400 and "https://" in bad_link.text
    saved = save(booking_url="https://knead.example/book", logo=PNG)
    assert saved.status_code == 200 and "Saved." in saved.text
    assert "no longer fits" not in saved.text
    logo = requests.get(stack.url + "/clinic/logo/knead", timeout=10)
    assert logo.status_code == 200 and logo.headers["Content-Type"] == "image/png"
    assert logo.content == PNG

    # A very long booking link: saved, but the clinic learns its wording no longer fits.
    long_link = "https://knead.example/book?" + "x" * 260
    warned = save(booking_url=long_link)
    assert warned.status_code == 200 and "no longer fits" in warned.text
    removed = save(booking_url="https://knead.example/book", remove_logo="y")
    assert removed.status_code == 200
    assert requests.get(stack.url + "/clinic/logo/knead", timeout=10).status_code == 404
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None and clinic.name == "Knead Physio" and clinic.logo is None

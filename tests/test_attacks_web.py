"""The web attacks table (issue 20): each row an attack on the pages, each ending with nothing
lost and nobody let in.

Oversized bodies are refused by the HTTP layer before any page runs: those rows run on SQLite.
The rows that touch the database run on SQLite and on PostgreSQL (the `backend` fixture).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from strava_massage.advice import KINDS
from strava_massage.models import Activity, Athlete, Clinic, ClinicStaff, Note, utcnow
from strava_massage.services import clinics

from .conftest import Stack
from .helpers import csrf_token

PASSWORD = "correct horse battery"
GUESSER, OWNER = "203.0.113.9", "198.51.100.7"
HUGE = "99999999999999999999999"
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass
class World:
    """A clinic with a staff login, a second clinic, and a runner of the first with one run."""

    stack: Stack
    runner: int
    runner_browser: requests.Session
    clinic: int
    other: int
    email: str
    staff_browser: requests.Session
    runs: int = 0
    intruders: list[requests.Session] = field(default_factory=list)

    def url(self, path: str) -> str:
        """An address on the service."""
        return self.stack.url + path

    def token(self, browser: requests.Session, path: str) -> str:
        """A CSRF token from a page the browser may see."""
        return csrf_token(browser.get(self.url(path), timeout=10).text)

    def cli(self, *args: str) -> str:
        """Run a `strava-massage` command against the service's database; its output."""
        runner = self.stack.app.test_cli_runner()
        result = runner.invoke(args=list(args))
        assert result.exit_code == 0, result.output
        return str(result.output)

    def runner_clinic(self) -> int | None:
        """The runner's clinic id, as stored."""
        with self.stack.db.session() as session:
            athlete = session.get(Athlete, self.runner)
            assert athlete is not None
            return athlete.clinic_id


def _login(stack: Stack, email: str, password: str, source: str = OWNER) -> requests.Session:
    """A browser logged in as a staff member, from a client address."""
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = source
    token = csrf_token(browser.get(stack.url + "/clinic/login", timeout=10).text)
    r = browser.post(
        stack.url + "/clinic/login",
        data={"csrf_token": token, "email": email, "password": password},
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == 302, r.status_code
    return browser


def _copy(browser: requests.Session) -> requests.Session:
    """Another browser holding a copy of this one's session cookie (a stolen cookie)."""
    thief = requests.Session()
    thief.cookies.set("session", browser.cookies["session"])
    return thief


@pytest.fixture
def world(make_stack: Callable[..., Stack]) -> World:
    """The service (behind one trusted proxy) with a clinic, its staff and a sharing runner."""
    stack = make_stack(TRUSTED_PROXIES=1)
    stack.subscribe()
    stack.start_worker()
    email = "desk@knead.example"
    with stack.db.session() as session:
        clinic, staff = clinics.create_clinic(
            session, "knead", "Knead", email, "https://knead.example/book"
        )
        clinics.set_password(staff, PASSWORD)
        other, _ = clinics.create_clinic(session, "press", "Press", "desk@press.example")
        session.commit()
        clinic_id, other_id = clinic.id, other.id
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    browser = stack.connect(athlete)
    with stack.db.session() as session:
        runner, joined = session.get(Athlete, athlete), session.get(Clinic, clinic_id)
        assert runner is not None and joined is not None
        clinics.join_clinic(session, runner, joined, utcnow())
        clinics.set_sharing(session, runner, True, "Sam", utcnow())
        session.commit()
    stack.sim.create_activity(athlete, distance=8_000.0)
    stack.wait_idle()
    w = World(stack, athlete, browser, clinic_id, other_id, email, _login(stack, email, PASSWORD))
    w.runs = _counts(w)[0]
    assert w.runs >= 1
    return w


def _counts(w: World) -> tuple[int, int]:
    """The runner's runs and notes, as stored."""
    with w.stack.db.session() as session:
        runs = session.scalar(select(func.count()).where(Activity.athlete_id == w.runner))
        notes = session.scalar(select(func.count()).where(Note.athlete_id == w.runner))
        return int(runs or 0), int(notes or 0)


def _nothing_lost_nobody_in(w: World) -> None:
    """The runner, their runs and the clinic's login are all there; no intruder got a page."""
    with w.stack.db.session() as session:
        assert session.get(Athlete, w.runner) is not None
        assert session.scalar(select(ClinicStaff.id).where(ClinicStaff.email == w.email))
    assert _counts(w)[0] >= w.runs
    for browser in w.intruders:
        r = browser.get(w.url("/dashboard"), allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].endswith("/"), r.status_code
        r = browser.get(w.url("/clinic"), allow_redirects=False, timeout=10)
        assert r.status_code == 302 and "/clinic/login" in r.headers["Location"], r.status_code


# -- oversized bodies ------------------------------------------------------------------------

MIB = 1024 * 1024


class Upload:
    """A multipart file upload streamed chunk by chunk (no Content-Length: chunked encoding).

    Partway, past the point where a form parser would spill a file to disk but under the
    limit, it pauses and watches this process's open files for one in the temporary folder.
    """

    def __init__(self, total: int, temp_dir: Path) -> None:
        self.total, self.temp_dir = total, str(temp_dir)
        self.sent = 0
        self.temp_files: set[str] = set()

    def _watch(self, seconds: float) -> None:
        """Note any open file in the temporary folder, for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for fd in os.listdir("/proc/self/fd"):
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(self.temp_dir):
                    self.temp_files.add(target)
            time.sleep(0.02)

    def __iter__(self) -> Iterator[bytes]:
        """The body: a part header, then zeros until `total` bytes."""
        yield (
            b'--b\r\nContent-Disposition: form-data; name="logo"; filename="x.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        chunk = b"\0" * 65536
        watched = False
        while self.sent < self.total:
            if not watched and self.sent >= 800 * 1024:
                watched = True
                self._watch(0.3)
            self.sent += len(chunk)
            yield chunk


OVERSIZED = [
    # (who posts, path, how many bytes)
    ("runner", "/logout", 2048 * MIB),  # the issue's own case: 2 GB, before the CSRF check
    ("nobody", "/clinic/login", 64 * MIB),
    ("runner", "/disconnect", 64 * MIB),
    ("runner", "/settings", 64 * MIB),
    ("runner", "/c/press/join", 64 * MIB),
    ("staff", "/clinic/settings", 64 * MIB),  # the logo form: a larger limit, still a limit
    ("staff", "/clinic/wording/preview", 64 * MIB),
]


@on_sqlite
@pytest.mark.parametrize(("who", "path", "size"), OVERSIZED, ids=[p for _, p, _ in OVERSIZED])
def test_an_oversized_body_is_refused_and_never_reaches_the_disk(
    world: World, who: str, path: str, size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunked body far over the limit gets 413, no temporary file, and changes nothing."""
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    # The service runs in this process: its temporary files would land here.
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    browser = {"runner": world.runner_browser, "staff": world.staff_browser}.get(who)
    browser = browser or requests.Session()
    body = Upload(size, temp_dir)
    started = time.monotonic()
    r = browser.post(
        world.url(path),
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=60,
        allow_redirects=False,
    )
    assert r.status_code == 413, (r.status_code, r.text[:300])
    assert body.temp_files == set() and list(temp_dir.iterdir()) == []
    assert time.monotonic() - started < 30
    # A declared length over the limit is refused unread, too.
    r = browser.post(world.url(path), data=b"\0" * (2 * MIB), timeout=10)
    assert r.status_code == 413
    # Nothing changed: the runner and the staff member are still logged in.
    assert world.runner_browser.get(world.url("/dashboard"), timeout=10).status_code == 200
    assert world.staff_browser.get(world.url("/clinic"), timeout=10).status_code == 200
    assert world.runner_clinic() == world.clinic
    world.intruders.append(requests.Session())
    _nothing_lost_nobody_in(world)


@on_sqlite
def test_the_logo_form_still_takes_a_logo_at_its_own_limit(world: World) -> None:
    """A 200 KB logo is under the logo form's limit: saved, as before."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * (clinics.MAX_LOGO_BYTES - 8)
    token = world.token(world.staff_browser, "/clinic/settings")
    r = world.staff_browser.post(
        world.url("/clinic/settings"),
        data={"csrf_token": token, "name": "Knead", "booking_url": ""},
        files={"logo": ("logo.png", png, "image/png")},
        timeout=10,
    )
    assert r.status_code == 200 and "Saved." in r.text
    assert requests.get(world.url("/clinic/logo/knead"), timeout=10).content == png


# -- the table of attacks on logins, wording, numbers and clinics ----------------------------


def revoked_by_runner_logout(w: World) -> None:
    """A copied runner cookie stops working when the runner logs out."""
    thief = _copy(w.runner_browser)
    page = thief.get(w.url("/account"), timeout=10)
    assert page.status_code == 200  # the copy works until then
    stolen_token = csrf_token(page.text)
    r = w.runner_browser.post(
        w.url("/logout"), data={"csrf_token": w.token(w.runner_browser, "/account")}, timeout=10
    )
    assert r.status_code == 200
    r = thief.post(w.url("/disconnect"), data={"csrf_token": stolen_token}, timeout=10)
    assert "goodbye" not in r.text.lower()
    w.intruders += [thief, w.runner_browser]


def revoked_by_staff_logout(w: World) -> None:
    """A copied staff cookie stops working when the staff member logs out."""
    thief = _copy(w.staff_browser)
    assert thief.get(w.url("/clinic"), timeout=10).status_code == 200
    token = w.token(w.staff_browser, "/clinic")
    w.staff_browser.post(w.url("/clinic/logout"), data={"csrf_token": token}, timeout=10)
    w.intruders += [thief, w.staff_browser]


def revoked_by_password_reset(w: World) -> None:
    """A reset link ends every session at once; the new password works, the old one not."""
    thief = _copy(w.staff_browser)
    out = w.cli("clinic", "reset-password", w.email)
    assert thief.get(w.url("/clinic"), allow_redirects=False, timeout=10).status_code == 302
    link = re.search(r"(/clinic/password/\S+)", out)
    assert link
    owner = requests.Session()
    token = w.token(owner, link.group(1))
    new = "a brand new passphrase"
    r = owner.post(
        w.url(link.group(1)),
        data={"csrf_token": token, "password": new, "confirm": new},
        timeout=10,
    )
    assert r.status_code == 200 and r.url.endswith("/clinic")
    assert _login(w.stack, w.email, new).get(w.url("/clinic"), timeout=10).status_code == 200
    w.intruders += [thief, w.staff_browser]


def revoked_by_removing_staff(w: World) -> None:
    """A removed staff member's sessions end, and a newcomer's row is not theirs to reuse."""
    out = w.cli("clinic", "add-staff", "knead", "temp@knead.example")
    link = re.search(r"(/clinic/password/\S+)", out)
    assert link
    temp = requests.Session()
    token = w.token(temp, link.group(1))
    data = {"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD}
    assert temp.post(w.url(link.group(1)), data=data, timeout=10).url.endswith("/clinic")
    thief = _copy(temp)
    assert "removed" in w.cli("clinic", "remove-staff", "temp@knead.example")
    w.cli("clinic", "add-staff", "knead", "next@knead.example")  # may take the freed id
    w.intruders += [thief, temp]


def parallel_guesses(w: World) -> None:
    """Eight wrong passwords at once from one address get five tries; the owner still gets in."""
    browsers, tokens = [], []
    for _ in range(8):
        browser = requests.Session()
        browser.headers["X-Forwarded-For"] = GUESSER
        tokens.append(w.token(browser, "/clinic/login"))
        browsers.append(browser)
    start = threading.Barrier(8)
    answers: list[int] = []

    def guess(i: int) -> None:
        """One wrong password, sent when all eight are ready."""
        start.wait(timeout=10)
        r = browsers[i].post(
            w.url("/clinic/login"),
            data={"csrf_token": tokens[i], "email": w.email, "password": f"guess {i}"},
            timeout=30,
            allow_redirects=False,
        )
        answers.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 8 and set(answers) <= {401, 429}, answers
    assert answers.count(401) == clinics.MAX_FAILED_LOGINS, answers  # no more, and no fewer
    # The right password from the guessing address waits too; from the owner's, it works.
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = GUESSER
    token = w.token(browser, "/clinic/login")
    r = browser.post(
        w.url("/clinic/login"),
        data={"csrf_token": token, "email": w.email, "password": PASSWORD},
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == 429
    assert _login(w.stack, w.email, PASSWORD, OWNER).get(w.url("/clinic")).status_code == 200
    w.intruders += [*browsers, browser]


FILTER_ARGUMENTS = (
    "{{ headline|trim(*headline) }}",
    '{{ headline|trim("Big") }}',
    "{{ headline|title(x=1) }}",
    "{{ headline|upper(**headline) }}",
)


def wording_filter_arguments(w: World) -> None:
    """A filter with arguments is refused when saved, and by the live preview."""
    with w.stack.db.session() as session:
        clinic = session.get(Clinic, w.clinic)
        assert clinic is not None
        before = dict(clinic.note_templates or {})
    token = w.token(w.staff_browser, "/clinic/wording")
    for source in FILTER_ARGUMENTS:
        r = w.staff_browser.post(
            w.url("/clinic/wording/rules/high_volume"),
            data={"csrf_token": token, "source": source},
            timeout=10,
        )
        assert r.status_code == 400 and "takes no arguments" in r.text, source
        r = w.staff_browser.post(
            w.url("/clinic/wording/preview"),
            json={"kind": "high_volume", "source": source},
            headers={"X-CSRFToken": token},
            timeout=10,
        )
        assert r.status_code == 422, source
    with w.stack.db.session() as session:
        clinic = session.get(Clinic, w.clinic)
        assert clinic is not None and dict(clinic.note_templates or {}) == before
    w.intruders.append(requests.Session())


BREAKS_AT_RENDER = "{% if headline < none %}{{ headline }}{% endif %} BROKEN-WORDING"


def stored_wording_that_fails_on_a_run(w: World) -> None:
    """A stored wording that fails when rendered: the run counts, with the default wording."""
    with w.stack.db.session() as session:
        clinic = session.get(Clinic, w.clinic)
        assert clinic is not None
        clinic.note_templates = dict.fromkeys(KINDS, BREAKS_AT_RENDER)
        session.commit()
    runs, notes = _counts(w)
    with _captured_logs() as records:
        run = w.stack.sim.create_activity(w.runner, distance=8_000.0)
        w.stack.wait_idle()
    description = str(w.stack.sim.activity(run["id"])["description"])
    assert "\nWhy: " in description and "BROKEN" not in description  # the default wording
    assert _counts(w) == (runs + 1, notes + 1)
    assert not any("BROKEN" in r.getMessage() for r in records)  # never the template's text
    assert any("not used (TypeError)" in r.getMessage() for r in records)
    # The editor refuses the same wording when it is saved.
    token = w.token(w.staff_browser, "/clinic/wording")
    r = w.staff_browser.post(
        w.url("/clinic/wording/rules/high_volume"),
        data={"csrf_token": token, "source": BREAKS_AT_RENDER},
        timeout=10,
    )
    assert r.status_code == 400
    w.intruders.append(requests.Session())


class _Records(logging.Handler):
    """Keeps every log record (the worker logs from its own threads)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)


@contextmanager
def _captured_logs() -> Iterator[list[logging.LogRecord]]:
    """The log records of the `strava_massage` loggers while the block runs."""
    handler = _Records()
    logger = logging.getLogger("strava_massage")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def huge_numbers(w: World) -> None:
    """Numbers no row can have, in every URL and query that takes one: a page or 404, no 500."""
    runner, staff = w.runner_browser, w.staff_browser
    for value in (HUGE, "9223372036854775808", "-1", "0", "1e9", "٣", "9" * 5000):
        r = runner.get(w.url("/dashboard"), params={"before": value}, timeout=10)
        assert r.status_code == 200 and "Your running" in r.text, value
    token = w.token(runner, "/settings")
    for value in (HUGE, "9223372036854775808", "9" * 5000):
        r = runner.post(
            w.url(f"/settings/sessions/{value}/remove"), data={"csrf_token": token}, timeout=10
        )
        assert r.status_code == 404, value
    token = w.token(staff, "/clinic")
    for value in (HUGE, "9223372036854775807", "9" * 5000):
        r = staff.post(
            w.url(f"/clinic/runners/{value}/sessions"),
            data={"csrf_token": token, "on": "2026-12-01"},
            timeout=10,
        )
        assert r.status_code == 404, value
    w.intruders.append(requests.Session())


def clinic_move_asks_first(w: World) -> None:
    """An invite link for another clinic never moves a runner: a page asks, a POST moves."""
    r = w.runner_browser.get(w.url("/connect"), params={"clinic": "press"}, timeout=10)
    assert r.url.endswith("/c/press") and "You are with Knead now" in r.text
    assert w.runner_clinic() == w.clinic
    # The runner signing in again through Strava from the link, in a new browser: asked too.
    browser, landed = w.stack.sim.connect_via(w.stack.url, w.runner, start="/connect?clinic=press")
    assert landed.url.endswith("/c/press") and "You are with Knead now" in landed.text
    assert w.runner_clinic() == w.clinic
    # A forged POST (no token) changes nothing; the runner's own button moves them.
    assert browser.post(w.url("/c/press/join"), data={}, timeout=10).status_code == 400
    assert w.runner_clinic() == w.clinic
    token = csrf_token(landed.text)
    r = browser.post(w.url("/c/press/join"), data={"csrf_token": token}, timeout=10)
    assert r.status_code == 200 and w.runner_clinic() == w.other
    w.intruders.append(requests.Session())


ATTACKS = [
    revoked_by_runner_logout,
    revoked_by_staff_logout,
    revoked_by_password_reset,
    revoked_by_removing_staff,
    parallel_guesses,
    wording_filter_arguments,
    stored_wording_that_fails_on_a_run,
    huge_numbers,
    clinic_move_asks_first,
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.__name__ for a in ATTACKS])
def test_a_web_attack_loses_nothing_and_lets_nobody_in(
    world: World, attack: Callable[[World], None]
) -> None:
    """Each row: the attack, its own checks, then the runner's data and every login hold."""
    attack(world)
    _nothing_lost_nobody_in(world)

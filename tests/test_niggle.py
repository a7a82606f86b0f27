"""A runner's niggle: the rules, the settings page, the CLI, the export, deletion, the clinic."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from babel.dates import format_date

from strava_massage.advice import DEFAULTS
from strava_massage.advice.state import NIGGLE_AREAS, Niggle
from strava_massage.models import Athlete
from strava_massage.services import runner

from .conftest import Stack
from .helpers import csrf_token, make_clinic, rows_about, runner_in, set_sharing, staff_login

TODAY = dt.date(2026, 11, 24)


def _utc_today() -> dt.date:
    """Today for a runner whose time zone is not known yet (their pages use UTC)."""
    return dt.datetime.now(dt.UTC).date()


def _athlete(stack: Stack, athlete_id: int) -> Athlete:
    """The runner's row as stored now."""
    with stack.db.session() as session:
        row = session.get(Athlete, athlete_id)
        assert row is not None
        return row


def _note(stack: Stack, athlete_id: int, area: str, days_ago: int = 0) -> None:
    """Note a sore area for the runner, as their settings page does."""
    with stack.db.session() as session:
        row = session.get(Athlete, athlete_id)
        assert row is not None
        today = _utc_today()
        runner.set_niggle(row, area, today - dt.timedelta(days=days_ago), today)
        session.commit()


# -- the rules ---------------------------------------------------------------------------------


def test_a_niggle_is_stored_and_active_from_its_day() -> None:
    """set_niggle stores the area and the day; active_niggle hands them back as a Niggle."""
    athlete = Athlete()
    on = TODAY - dt.timedelta(days=3)
    assert runner.set_niggle(athlete, "it_band", on, TODAY) == Niggle("it_band", on)
    assert (athlete.niggle_area, athlete.niggle_on) == ("it_band", on)
    assert runner.active_niggle(athlete, TODAY) == Niggle("it_band", on)


@pytest.mark.parametrize("area", ["knee", "", "Calves", "it band", "lower back"])
def test_an_unknown_area_is_refused_with_the_choices(area: str) -> None:
    """Only a key of NIGGLE_AREAS is accepted, and the refusal lists every one of them."""
    athlete = Athlete()
    with pytest.raises(runner.InputError) as refused:
        runner.set_niggle(athlete, area, TODAY, TODAY)
    assert all(key in str(refused.value) for key in NIGGLE_AREAS)
    assert athlete.niggle_area is None and athlete.niggle_on is None


@pytest.mark.parametrize(
    ("days_ago", "accepted"),
    [(-1, False), (-30, False), (0, True), (1, True), (20, True), (21, False), (60, False)],
)
def test_the_date_is_today_or_within_the_last_three_weeks(days_ago: int, accepted: bool) -> None:
    """A future date, or one whose three weeks are already over, is refused."""
    athlete = Athlete()
    on = TODAY - dt.timedelta(days=days_ago)
    if accepted:
        runner.set_niggle(athlete, "calves", on, TODAY)
        assert athlete.niggle_on == on
    else:
        with pytest.raises(runner.InputError, match=r"future|within the last 21 days"):
            runner.set_niggle(athlete, "calves", on, TODAY)
        assert athlete.niggle_on is None


def test_a_niggle_ends_by_itself_after_three_weeks() -> None:
    """Active for 21 days counting its own, then None without anyone clearing it."""
    athlete = Athlete()
    runner.set_niggle(athlete, "shins", TODAY, TODAY)
    niggle = runner.active_niggle(athlete, TODAY)
    assert niggle is not None and runner.niggle_last_day(niggle) == TODAY + dt.timedelta(days=20)
    assert runner.active_niggle(athlete, TODAY + dt.timedelta(days=20)) == niggle
    assert runner.active_niggle(athlete, TODAY + dt.timedelta(days=21)) is None
    assert athlete.niggle_area == "shins"  # stored still (and exported) until replaced or cleared


def test_clearing_forgets_the_niggle_and_days_follow_the_settings() -> None:
    """clear_niggle empties both fields; the three weeks are the advice settings' niggle_days."""
    athlete = Athlete()
    runner.set_niggle(athlete, "foot", TODAY, TODAY)
    runner.clear_niggle(athlete)
    assert athlete.niggle_area is None and athlete.niggle_on is None
    assert runner.active_niggle(athlete, TODAY) is None
    assert runner.NIGGLE_DAYS == DEFAULTS.niggle_days == 21


# -- the settings page -------------------------------------------------------------------------


def test_the_settings_page_notes_shows_and_clears_a_sore_area(stack: Stack) -> None:
    """The form lists the eight areas, saves one, says until when, and Clear forgets it."""
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    page = browser.get(stack.url + "/settings").text
    assert "Something sore?" in page and "Your tips favour" not in page
    options = re.findall(r'<option[^>]*value="([a-z_]+)"', page)
    assert options == list(NIGGLE_AREAS)
    assert "IT band and outer knee" in page and "Foot and arch" in page
    today = _utc_today()
    assert re.search(rf'<input [^>]*id="niggle_on"[^>]*value="{today.isoformat()}"', page)

    on = today - dt.timedelta(days=2)
    r = browser.post(
        stack.url + "/settings/niggle",
        data={"csrf_token": csrf_token(page), "niggle_area": "calves", "niggle_on": on.isoformat()},
    )
    assert r.status_code == 200 and r.url.endswith("/settings#niggle")
    until = format_date(on + dt.timedelta(days=20), "medium", locale="en")
    assert f"Your tips favour your calves until {until}." in r.text
    assert '<option selected value="calves">' in r.text
    row = _athlete(stack, athlete)
    assert (row.niggle_area, row.niggle_on) == ("calves", on)

    r = browser.post(stack.url + "/settings/niggle/clear", data={"csrf_token": csrf_token(r.text)})
    assert r.status_code == 200 and "Your tips favour" not in r.text
    row = _athlete(stack, athlete)
    assert row.niggle_area is None and row.niggle_on is None


@pytest.mark.parametrize(
    ("area", "days_ago", "field", "says"),
    [
        ("calves", -3, "niggle_on", "cannot be in the future"),
        ("calves", 30, "niggle_on", "within the last 21 days"),
        ("knee", 0, "niggle_area", "Not a valid choice"),
        ("calves", None, "niggle_on", "This field is required"),
    ],
)
def test_a_wrong_sore_area_is_refused_next_to_its_field(
    stack: Stack, area: str, days_ago: int | None, field: str, says: str
) -> None:
    """A refused area or date comes back as a 400 with the reason under the field, nothing saved."""
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    token = csrf_token(browser.get(stack.url + "/settings").text)
    on = "" if days_ago is None else (_utc_today() - dt.timedelta(days=days_ago)).isoformat()
    r = browser.post(
        stack.url + "/settings/niggle",
        data={"csrf_token": token, "niggle_area": area, "niggle_on": on},
    )
    assert r.status_code == 400
    assert re.search(rf'id="{field}-error">[^<]*{says}', r.text), r.text
    assert f'aria-invalid="true" id="{field}"' in r.text
    assert _athlete(stack, athlete).niggle_area is None


def test_the_niggle_forms_without_a_csrf_token_change_nothing(stack: Stack) -> None:
    """Noting or clearing a sore area without the form's token is refused."""
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    r = browser.post(
        stack.url + "/settings/niggle",
        data={"niggle_area": "shins", "niggle_on": _utc_today().isoformat()},
    )
    assert r.status_code == 400 and "Nothing was changed" in r.text
    assert _athlete(stack, athlete).niggle_area is None
    _note(stack, athlete, "hips")
    r = browser.post(stack.url + "/settings/niggle/clear", data={})
    assert r.status_code == 400
    assert _athlete(stack, athlete).niggle_area == "hips"


# -- the command line --------------------------------------------------------------------------


def test_runner_set_notes_and_clears_a_niggle_and_show_prints_it(stack: Stack) -> None:
    """--niggle AREA[:DATE] and --clear-niggle; runner show prints the area and its days."""
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    cli = stack.app.test_cli_runner()
    today = _utc_today()

    def run(*args: str) -> str:
        """Run `runner ...` and expect success."""
        result = cli.invoke(args=["runner", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "sore area: none" in run("show", str(athlete))
    run("set", str(athlete), "--niggle", "Achilles")  # any case; the date defaults to today
    row = _athlete(stack, athlete)
    assert (row.niggle_area, row.niggle_on) == ("achilles", today)
    on = today - dt.timedelta(days=5)
    run("set", str(athlete), "--niggle", f"lower_back:{on}")
    until = on + dt.timedelta(days=20)
    shown = run("show", str(athlete))
    assert f"sore area: lower_back since {on} (the tips favour it until {until})" in shown
    run("set", str(athlete), "--clear-niggle")
    assert "sore area: none" in run("show", str(athlete))
    assert _athlete(stack, athlete).niggle_area is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--niggle", "knee"], "must be one of: calves, achilles, shins"),
        (["--niggle", "calves:tomorrow"], "must be a date like"),
        (["--niggle", "calves:2001-01-01"], "within the last 21 days"),
        (["--niggle", "calves:2999-01-01"], "cannot be in the future"),
        (["--niggle", "calves", "--clear-niggle"], "not both"),
    ],
)
def test_a_wrong_niggle_on_the_command_line_is_one_line_and_exit_2(
    stack: Stack, args: list[str], says: str
) -> None:
    """Bad input: exit status 2, one line naming the problem, no traceback, nothing changed."""
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    _note(stack, athlete, "shins")
    result = stack.app.test_cli_runner().invoke(
        args=["runner", "set", str(athlete), "--units", "mi", *args]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and says in result.output, result.output
    assert "Traceback" not in result.output
    row = _athlete(stack, athlete)
    assert row.niggle_area == "shins" and row.units_override is None  # the whole command failed


# -- export, deletion, clinics -----------------------------------------------------------------


def test_the_export_holds_the_niggle(stack: Stack) -> None:
    """The runner's JSON export carries the sore area and its date."""
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    _note(stack, athlete, "hamstrings", days_ago=4)
    body = browser.get(stack.url + "/account/export.json").json()
    on = (_utc_today() - dt.timedelta(days=4)).isoformat()
    assert body["runner"]["niggle_area"] == "hamstrings"
    assert body["runner"]["niggle_on"] == on


def test_deleting_my_data_deletes_the_niggle(stack: Stack) -> None:
    """The niggle lives on the runner's row: disconnecting leaves no trace of it."""
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    _note(stack, athlete, "calves")
    page = browser.get(stack.url + "/dashboard").text
    r = browser.post(stack.url + "/disconnect", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 200
    stack.wait_idle()
    assert rows_about(stack, athlete) == 0
    with stack.db.session() as session:
        assert session.get(Athlete, athlete) is None
        assert session.query(Athlete).filter(Athlete.niggle_area.is_not(None)).count() == 0


def test_a_clinic_sees_a_niggle_only_while_the_runner_shares(stack: Stack) -> None:
    """Staff see a sharing runner's sore area on the roster and CSV, a private runner's never."""
    clinic_id, email = make_clinic(stack, "knead")
    sharing = runner_in(stack, clinic_id, name="Ada Lovelace")
    private = runner_in(stack, clinic_id)
    _note(stack, sharing, "hamstrings", days_ago=1)
    _note(stack, private, "achilles")
    staff = staff_login(stack, email)

    page = staff.get(stack.url + "/clinic", timeout=10).text
    since = format_date(_utc_today() - dt.timedelta(days=1), "medium", locale="en")
    assert f"Hamstrings since {since}" in page
    assert "Achilles" not in page and "achilles" not in page
    rows = list(csv.DictReader(io.StringIO(staff.get(stack.url + "/clinic/export.csv").text)))
    assert [(r["name"], r["sore_area"]) for r in rows] == [("Ada Lovelace", "hamstrings")]

    set_sharing(stack, sharing, False)  # withdrawn: the sore area goes with the figures
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Hamstrings" not in page and "hamstrings" not in page
    set_sharing(stack, private, True, name="Grace Hopper")
    page = staff.get(stack.url + "/clinic", timeout=10).text
    assert "Achilles since" in page


def test_the_settings_page_says_whether_the_clinic_sees_the_niggle(stack: Stack) -> None:
    """A runner with a clinic reads, beside the form, whether the clinic sees their sore area."""
    clinic_id, _ = make_clinic(stack, "knead", name="Knead Clinic")
    athlete = runner_in(stack, clinic_id)
    browser = stack.connect(athlete)
    assert "Knead Clinic does not see it." in browser.get(stack.url + "/settings").text
    set_sharing(stack, athlete, True)
    page = browser.get(stack.url + "/settings").text
    assert "Knead Clinic sees it too, while you share with it." in page

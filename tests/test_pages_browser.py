"""The runner's pages in a real browser: Chromium via Playwright, against service and simulator."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from strava_massage.models import Activity, Athlete, MassageSession, Note, Token
from strava_massage.services import dashboard

from .browser import accessibility_problems, fits_width, screenshot
from .conftest import Stack

# Pages are the same on every backend; the browser tests run on the embedded default.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
MILE = 1609.344


def _connect(page: Any, stack: Stack, athlete_id: int) -> None:
    """From the landing page through the simulator's approval page, back on the dashboard."""
    page.goto(stack.url + "/")
    page.get_by_role("link", name="Connect with Strava").first.click()
    page.wait_for_url(re.compile(r".*/oauth/authorize.*"))
    page.get_by_label("Log in as").select_option(str(athlete_id))
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(stack.url + "/dashboard")
    stack.wait_idle()  # the history import the connect started
    page.reload()  # the page as it is once imported (it would reload itself a moment later)


def _assert_accessible(page: Any) -> None:
    """No serious or critical axe-core finding, and no sideways scrolling."""
    problems = accessibility_problems(page)
    assert not problems, "\n".join(problems)


def _total(page: Any, which: str) -> str:
    """One of the dashboard's totals as shown."""
    return str(page.locator(f"#total-{which}").inner_text())


def _count(stack: Stack, model: Any, athlete_id: int) -> int:
    """Rows of one table about a runner."""
    column = model.id if model is Athlete else model.athlete_id
    with stack.db.session() as session:
        return int(session.scalar(select(func.count()).where(column == athlete_id)) or 0)


def test_connect_from_the_landing_page_and_see_two_runs_totalled(stack: Stack, page: Any) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")["id"]
    page.goto(stack.url + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Every run ends")
    assert page.get_by_text("Powered by Strava", exact=True).is_visible()
    assert "— Legwork note —" in page.locator(".note-example").inner_text()
    _assert_accessible(page)
    screenshot(page, "landing")

    _connect(page, stack, athlete)
    assert page.get_by_text("No runs yet").is_visible()  # the empty state
    _assert_accessible(page)
    screenshot(page, "dashboard-empty")

    stack.sim.create_activity(athlete, distance=5 * MILE)
    stack.sim.create_activity(athlete, distance=8 * MILE)
    stack.wait_idle()
    page.reload()
    for which in ("week", "month", "year", "since-massage"):
        assert _total(page, which) == "13.0 mi", which
    notes = page.locator("ol.notes > li")
    assert notes.count() == 2
    links = page.get_by_role("link", name=re.compile("View on Strava"))
    hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
    with stack.db.session() as session:
        ids = set(session.scalars(select(Note.activity_id).where(Note.athlete_id == athlete)))
    # The Strava the service talks to: here the simulator, whose ids exist only there.
    assert hrefs == {f"{stack.sim.url}/activities/{i}" for i in ids}
    # The chart: 16 bars, the last one this week's; its text alternative says the same.
    assert page.locator("svg .bar").count() == 16
    assert page.locator("svg[role=img] title").first.text_content().startswith("Distance per week")
    page.get_by_text("The chart as a table").click()
    last_row = page.locator("details table tbody tr").last
    assert "13.0 mi" in last_row.inner_text()
    _assert_accessible(page)
    screenshot(page, "dashboard")


def test_switching_to_km_makes_the_next_note_metric(stack: Stack, page: Any) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")["id"]
    _connect(page, stack, athlete)
    page.get_by_role("link", name="Settings").click()
    assert page.get_by_label("As in my Strava settings").is_checked()
    page.get_by_label("Kilometres").check()
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("status").filter(has_text="Saved").is_visible()
    assert page.get_by_label("Kilometres").is_checked()
    _assert_accessible(page)
    screenshot(page, "settings-saved")

    run = stack.sim.create_activity(athlete, distance=10_000.0)
    stack.wait_idle()
    description = stack.sim.activity(run["id"])["description"]
    assert " km" in description and " mi" not in description
    page.get_by_role("link", name="Dashboard").click()
    assert _total(page, "week") == "10.0 km"


def test_invalid_settings_are_refused_next_to_the_field(stack: Stack, page: Any) -> None:
    athlete = stack.sim.create_athlete()["id"]
    _connect(page, stack, athlete)
    page.goto(stack.url + "/settings")
    disclaimer = page.get_by_label("A line added under every note")
    assert disclaimer.get_attribute("maxlength") == "160"  # the browser keeps it short
    page.get_by_label("Next race: date").fill("2020-05-01")
    page.get_by_label("Next race: distance in miles").fill("999")  # a runner in miles
    page.get_by_role("button", name="Save settings").click()
    race_on = page.get_by_label("Next race: date")
    assert race_on.get_attribute("aria-invalid") == "true"
    assert race_on.get_attribute("aria-describedby") == "race_on-error"
    assert "past" in page.locator("#race_on-error").inner_text()
    assert "250" in page.locator("#race_distance-error").inner_text()
    _assert_accessible(page)
    screenshot(page, "settings-errors")
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None and row.next_race_on is None and row.next_race_distance_m is None


def test_logging_a_massage_resets_since_last_massage(stack: Stack, page: Any) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    # Seven weeks before this one, imported on connect: a build from 30 to 54 km a week.
    monday = dashboard.runner_today(Athlete(timezone="Europe/London"))
    monday -= dt.timedelta(days=monday.weekday())
    for week in range(1, 8):
        for day, share in ((1, 0.25), (3, 0.3), (6, 0.45)):
            start = dt.datetime.combine(
                monday - dt.timedelta(weeks=week) + dt.timedelta(day), dt.time(7)
            )
            km = 54 - 4 * (week - 1)
            stack.sim.create_activity(
                athlete, distance=km * share * 1000, start_date_local=start, fire=False
            )
    _connect(page, stack, athlete)
    stack.sim.create_activity(athlete, distance=12_000.0)
    stack.wait_idle()
    page.reload()
    assert _total(page, "since-massage") == "12.0 km"

    page.get_by_role("link", name="Log a massage").click()
    assert page.url == stack.url + "/settings#sessions"
    page.get_by_label("Date of the session").fill(dt.date.today().isoformat())
    page.get_by_label("Where (optional)").fill("Riverside Sports Massage")
    page.get_by_role("button", name="Log session").click()
    assert page.get_by_role("status").filter(has_text="Session logged").is_visible()
    assert page.locator("ul.sessions li").count() == 1
    screenshot(page, "settings-session")

    page.get_by_role("link", name="Dashboard").click()
    assert _total(page, "since-massage") == "0.0 km"
    assert _total(page, "week") == "12.0 km"  # the other totals are untouched
    assert page.locator("svg .session").count() == 1
    assert page.locator("svg .bar.over").count() == 2  # the 54 and 50 km weeks: over 48 km
    screenshot(page, "dashboard-history")

    page.goto(stack.url + "/settings")
    page.get_by_role("button", name=re.compile("^Remove")).click()
    assert page.get_by_text("No sessions logged yet").is_visible()
    assert _count(stack, MassageSession, athlete) == 0


def test_export_then_disconnect_after_confirming(stack: Stack, page: Any) -> None:
    athlete = stack.sim.create_athlete()["id"]
    _connect(page, stack, athlete)
    stack.sim.create_activity(athlete, distance=7_000.0)
    stack.wait_idle()
    page.get_by_role("link", name="Account").click()
    _assert_accessible(page)
    screenshot(page, "account")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    exported = json.loads(download.value.path().read_text())
    assert exported["runner"]["id"] == athlete
    assert [r["distance_m"] for r in exported["runs"]] == [7000.0]
    assert len(exported["notes"]) == 1 and "access_token" not in json.dumps(exported)

    page.get_by_role("link", name="Disconnect and delete my data").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Disconnect and delete")
    assert _count(stack, Athlete, athlete) == 1  # nothing happens before the confirmation
    _assert_accessible(page)
    screenshot(page, "confirm-delete")
    page.get_by_role("button", name="Yes, disconnect and delete").click()
    assert page.get_by_role("heading", name="You are disconnected").is_visible()
    _assert_accessible(page)
    screenshot(page, "goodbye")
    assert stack.sim.count("POST", "/oauth/deauthorize") == 1
    stack.wait_idle()  # Strava's deauthorization event, which must not bring anything back
    for model in (Athlete, Activity, Note, Token, MassageSession):
        assert _count(stack, model, athlete) == 0, model.__name__
    page.goto(stack.url + "/dashboard")
    assert page.url == stack.url + "/"  # logged out: back to the start


def test_errors_and_refusals_get_helpful_pages(make_stack: Any, page: Any) -> None:
    stack: Stack = make_stack()

    def boom() -> str:
        """A view with a bug in it."""
        raise RuntimeError("a bug")

    stack.app.add_url_rule("/test-only-boom", "boom", boom)
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]

    response = page.goto(stack.url + "/no/such/page")
    assert response.status == 404
    assert page.get_by_role("heading", name="Page not found").is_visible()
    _assert_accessible(page)
    screenshot(page, "error-404")

    response = page.goto(stack.url + "/test-only-boom")
    assert response.status == 500
    assert "Traceback" not in page.content() and "a bug" not in page.content()
    assert page.get_by_role("heading", name="Something went wrong").is_visible()
    _assert_accessible(page)
    screenshot(page, "error-500")

    # The runner says no on Strava's page.
    page.goto(stack.url + "/connect")
    page.get_by_role("button", name="Cancel").click()
    assert page.get_by_role("heading", name="No problem").is_visible()
    _assert_accessible(page)
    screenshot(page, "connect-denied")

    # The runner unticks a permission the notes need.
    page.goto(stack.url + "/connect")
    page.get_by_label("Log in as").select_option(str(athlete))
    page.get_by_role("checkbox", name=re.compile("activity:write")).uncheck()
    page.get_by_role("button", name="Authorize").click()
    assert page.get_by_role("heading", name="One permission is missing").is_visible()
    assert page.get_by_text("add the note to your run's description").is_visible()
    _assert_accessible(page)
    screenshot(page, "connect-scope-missing")
    assert _count(stack, Athlete, athlete) == 0

    # A form sent without its token (a page left open across a restart, or a forgery).
    page.goto(stack.url + "/")
    with page.expect_navigation():
        page.evaluate(
            """() => { const f = document.createElement("form"); f.method = "post";
                       f.action = "/logout"; document.body.appendChild(f); f.submit(); }"""
        )
    assert page.get_by_role("heading", name="That form has expired").is_visible()
    _assert_accessible(page)
    screenshot(page, "expired-form")

    # Strava's OAuth is down when the code is exchanged.
    page.goto(stack.url + "/connect")
    page.get_by_label("Log in as").select_option(str(athlete))
    stack.sim.oauth_down = True
    try:
        page.get_by_role("button", name="Authorize").click()
        assert page.get_by_role("heading", name="Strava is not answering right now").is_visible()
    finally:
        stack.sim.oauth_down = False
    _assert_accessible(page)
    screenshot(page, "connect-outage")
    assert _count(stack, Athlete, athlete) == 0

    # A page that needs a runner, asked for by a visitor.
    page.goto(stack.url + "/settings")
    assert page.url == stack.url + "/"
    assert page.get_by_role("status").filter(has_text="Connect with Strava").is_visible()


def test_every_page_works_at_360_px_and_by_keyboard(stack: Stack, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    phone = context.new_page()
    try:
        athlete = stack.sim.create_athlete()["id"]
        _connect(phone, stack, athlete)
        stack.sim.create_activity(athlete, distance=9_000.0)
        stack.wait_idle()
        for path in ("/", "/dashboard", "/settings", "/account", "/account/delete", "/nowhere"):
            phone.goto(stack.url + path)
            assert fits_width(phone), path
            _assert_accessible(phone)
        phone.goto(stack.url + "/dashboard")
        screenshot(phone, "dashboard-360px")

        # By keyboard alone: the skip link first, then the way to the settings and a save.
        phone.goto(stack.url + "/settings")
        phone.keyboard.press("Tab")
        assert phone.evaluate("document.activeElement.textContent") == "Skip to the content"
        phone.keyboard.press("Enter")
        assert phone.url.endswith("#main")
        for _ in range(40):
            phone.keyboard.press("Tab")
            if phone.evaluate("document.activeElement.name") == "units":
                break
        else:
            pytest.fail("the units were never reached by Tab")
        # Inside a radio group the arrow keys choose: "As on Strava" -> Miles -> Kilometres.
        phone.keyboard.press("ArrowDown")
        phone.keyboard.press("ArrowDown")
        while phone.evaluate("document.activeElement.textContent") != "Save settings":
            phone.keyboard.press("Tab")
        phone.keyboard.press("Enter")
        phone.wait_for_url(stack.url + "/settings")
        assert phone.get_by_label("Kilometres").is_checked()
    finally:
        context.close()


def test_a_german_browser_reads_one_language_english(stack: Stack, chromium: Any) -> None:
    # No German translation ships: the page is English, its numbers and dates too.
    context = chromium.new_context(locale="de-DE")
    german = context.new_page()
    try:
        athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
        _connect(german, stack, athlete)
        stack.sim.create_activity(athlete, distance=12_345.0)
        stack.wait_idle()
        german.reload()
        assert german.locator("html").get_attribute("lang") == "en"
        assert _total(german, "week") == "12.3 km"  # a decimal point, as in the note
        note_date = german.locator("ol.notes strong").first.inner_text()
        assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", note_date), note_date
        screenshot(german, "dashboard-de")
    finally:
        context.close()

"""A clinic's staff pages in a real browser: the note wording editor (live preview, save, refusal,
and without JavaScript) and the runners' dashboard (counts, figures, logging a session)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert

from strava_massage.domain.clinic_notes import sample_advice
from strava_massage.models import Activity, Athlete, Clinic, utcnow
from strava_massage.services import clinics, dashboard

from .browser import accessibility_problems, fits_width, screenshot
from .conftest import Stack

MakeStack = Callable[..., Stack]

# Pages are the same on every backend; the browser tests run on the embedded default.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
PASSWORD = "a long enough password"
NAME = "Riverside Sports Massage"
BOOKING = "https://book.example/riverside"
EMAIL = "desk@riverside.example"
OWN = "{{ headline|upper }}\n{{ clinic }} says: {{ body }}\nWhy: {{ reason }}"


def _clinic(stack: Stack) -> int:
    """The clinic with one staff login (EMAIL, PASSWORD); returns its id."""
    with stack.db.session() as session:
        clinic, staff = clinics.create_clinic(session, "riverside", NAME, EMAIL, BOOKING)
        clinics.set_password(staff, PASSWORD)
        session.commit()
        return clinic.id


def _log_in(page: Any, stack: Stack) -> None:
    """Through the staff login form, onto the runners' page."""
    page.goto(stack.url + "/clinic/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(stack.url + "/clinic")


def _assert_accessible(page: Any) -> None:
    """No serious or critical axe-core finding."""
    problems = accessibility_problems(page)
    assert not problems, "\n".join(problems)


def _is_preview(response: Any) -> bool:
    """Whether a response is the live preview's."""
    return bool(response.url.endswith("/clinic/wording/preview"))


def test_wording_editor_previews_saves_and_refuses(make_stack: MakeStack, page: Any) -> None:
    stack: Stack = make_stack()
    clinic_id = _clinic(stack)
    _log_in(page, stack)
    page.get_by_role("link", name="Note wording").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Note wording"
    _assert_accessible(page)
    screenshot(page, "clinic-wording")

    section = page.locator("#rule-high_volume")
    wording = section.get_by_label("Wording for “Big week” notes")
    preview = section.locator(".note-preview")
    why = f"Why: {sample_advice('high_volume').reason}"
    assert why in preview.inner_text()  # the default wording, server-side
    # Typing asks the server for the note (no page load) and shows it in place.
    with page.expect_response(_is_preview) as answer:
        wording.fill(OWN)
    assert answer.value.status == 200
    preview.locator("pre", has_text=sample_advice("high_volume").headline.upper()).wait_for()
    assert f"{NAME} says: {sample_advice('high_volume').body}" in preview.inner_text()
    assert f"Book a session with {NAME}: {BOOKING}" in preview.inner_text()
    assert page.url.endswith("/clinic/wording")  # still the same page: nothing was submitted
    screenshot(page, "clinic-wording-live-preview")

    section.get_by_role("button", name=re.compile("^Save wording")).click()
    page.wait_for_url(re.compile(r".*/clinic/wording#rule-high_volume$"))
    assert page.get_by_role("status").filter(has_text="Saved: Big week notes").is_visible()
    section = page.locator("#rule-high_volume")
    assert section.get_by_label("Wording for “Big week” notes").input_value() == OWN
    assert section.get_by_text("Notes use your own wording.").is_visible()
    assert section.get_by_role("button", name=re.compile("^Back to the default")).is_visible()
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None and clinic.note_templates == {"high_volume": OWN}

    # A wording that walks to Python's internals: the live preview says why, before saving...
    wording = section.get_by_label("Wording for “Big week” notes")
    with page.expect_response(_is_preview) as answer:
        wording.fill("{{ headline.__class__.__mro__ }}")
    assert answer.value.status == 422
    refused = section.locator(".note-preview .refused")
    refused.filter(has_text="attribute access").wait_for()
    screenshot(page, "clinic-wording-live-refusal")
    # ...and saving it anyway is refused next to the field, with the saved wording kept.
    section.get_by_role("button", name=re.compile("^Save wording")).click()
    page.wait_for_url(re.compile(r".*/clinic/wording/rules/high_volume#rule-high_volume$"))
    summary = page.get_by_role("alert")
    assert summary.inner_text() == "Nothing was saved. See why the “Big week” wording was refused."
    section = page.locator("#rule-high_volume")
    wording = section.get_by_label("Wording for “Big week” notes")
    summary.get_by_role("link").click()
    assert page.url.endswith("#source-high_volume")
    assert wording.get_attribute("aria-invalid") == "true"
    assert wording.get_attribute("aria-describedby") == (
        "source-high_volume-hint source-high_volume-error"
    )
    error = page.locator("#source-high_volume-error")
    assert "attribute access (a dot) is not allowed" in error.inner_text()
    _assert_accessible(page)
    error.scroll_into_view_if_needed()
    screenshot(page, "clinic-wording-refused")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None and clinic.note_templates == {"high_volume": OWN}

    # Back to the default wording.
    section.get_by_role("button", name=re.compile("^Back to the default")).click()
    assert page.get_by_role("status").filter(has_text="default wording again").is_visible()
    section = page.locator("#rule-high_volume")
    assert section.get_by_text("Notes use the default wording.").is_visible()

    # A threshold out of range is refused next to its box, and nothing is saved.
    page.get_by_label("Big week, for runners in kilometres").fill("500")
    page.get_by_label("Days between two session suggestions, at least").fill("3.5")
    page.get_by_role("button", name="Save thresholds").click()
    assert page.get_by_role("alert").inner_text().startswith("Nothing was saved")
    box = page.get_by_label("Big week, for runners in kilometres")
    assert box.get_attribute("aria-invalid") == "true" and box.input_value() == "500"
    assert "from 10 to 250" in page.locator("#t-high_volume_week_km-error").inner_text()
    assert "whole number from 1 to 60" in page.locator("#t-session_gap_days-error").inner_text()
    _assert_accessible(page)
    page.locator("#thresholds").scroll_into_view_if_needed()
    screenshot(page, "clinic-thresholds-refused")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None and clinic.advice_overrides == {}


def test_markup_typed_into_a_wording_is_shown_as_text(make_stack: MakeStack, page: Any) -> None:
    stack: Stack = make_stack()
    _clinic(stack)
    _log_in(page, stack)
    page.goto(stack.url + "/clinic/wording")
    dialogs: list[str] = []

    def dialog(d: Any) -> None:
        """Note any alert a wording managed to raise (there must be none), and close it."""
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    section = page.locator("#rule-recovery_tip")
    hostile = "<img src=x onerror=alert(1)><b>bold</b> {{ headline }}"
    with page.expect_response(_is_preview):
        section.get_by_role("textbox").fill(hostile)
    shown = section.locator(".note-preview pre", has_text="<b>bold</b>")
    shown.wait_for()
    assert section.locator(".note-preview img, .note-preview b").count() == 0
    section.get_by_role("button", name=re.compile("^Save wording")).click()
    page.wait_for_url(re.compile(r".*#rule-recovery_tip$"))
    assert "<b>bold</b> Recovery tip" in page.locator("#preview-recovery_tip").inner_text()
    assert page.locator("main img, main b").count() == 0 and dialogs == []


def test_the_editor_works_without_javascript(make_stack: MakeStack, chromium: Any) -> None:
    stack: Stack = make_stack()
    clinic_id = _clinic(stack)
    context = chromium.new_context(java_script_enabled=False, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        _log_in(page, stack)
        page.goto(stack.url + "/clinic/wording")
        section = page.locator("#rule-long_run")
        section.get_by_role("textbox").fill("{{ clinic }}: {{ headline|lower }}\n{{ body }}")
        section.get_by_role("button", name=re.compile("^Preview")).click()
        section = page.locator("#rule-long_run")
        headline = sample_advice("long_run").headline.lower()
        assert f"{NAME}: {headline}" in section.locator("pre").inner_text()
        assert section.get_by_text("The text below is not saved yet.").is_visible()
        with stack.db.session() as session:
            clinic = session.get(Clinic, clinic_id)
            assert clinic is not None and clinic.note_templates == {}
        screenshot(page, "clinic-wording-no-js-preview")

        # The thresholds are a plain form too. (axe needs scripts: the pages are checked by
        # the other tests.)
        page.get_by_label("Big week, for runners in kilometres").fill("60")
        page.get_by_role("button", name="Save thresholds").click()
        assert page.get_by_role("status").filter(has_text="Thresholds saved").is_visible()
        assert "past 60 km" in page.locator("#preview-high_volume").inner_text()
    finally:
        context.close()


def _runner(session: Any, athlete_id: int, connected: dt.datetime) -> Athlete:
    """A runner row as connecting makes it (no Strava calls needed for the clinic's pages)."""
    athlete = Athlete(id=athlete_id, units="km", timezone="Europe/London", connected_at=connected)
    session.add(athlete)
    session.flush()
    return athlete


def _two_runners(stack: Stack) -> tuple[dt.date, int]:
    """Two runners with the clinic, one sharing as "Ada Runner"; today, and days since joining."""
    clinic_id = _clinic(stack)
    today = dashboard.runner_today(Athlete(timezone="Europe/London"))
    monday = today - dt.timedelta(days=today.weekday())
    connected = dt.datetime.combine(monday - dt.timedelta(days=40), dt.time(9), tzinfo=dt.UTC)
    # 12 km today (this week), and ten 17 km runs before this week: 182 km since connecting.
    before = [monday - dt.timedelta(days=1 + 3 * i) for i in range(10)]
    runs = [(today, 12_000.0)] + [(day, 17_000.0) for day in before]
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        sharing, private = _runner(session, 501, connected), _runner(session, 502, connected)
        for athlete in (sharing, private):
            clinics.join_clinic(session, athlete, clinic, utcnow())
        clinics.set_sharing(session, sharing, True, "Ada Runner", utcnow())
        session.execute(
            insert(Activity),
            [
                {"id": owner * 100 + i, "athlete_id": owner, "local_date": day,
                 "distance_m": metres, "moving_time_s": 3600, "sport_type": "Run"}
                for owner in (501, 502) for i, (day, metres) in enumerate(runs)
            ],
        )  # fmt: skip
        session.commit()
    return today, (today - connected.date()).days


def test_dashboard_by_default_shows_no_strava_figures(make_stack: MakeStack, page: Any) -> None:
    stack: Stack = make_stack()  # CLINIC_SHARED_FIGURES off, as Strava's agreement suggests
    _two_runners(stack)
    _log_in(page, stack)
    rows = page.locator("table.roster tbody tr")
    assert rows.count() == 1
    cells = [c.strip() for c in rows.first.locator("th, td").all_inner_texts()]
    assert cells[0] == "Ada Runner" and not [c for c in cells if " km" in c or c == "Due"]
    headers = page.locator("table.roster thead th").all_inner_texts()
    assert "This week" not in headers and "Due for a session" not in headers
    _assert_accessible(page)
    screenshot(page, "clinic-dashboard")


def test_dashboard_shows_sharers_and_logs_a_session(make_stack: MakeStack, page: Any) -> None:
    stack: Stack = make_stack(CLINIC_SHARED_FIGURES=True)  # the operator shows shared figures
    today, _days = _two_runners(stack)

    _log_in(page, stack)
    counts = page.locator(".counts").inner_text()
    assert "2 runners are with your clinic." in counts
    assert "1 of them does not share with you." in counts
    rows = page.locator("table.roster tbody tr")
    assert rows.count() == 1  # the runner who does not share has no row at all
    row = rows.first
    cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
    assert cells[:5] == ["Ada Runner", "12.0 km", "182.0 km since connecting", "none logged", "Due"]
    _assert_accessible(page)
    screenshot(page, "clinic-dashboard-figures")

    row.get_by_label("Date of the session for Ada Runner").fill(today.isoformat())
    row.get_by_role("button", name="Log").click()
    assert page.get_by_role("status").filter(has_text="Session logged.").is_visible()
    row = page.locator("table.roster tbody tr").first
    cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
    assert cells[1:3] == ["12.0 km", "0.0 km · 0 days"]  # the week stays; "since" starts again
    assert cells[3] == f"{today:%b} {today.day}, {today.year}" and cells[4] == "Not yet"
    _assert_accessible(page)
    screenshot(page, "clinic-dashboard-session-logged")


def test_the_clinic_pages_fit_a_phone(make_stack: MakeStack, chromium: Any) -> None:
    stack: Stack = make_stack()
    _clinic(stack)
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    phone = context.new_page()
    try:
        _log_in(phone, stack)
        for path in ("/clinic", "/clinic/wording", "/clinic/wording?units=mi"):
            phone.goto(stack.url + path)
            assert fits_width(phone), path
            _assert_accessible(phone)
        assert "past 30 mi" in phone.locator("#preview-high_volume").inner_text()
        screenshot(phone, "clinic-wording-360px")
    finally:
        context.close()

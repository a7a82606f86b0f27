"""A clinic from the runner's side over HTTP: invite link, joining, sharing, leaving, export."""

from __future__ import annotations

import datetime as dt
import html
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from strava_massage.models import Athlete, Clinic, ConsentChange
from strava_massage.services import clinics

from .browser import accessibility_problems, fits_width
from .conftest import Stack
from .helpers import csrf_token

MakeStack = Callable[..., Stack]  # the conftest fixture that builds a stack
BOOKING = "https://book.example.com/riverside"


def _clinic(stack: Stack, slug: str, name: str, booking_url: str | None = BOOKING) -> int:
    """A clinic made as the CLI makes one; returns its id."""
    with stack.db.session() as session:
        clinic, _ = clinics.create_clinic(session, slug, name, f"desk@{slug}.example", booking_url)
        session.commit()
        return clinic.id


def _connect_from(
    stack: Stack, browser: requests.Session, path: str, athlete_id: int, decision: str
) -> requests.Response:
    """Follow a Connect link, answer Strava's approval page, and return where the runner lands."""
    r = browser.get(stack.url + path, allow_redirects=False)
    assert r.status_code == 302
    q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    approval = requests.post(
        stack.sim.url + "/oauth/authorize",
        data={**q, "athlete_id": str(athlete_id), "granted": q["scope"].split(","),
              "decision": decision},
        allow_redirects=False,
    )  # fmt: skip
    assert approval.status_code == 302
    return browser.get(approval.headers["Location"])


def _connect_via_invite(
    stack: Stack, slug: str, decision: str = "authorize"
) -> tuple[requests.Session, requests.Response, int]:
    """A visitor connects with the invite page's button: (browser, landing page, athlete id)."""
    athlete_id = stack.sim.create_athlete()["id"]
    browser = requests.Session()
    invite = browser.get(stack.url + f"/c/{slug}")
    assert invite.status_code == 200
    button = re.search(r'class="connect-strava" href="([^"]+)"', invite.text)
    assert button, invite.text[:500]
    page = _connect_from(stack, browser, html.unescape(button.group(1)), athlete_id, decision)
    return browser, page, athlete_id


def _athlete(stack: Stack, athlete_id: int) -> Athlete:
    """The runner's row as stored now."""
    with stack.db.session() as session:
        row: Athlete | None = session.get(Athlete, athlete_id)
        assert row is not None
        return row


def _changes(stack: Stack, athlete_id: int) -> list[tuple[int, bool, dt.datetime]]:
    """The runner's consent record: (clinic id, shared, when), oldest first."""
    with stack.db.session() as session:
        query = (
            select(ConsentChange)
            .where(ConsentChange.athlete_id == athlete_id)
            .order_by(ConsentChange.id)
        )
        return [(c.clinic_id, c.shared, _utc(c.at)) for c in session.scalars(query)]


def _utc(when: dt.datetime) -> dt.datetime:
    """An aware UTC time (SQLite hands back naive ones)."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _sharing_names(stack: Stack, clinic_id: int) -> list[str]:
    """The names on the clinic's roster: only runners sharing with it."""
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        return [row.name for row in clinics.roster(session, clinic).sharing]


def _share(
    stack: Stack, browser: requests.Session, share: bool, name: str = ""
) -> requests.Response:
    """Post the settings page's sharing form."""
    data = {
        "csrf_token": csrf_token(browser.get(stack.url + "/settings").text),
        "display_name": name,
    }
    if share:
        data["share"] = "y"  # a ticked checkbox; an unticked one sends nothing
    return browser.post(stack.url + "/settings/clinic/sharing", data=data)


def test_a_visitor_sees_what_joining_means_and_a_connect_button(make_stack: MakeStack) -> None:
    stack = make_stack()
    _clinic(stack, "riverside", "Riverside Sports Massage")
    page = requests.get(stack.url + "/c/riverside")
    assert page.status_code == 200
    assert "<h1" in page.text and "Riverside Sports Massage invites you to Legwork" in page.text
    assert "sees nothing of your training unless you switch on sharing" in page.text
    assert 'href="/connect?clinic=riverside"' in page.text
    assert ">Connect with Strava</a>" in page.text
    assert "/join" not in page.text  # a visitor connects first; there is nothing to join yet
    assert 'class="clinic-logo"' not in page.text  # no logo uploaded


def test_an_unknown_invite_is_a_helpful_404_and_connect_ignores_it(make_stack: MakeStack) -> None:
    stack = make_stack()
    r = requests.get(stack.url + "/c/no-such-clinic")
    assert r.status_code == 404 and "There is no page at this address" in r.text
    # A made-up clinic on the Connect link connects the runner all the same, to no clinic.
    athlete_id = stack.sim.create_athlete()["id"]
    path = "/connect?clinic=no-such-clinic"
    page = _connect_from(stack, requests.Session(), path, athlete_id, "authorize")
    assert page.url == stack.url + "/dashboard" and "You joined" not in page.text
    assert _athlete(stack, athlete_id).clinic_id is None


def test_connecting_through_an_invite_links_the_runner_to_the_clinic(make_stack: MakeStack) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    before = dt.datetime.now(dt.UTC)
    browser, page, athlete_id = _connect_via_invite(stack, "riverside")
    assert page.status_code == 200 and page.url == stack.url + "/dashboard"
    assert "You joined Riverside Sports Massage." in page.text
    row = _athlete(stack, athlete_id)
    assert row.clinic_id == clinic_id and row.clinic_joined_at is not None
    assert _utc(row.clinic_joined_at) >= before
    # Joining shares nothing: consent is a separate, explicit step.
    assert row.clinic_consent_at is None and row.clinic_display_name is None
    assert _changes(stack, athlete_id) == [] and _sharing_names(stack, clinic_id) == []
    # The dashboard carries the clinic's brand and its booking link, opening normally.
    page = browser.get(stack.url + "/dashboard")
    assert "Your clinic: Riverside Sports Massage" in page.text
    link = re.search(r'<a class="button" href="([^"]+)" rel="noopener">Book a session', page.text)
    assert link and link.group(1) == BOOKING and "target=" not in link.group(0)
    # Back on the invite, the runner sees they are with the clinic already.
    invite = browser.get(stack.url + "/c/riverside").text
    assert "You are with Riverside Sports Massage since" in invite and "/join" not in invite


def test_a_refused_approval_keeps_the_invite_for_the_retry(make_stack: MakeStack) -> None:
    stack = make_stack()
    _clinic(stack, "riverside", "Riverside Sports Massage")
    _, page, athlete_id = _connect_via_invite(stack, "riverside", decision="deny")
    assert "nothing was stored" in page.text
    assert 'href="/connect?clinic=riverside"' in page.text
    with stack.db.session() as session:
        assert session.get(Athlete, athlete_id) is None


def test_a_runner_joins_from_the_invite_and_joining_another_switches(make_stack: MakeStack) -> None:
    stack = make_stack()
    first = _clinic(stack, "riverside", "Riverside Sports Massage")
    second = _clinic(stack, "hilltop", "Hilltop Physio", booking_url=None)
    athlete_id = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete_id)  # connected without a clinic
    assert _athlete(stack, athlete_id).clinic_id is None
    assert "Your clinic" not in browser.get(stack.url + "/dashboard").text

    invite = browser.get(stack.url + "/c/riverside").text
    assert "connect-strava" not in invite and "You are with" not in invite
    token = csrf_token(invite)
    page = browser.post(stack.url + "/c/riverside/join", data={"csrf_token": token})
    assert page.url == stack.url + "/dashboard" and "You joined Riverside" in page.text
    assert _athlete(stack, athlete_id).clinic_id == first
    assert _share(stack, browser, True, "Sam R.").status_code == 200
    assert _sharing_names(stack, first) == ["Sam R."]

    invite = browser.get(stack.url + "/c/hilltop").text
    assert "You are with Riverside Sports Massage now. Joining Hilltop Physio moves you" in invite
    assert 'aria-describedby="switch-note">Join Hilltop Physio</button>' in invite
    page = browser.post(stack.url + "/c/hilltop/join", data={"csrf_token": token})
    assert "You left Riverside Sports Massage and joined Hilltop Physio." in page.text
    assert "Book a session" not in page.text  # this clinic has no booking link
    row = _athlete(stack, athlete_id)
    assert row.clinic_id == second
    # Sharing is asked anew, clinic by clinic: the old one's ends on record, the new one's is off.
    assert row.clinic_consent_at is None and row.clinic_display_name is None
    assert [(c, shared) for c, shared, _ in _changes(stack, athlete_id)] == [
        (first, True),
        (first, False),
    ]
    assert _sharing_names(stack, first) == [] and _sharing_names(stack, second) == []
    # Joining the same clinic again changes nothing.
    page = browser.post(stack.url + "/c/hilltop/join", data={"csrf_token": token})
    assert "You are already with Hilltop Physio." in page.text
    again = _athlete(stack, athlete_id)
    assert again.clinic_id == second and again.clinic_joined_at == row.clinic_joined_at


def test_sharing_names_the_figures_when_the_operator_shows_them(make_stack: MakeStack) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES=True)
    _clinic(stack, "riverside", "Riverside Sports Massage")
    browser, _, _ = _connect_via_invite(stack, "riverside")
    settings = browser.get(stack.url + "/settings").text
    assert (
        '<label for="share">Share my weekly distance and massage sessions with '
        "Riverside Sports Massage</label>" in settings
    )
    page = _share(stack, browser, True, "Sam R.")
    assert "Riverside Sports Massage now sees your weekly distance and sessions." in page.text
    assert "sees your weekly distance, your distance since your last massage" in page.text


def test_sharing_is_off_by_default_and_each_change_is_recorded(make_stack: MakeStack) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    browser, _, athlete_id = _connect_via_invite(stack, "riverside")
    settings = browser.get(stack.url + "/settings").text
    assert "Sharing is off." in settings
    box = re.search(r'<input[^>]*name="share"[^>]*>', settings)
    assert box and "checked" not in box.group(0)
    # Staff see no figures by default (CLINIC_SHARED_FIGURES), and the runner is told so.
    assert (
        '<label for="share">Share my massage sessions and a sore area I note with '
        "Riverside Sports Massage</label>" in settings
    )

    on_at = dt.datetime.now(dt.UTC)
    page = _share(stack, browser, True, "  Sam   R. ")
    assert page.url == stack.url + "/settings#clinic"
    assert "Riverside Sports Massage now sees your sessions and a sore area" in page.text
    assert "Sharing is on since" in page.text and 'value="Sam R."' in page.text
    row = _athlete(stack, athlete_id)
    assert row.clinic_consent_at is not None and _utc(row.clinic_consent_at) >= on_at
    assert row.clinic_display_name == "Sam R."
    ((clinic, shared, at),) = _changes(stack, athlete_id)
    assert clinic == clinic_id and shared and at == _utc(row.clinic_consent_at)
    assert _sharing_names(stack, clinic_id) == ["Sam R."]
    box = re.search(r'<input[^>]*name="share"[^>]*>', page.text)
    assert box and "checked" in box.group(0)

    page = _share(stack, browser, False, "Sam R.")
    assert "Sharing is off: Riverside Sports Massage no longer sees" in page.text
    row = _athlete(stack, athlete_id)
    assert row.clinic_consent_at is None and row.clinic_id == clinic_id
    changes = _changes(stack, athlete_id)
    assert [shared for _, shared, _ in changes] == [True, False] and changes[1][2] >= at
    assert _sharing_names(stack, clinic_id) == []  # hidden from the clinic at once


def test_sharing_without_a_name_is_refused_next_to_the_field(make_stack: MakeStack) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    browser, _, athlete_id = _connect_via_invite(stack, "riverside")
    r = _share(stack, browser, True, "   ")
    assert r.status_code == 400
    assert re.search(r'id="display_name-error">[^<]*name your clinic knows you by', r.text)
    field = re.search(r'<input[^>]*id="display_name"[^>]*>', r.text)
    assert field and 'aria-invalid="true"' in field.group(0)
    assert "display_name-hint display_name-error" in field.group(0)
    r = _share(stack, browser, True, "x" * 81)
    assert r.status_code == 400 and 'id="display_name-error"' in r.text
    row = _athlete(stack, athlete_id)
    assert row.clinic_consent_at is None and row.clinic_display_name is None
    assert _changes(stack, athlete_id) == [] and _sharing_names(stack, clinic_id) == []


def test_leaving_asks_first_then_unlinks_and_ends_sharing(make_stack: MakeStack) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    browser, _, athlete_id = _connect_via_invite(stack, "riverside")
    _share(stack, browser, True, "Sam R.")
    confirm = browser.get(stack.url + "/settings/clinic/leave")
    assert confirm.status_code == 200 and "Leave Riverside Sports Massage?" in confirm.text
    assert _athlete(stack, athlete_id).clinic_id == clinic_id  # asking changes nothing
    page = browser.post(
        stack.url + "/settings/clinic/leave", data={"csrf_token": csrf_token(confirm.text)}
    )
    assert page.url == stack.url + "/settings" and "You left Riverside Sports Massage." in page.text
    assert 'id="clinic"' not in page.text  # no clinic section any more
    row = _athlete(stack, athlete_id)
    assert row.clinic_id is None and row.clinic_consent_at is None
    assert row.clinic_joined_at is None and row.clinic_display_name is None
    assert [shared for _, shared, _ in _changes(stack, athlete_id)] == [True, False]
    assert _sharing_names(stack, clinic_id) == []
    assert "Your clinic" not in browser.get(stack.url + "/dashboard").text
    # With no clinic, the clinic forms say so and change nothing.
    r = _share(stack, browser, True, "Sam R.")
    assert "You are not with a clinic" in r.text and _athlete(stack, athlete_id).clinic_id is None


def test_clinic_forms_without_a_csrf_token_change_nothing(make_stack: MakeStack) -> None:
    stack = make_stack()
    _clinic(stack, "riverside", "Riverside Sports Massage")
    other = _clinic(stack, "hilltop", "Hilltop Physio")
    browser, _, athlete_id = _connect_via_invite(stack, "riverside")
    before = _athlete(stack, athlete_id)
    for path, data in [
        ("/settings/clinic/sharing", {"share": "y", "display_name": "Sam R."}),
        ("/settings/clinic/leave", {}),
        ("/c/hilltop/join", {}),
    ]:
        r = browser.post(stack.url + path, data=data, allow_redirects=False)
        assert r.status_code == 400 and "Nothing was changed" in r.text, path
    row = _athlete(stack, athlete_id)
    assert row.clinic_id == before.clinic_id != other and row.clinic_consent_at is None
    assert _changes(stack, athlete_id) == []
    # A visitor cannot join anyone, even with a valid token: joining needs a connected runner.
    visitor = requests.Session()
    login_form = visitor.get(stack.url + "/clinic/login").text  # a form, so a token, for visitors
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_form)
    assert token
    r = visitor.post(stack.url + "/c/hilltop/join", data={"csrf_token": token.group(1)})
    assert r.url == stack.url + "/" and "Connect with Strava to see your page" in r.text


def test_the_export_holds_the_clinic_and_every_consent_change(make_stack: MakeStack) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    browser, _, athlete_id = _connect_via_invite(stack, "riverside")
    _share(stack, browser, True, "Sam R.")
    _share(stack, browser, False, "Sam R.")
    _share(stack, browser, True, "Sam R.")
    body = browser.get(stack.url + "/account/export.json").json()
    row = _athlete(stack, athlete_id)
    assert row.clinic_joined_at is not None and row.clinic_consent_at is not None
    clinic = body["clinic"]
    assert clinic["name"] == "Riverside Sports Massage" and clinic["invite"] == "riverside"
    assert clinic["name_shown_to_clinic"] == "Sam R."
    assert _utc(dt.datetime.fromisoformat(clinic["joined_at"])) == _utc(row.clinic_joined_at)
    assert _utc(dt.datetime.fromisoformat(clinic["sharing_since"])) == _utc(row.clinic_consent_at)
    history = body["consent_changes"]
    assert [(c["clinic"], c["clinic_id"], c["shared"]) for c in history] == [
        ("Riverside Sports Massage", clinic_id, True),
        ("Riverside Sports Massage", clinic_id, False),
        ("Riverside Sports Massage", clinic_id, True),
    ]
    stored = [at for _, _, at in _changes(stack, athlete_id)]
    assert [_utc(dt.datetime.fromisoformat(c["at"])) for c in history] == stored
    # A runner without a clinic exports none, and only their own record.
    other = stack.connect(stack.sim.create_athlete()["id"])
    body = other.get(stack.url + "/account/export.json").json()
    assert body["clinic"] is None and body["consent_changes"] == []


def _png(width: int, height: int) -> bytes:
    """A plain one-colour PNG of the given size, for a clinic's logo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        """One PNG chunk: length, type, data, CRC."""
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x0a\x64\x48" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_clinic_pages_in_a_phone_browser(make_stack: MakeStack, chromium: Any) -> None:
    stack = make_stack()
    clinic_id = _clinic(stack, "riverside", "Riverside Sports Massage")
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.logo, clinic.logo_type = _png(400, 100), "image/png"  # a wide logo
        session.commit()
    athlete_id = stack.sim.create_athlete()["id"]
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()

    def check() -> None:
        """No serious accessibility finding and no sideways scrolling on the page as shown."""
        problems = accessibility_problems(page)
        assert not problems, "\n".join(problems)
        assert fits_width(page), page.url

    try:
        page.goto(stack.url + "/c/riverside")
        assert page.locator("img.clinic-logo").evaluate("i => i.naturalWidth") == 400  # loaded
        check()
        page.get_by_role("link", name="Connect with Strava").click()
        page.get_by_label("Log in as").select_option(str(athlete_id))
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(stack.url + "/dashboard")
        assert page.get_by_text("You joined Riverside Sports Massage.").is_visible()
        assert page.get_by_role("link", name="Book a session").get_attribute("href") == BOOKING
        check()

        page.goto(stack.url + "/settings#clinic")
        page.get_by_label("Share my massage sessions and a sore area I note with Riverside").check()
        page.get_by_role("button", name="Save sharing choice").click()
        name = page.get_by_label("Your name as the clinic knows you")
        assert name.get_attribute("aria-invalid") == "true"  # refused: no name given
        check()
        name.fill("Sam R.")
        page.get_by_role("button", name="Save sharing choice").click()
        assert page.get_by_text("Sharing is on since").is_visible()
        assert _sharing_names(stack, clinic_id) == ["Sam R."]

        page.get_by_role("link", name="Leave Riverside Sports Massage…").click()
        check()
        page.get_by_role("button", name="Yes, leave Riverside Sports Massage").click()
        assert page.get_by_text("You left Riverside Sports Massage.").is_visible()
        assert _athlete(stack, athlete_id).clinic_id is None
    finally:
        context.close()

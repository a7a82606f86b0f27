"""A clinic's note wording: sample runners, the template check, hostile templates, and the editor
over real HTTP (save, refuse, reset, preview, thresholds, isolation) down to the runner's note."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from strava_massage.advice import DEFAULTS, KINDS, Units, advise
from strava_massage.domain.clinic_notes import (
    THRESHOLDS,
    check_template,
    check_thresholds,
    clinic_settings,
    sample_advice,
    sample_state,
)
from strava_massage.domain.merge import BLOCK_END, BLOCK_START
from strava_massage.domain.note_templates import (
    DEFAULT_TEMPLATE,
    FILTERS,
    VARIABLES,
    TemplateRefused,
)
from strava_massage.domain.notes import MAX_NOTE_CHARS, Wording, render_note
from strava_massage.models import Athlete, Clinic, Note, utcnow
from strava_massage.services import clinics
from strava_massage.services.advising import runner_settings
from strava_massage.web import clinic_wording

from .conftest import Stack
from .helpers import csrf_token

MakeStack = Callable[..., Stack]

# The pages are the same on every backend: the HTTP tests run on the embedded default.
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
PASSWORD = "a long enough password"
NAME = "Riverside Sports Massage"
BOOKING = "https://book.example/riverside"
OWN = "{{ headline|upper }}\n{{ clinic }} says: {{ body }}\nWhy: {{ reason }}"
EDIT = "/clinic/wording"


# --- sample runners and the check, as plain functions ------------------------------------------


@pytest.mark.parametrize("units", ["km", "mi"])
def test_every_rule_has_a_sample_runner_the_real_rules_pick(units: Units) -> None:
    for kind in KINDS:
        advice = sample_advice(kind, units)
        assert advice.kind == kind
        # Not only the rule alone: the whole advice engine gives this runner the same note.
        assert advise(sample_state(kind, units)) == advice, kind
        assert f" {units}" in advice.reason or kind == "pre_race", advice.reason


def test_sample_runners_follow_a_clinics_thresholds() -> None:
    settings = dataclasses.replace(
        DEFAULTS, high_volume_week_km=80.0, acwr_spike=3.0, long_run_factor=4.0,
        long_run_min_km=60.0, checkin_days=120, checkin_km=1000.0, session_gap_days=30,
        week_jump=3.0,
    )  # fmt: skip
    for kind in KINDS:
        assert sample_advice(kind, "km", settings).kind == kind
        assert advise(sample_state(kind, "km", settings), settings).kind == kind
    big_week = sample_advice("high_volume", "km", settings)
    assert "80 km" in f"{big_week.headline} {big_week.body}", big_week
    assert "3.25x" in sample_advice("load_spike", "km", settings).reason
    with pytest.raises(KeyError):
        sample_advice("no_such_rule")


def test_the_suggested_template_is_the_default_wording() -> None:
    wording = Wording(NAME, BOOKING)
    for kind in KINDS:
        advice = sample_advice(kind)
        own = dataclasses.replace(wording, templates={kind: DEFAULT_TEMPLATE})
        assert render_note(advice, wording=own) == render_note(advice, wording=wording), kind


def test_the_check_returns_the_whole_note_with_the_booking_line() -> None:
    note = check_template("high_volume", OWN, NAME, BOOKING)
    lines = note.splitlines()
    sample = sample_advice("high_volume")
    assert lines[0] == sample.headline.upper()
    assert lines[1] == f"{NAME} says: {sample.body}"
    assert lines[3] == f"Book a session with {NAME}: {BOOKING}"
    assert " mi" in check_template("high_volume", OWN, NAME, BOOKING, units="mi")
    # Without a booking link there is no footer, and the check still passes.
    assert check_template("high_volume", OWN, NAME, None).splitlines()[-1].startswith("Why:")


def test_a_wording_that_only_fits_without_the_booking_line_is_refused() -> None:
    # Long enough that notes.py would have to drop the link; short enough to fit without it.
    sample = sample_advice("high_volume")
    pad = "x" * (MAX_NOTE_CHARS - 20 - len(sample.body))
    source = "{{ body }} " + pad
    no_link = check_template("high_volume", source, NAME, None)
    assert len(no_link) == MAX_NOTE_CHARS - 20 + 1
    # The note + a newline + the 76-character booking line: 76 + 1 - 19 past the last that fits.
    total, cut = len(no_link) + 1 + 76, len(no_link) + 1 + 76 - MAX_NOTE_CHARS + 1
    with pytest.raises(TemplateRefused, match=rf"comes to {total} .* shorten it by {cut}$"):
        check_template("high_volume", source, NAME, BOOKING)


# --- hostile templates -------------------------------------------------------------------------

# (case, template, part of the refusal's reason). Each must be refused before anything runs.
HOSTILE: list[tuple[str, str, str]] = [
    ("dunder on a variable", "{{ headline.__class__ }}", "attribute access"),
    ("walk to the MRO", "{{ ''.__class__.__mro__ }}", "attribute access"),
    ("walk to globals", "{{ cycler.__init__.__globals__ }}", "attribute access"),
    ("flask config", "{{ config }}", "unknown variable 'config'"),
    ("template self", "{{ self }}", "unknown variable 'self'"),
    ("a global function", "{{ lipsum() }}", "function call"),
    ("attr filter", "{{ headline|attr('__class__') }}", "unknown filter 'attr'"),
    ("format filter", "{{ '%s'|format(headline) }}", "unknown filter 'format'"),
    ("huge loop", "{% for i in range(10**9) %}x{% endfor %}", "loop"),
    ("huge string", "{{ 'x' * 100000000 }}", "arithmetic"),
    ("nested loops", "{% for a in 'ab' %}{% for b in 'cd' %}x{% endfor %}{% endfor %}", "loop"),
    ("include", "{% include 'notes/_footer.txt' %}", "an include"),
    ("import", "{% import 'notes/_footer.txt' as f %}", "an import"),
    ("from import", "{% from 'notes/_footer.txt' import x %}", "an import"),
    ("extends", "{% extends 'base.html' %}", "extends"),
    ("macro", "{% macro m() %}x{% endmacro %}{{ headline }}", "a macro"),
    ("set", "{% set x = headline %}{{ x }}", "set"),
    ("item access", "{{ headline[0] }}", "item access"),
    ("slice", "{{ headline[:3] }}", "item access"),
    ("test", "{{ headline is string }}", "a test"),
    ("with block", "{% with x = headline %}{{ x }}{% endwith %}", "with"),
    ("number constant", "{{ 12 }}", "only text constants"),
    ("deep nesting", "{{ " + "(" * 300 + "headline" + ")" * 300 + " }}", "nested too deeply"),
    ("broken syntax", "{{ headline ", "line 1"),
    ("too long a source", "x" * 1001, "at most 1000 characters"),
    ("our start marker", f"{BLOCK_START}\n{{{{ body }}}}", "markers cannot appear"),
    ("start marker built", "{{ '— Legwork' }} note —\n{{ body }}", "markers cannot appear"),
    ("end marker built", "{{ body }}\n— end of {{ 'Legwork' }} note —", "markers cannot appear"),
    ("extra lines", "{{ headline }}\na\nb\n{{ body }}", "renders 4 lines"),
    ("empty", "{% if '' %}x{% endif %}", "empty note"),
    ("over-long output", "{{ body ~ body ~ body ~ body ~ body }}", "characters"),
]
# Accepted, but harmless: (case, template, what the note's first line is).
HARMLESS: list[tuple[str, str, str]] = [
    ("markup", "<script>alert(1)</script> {{ headline }}", "<script>alert(1)</script> HEADLINE"),
    ("raw block", "{% raw %}{{ config }}{% endraw %} {{ headline }}", "{{ config }} HEADLINE"),
    ("blank padding", "\n\n{{ headline }}\n\n\n\n{{ body }}", "HEADLINE"),
    ("spaces", "   {{ headline }}  \t  again", "HEADLINE again"),
]


@pytest.mark.parametrize(("case", "source", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_template_is_refused_with_a_reason(case: str, source: str, reason: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        check_template("high_volume", source, NAME, BOOKING)
    assert reason in str(refused.value)


@pytest.mark.parametrize(("case", "source", "first"), HARMLESS, ids=[h[0] for h in HARMLESS])
def test_a_harmless_template_is_plain_text(case: str, source: str, first: str) -> None:
    note = check_template("high_volume", source, NAME, BOOKING)
    first = first.replace("HEADLINE", sample_advice("high_volume").headline)
    assert note.splitlines()[0].startswith(first)
    assert note.splitlines()[-1] == f"Book a session with {NAME}: {BOOKING}"
    assert "" not in note.splitlines() and len(note.splitlines()) <= 4


# --- thresholds, as plain functions ------------------------------------------------------------


def test_thresholds_are_numbers_in_a_sensible_range() -> None:
    overrides, refused = check_thresholds(
        {
            "high_volume_week_km": " 60 ",
            "session_gap_days": "7",
            "acwr_spike": "1.8",
            "checkin_mi": "",
        }
    )
    assert overrides == {"high_volume_week_km": 60.0, "session_gap_days": 7, "acwr_spike": 1.8}
    assert isinstance(overrides["session_gap_days"], int) and not refused
    bad = {
        "session_gap_days": "2.5", "acwr_spike": "abc", "checkin_km": "-5",
        "long_run_factor": "nan",
        "high_volume_week_km": "1e9", "checkin_days": "inf", "long_run_min_mi": "0",
    }  # fmt: skip
    overrides, refused = check_thresholds(bad)
    assert overrides == {} and set(refused) == set(bad)
    settings = clinic_settings({"session_gap_days": 7, "not_a_setting": 1})
    assert settings.session_gap_days == 7 and settings.checkin_days == DEFAULTS.checkin_days
    # Every threshold's default is inside its own range: an untouched form is always valid.
    assert all(t.low <= t.default <= t.high for t in THRESHOLDS)


def test_the_page_names_every_rule_variable_filter_and_threshold() -> None:
    # A rule, variable, filter or threshold added later must get its words on the page too.
    assert list(clinic_wording.RULE_TEXT) == list(KINDS)
    assert set(clinic_wording.VARIABLE_TEXT) == set(VARIABLES)
    assert set(clinic_wording.FILTER_TEXT) == FILTERS
    assert list(clinic_wording.THRESHOLD_TEXT) == [t.name for t in THRESHOLDS]


# --- the editor over HTTP ----------------------------------------------------------------------


def _clinic(stack: Stack, slug: str = "riverside", name: str = NAME) -> tuple[int, str]:
    """A clinic with one staff login (password PASSWORD); returns (clinic id, email)."""
    email = f"desk@{slug}.example"
    with stack.db.session() as session:
        clinic, staff = clinics.create_clinic(session, slug, name, email, BOOKING)
        clinics.set_password(staff, PASSWORD)
        session.commit()
        return clinic.id, email


def _staff(stack: Stack, email: str) -> tuple[requests.Session, str]:
    """A browser logged in as the staff member; returns it and a CSRF token of its session."""
    browser = requests.Session()
    token = csrf_token(browser.get(stack.url + "/clinic/login", timeout=10).text)
    r = browser.post(
        stack.url + "/clinic/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200 and r.url == stack.url + "/clinic", r.url
    return browser, csrf_token(r.text)


def _row(stack: Stack, clinic_id: int) -> Clinic:
    """The clinic as stored now."""
    with stack.db.session() as session:
        clinic: Clinic | None = session.get(Clinic, clinic_id)
        assert clinic is not None
        return clinic


def _section(page: str, kind: str) -> str:
    """One rule's section of the editor page."""
    found = re.search(rf'<section class="wording-rule" id="rule-{kind}".*?</section>', page, re.S)
    assert found, f"no section for {kind}"
    return found.group(0)


def _textarea(section: str) -> tuple[str, str]:
    """A section's textarea: its opening tag and its (unescaped) text."""
    found = re.search(r"(<textarea[^>]*>)(.*?)</textarea>", section, re.S)
    assert found
    return found.group(1), html.unescape(found.group(2))


def _save(browser: requests.Session, stack: Stack, token: str, kind: str, source: str,
          action: str = "save") -> requests.Response:  # fmt: skip
    """Post a rule's wording form as the page would."""
    return browser.post(
        f"{stack.url}{EDIT}/rules/{kind}",
        data={"csrf_token": token, "source": source, "action": action},
        allow_redirects=False,
        timeout=10,
    )


def _preview(browser: requests.Session, stack: Stack, token: str | None,
             body: Any) -> requests.Response:  # fmt: skip
    """Ask for a live preview as wording.js does."""
    headers = {"Accept": "application/json"} | ({"X-CSRFToken": token} if token else {})
    return browser.post(f"{stack.url}{EDIT}/preview", json=body, headers=headers, timeout=10)


@on_sqlite
def test_editor_shows_every_rule_and_the_default_wording(
    make_stack: MakeStack,
) -> None:
    stack: Stack = make_stack()
    _, email = _clinic(stack)
    browser, _ = _staff(stack, email)
    r = browser.get(stack.url + EDIT, timeout=10)
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert '<script src="/static/wording.js" defer></script>' in r.text
    assert "<script>" not in r.text  # no inline script anywhere on the page
    for kind in KINDS:
        section = _section(r.text, kind)
        tag, text = _textarea(section)
        assert text == DEFAULT_TEMPLATE
        assert f'aria-describedby="source-{kind}-hint"' in tag and "aria-invalid" not in tag
        assert "Notes use the default wording." in section
        assert "Back to the default wording" not in section  # nothing to go back from
        preview = html.unescape(re.search(r"<pre>(.*?)</pre>", section, re.S).group(1))  # type: ignore[union-attr]
        assert preview.startswith(BLOCK_START) and preview.endswith(BLOCK_END)
        assert f"Book a session with {NAME}: {BOOKING}" in preview
    for name in ("headline", "body", "reason", "clinic", "kind"):
        assert f"<code>{{{{ {name} }}}}</code>" in r.text
    for name in ("upper", "lower", "title", "capitalize", "trim"):
        assert f"<code>|{name}</code>" in r.text
    # Thresholds: empty boxes with the defaults beside them.
    assert 'name="high_volume_week_km" value=""' in r.text and "Default: 48 km." in r.text
    assert "Default: 30 days." in r.text and "Default: 1.5 times." in r.text


@on_sqlite
def test_save_preview_and_reset_a_rules_wording(make_stack: MakeStack) -> None:
    stack: Stack = make_stack()
    clinic_id, email = _clinic(stack)
    browser, token = _staff(stack, email)

    # Preview without JavaScript: the page again, the draft in place and its note, nothing kept.
    r = _save(browser, stack, token, "high_volume", OWN.replace("\n", "\r\n"), action="preview")
    assert r.status_code == 200
    section = _section(r.text, "high_volume")
    assert _textarea(section)[1] == OWN  # browsers send CRLF; it is kept as plain newlines
    assert "The text below is not saved yet." in section
    assert sample_advice("high_volume").headline.upper() in section
    assert _row(stack, clinic_id).note_templates == {}

    r = _save(browser, stack, token, "high_volume", OWN)
    assert r.status_code == 302 and r.headers["Location"] == f"{EDIT}#rule-high_volume"
    assert _row(stack, clinic_id).note_templates == {"high_volume": OWN}
    page = browser.get(stack.url + EDIT, timeout=10).text
    assert "Saved: Big week notes use this wording" in page
    section = _section(page, "high_volume")
    assert _textarea(section)[1] == OWN and "Notes use your own wording." in section
    assert f"{NAME} says: {sample_advice('high_volume').body}" in html.unescape(section)
    assert "Notes use the default wording." in _section(page, "long_run")  # the others untouched

    r = browser.post(
        f"{stack.url}{EDIT}/rules/high_volume/reset", data={"csrf_token": token}, timeout=10
    )
    assert r.status_code == 200 and "Big week notes use the default wording again." in r.text
    assert _textarea(_section(r.text, "high_volume"))[1] == DEFAULT_TEMPLATE
    assert _row(stack, clinic_id).note_templates == {}
    assert _save(browser, stack, token, "no_such_rule", OWN).status_code == 404


@on_sqlite
def test_a_refused_wording_is_shown_by_its_field_unsaved(
    make_stack: MakeStack,
) -> None:
    stack: Stack = make_stack()
    clinic_id, email = _clinic(stack)
    browser, token = _staff(stack, email)
    assert _save(browser, stack, token, "long_run", OWN).status_code == 302

    r = _save(browser, stack, token, "long_run", "{{ headline.__class__ }}")
    assert r.status_code == 400
    section = _section(r.text, "long_run")
    tag, text = _textarea(section)
    assert text == "{{ headline.__class__ }}"  # what was typed stays, to be put right
    assert 'aria-invalid="true"' in tag
    assert 'aria-describedby="source-long_run-hint source-long_run-error"' in tag
    error = re.search(r'<p class="error" id="source-long_run-error">(.*?)</p>', section)
    assert error and "attribute access (a dot) is not allowed" in html.unescape(error.group(1))
    assert _row(stack, clinic_id).note_templates == {"long_run": OWN}  # the saved one stays
    # The page is long: a line at its top says so and leads to the field.
    summary = re.search(r'<p class="flash flash-error" role="alert">(.*?)</p>', r.text)
    assert summary and 'Nothing was saved. <a href="#source-long_run">' in summary.group(1)

    # Every hostile case is refused the same way, and none is stored.
    for case, source, reason in HOSTILE:
        r = _save(browser, stack, token, "recovery_tip", source)
        assert r.status_code == 400, case
        assert reason in html.unescape(_section(r.text, "recovery_tip")), case
    assert _row(stack, clinic_id).note_templates == {"long_run": OWN}


@on_sqlite
def test_a_saved_wording_the_new_booking_link_pushes_too_long_is_flagged(
    make_stack: MakeStack,
) -> None:
    stack: Stack = make_stack()
    clinic_id, email = _clinic(stack)
    browser, token = _staff(stack, email)
    # 401 characters: with the 76-character booking line 478, and 519 with the longer one below.
    source = "{{ body }} " + "x" * (400 - len(sample_advice("high_volume").body))
    assert _save(browser, stack, token, "high_volume", source).status_code == 302
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.booking_url = BOOKING + "/" + "x" * 40  # changed on the details page since
        session.commit()
    section = html.unescape(_section(browser.get(stack.url + EDIT, timeout=10).text, "high_volume"))
    assert '<p class="refused">This wording cannot be used: the note with your booking line' in (
        section
    )
    assert "comes to 519 characters" in section and "<pre>" not in section


@on_sqlite
def test_the_live_preview_answers_json_and_needs_the_csrf_header(make_stack: MakeStack) -> None:
    stack: Stack = make_stack()
    _, email = _clinic(stack)
    browser, token = _staff(stack, email)

    r = _preview(browser, stack, token, {"kind": "high_volume", "source": OWN})
    assert r.status_code == 200
    note = r.json()["note"]
    headline = sample_advice("high_volume").headline.upper()
    assert note.startswith(f"{BLOCK_START}\n{headline}\n") and note.endswith(BLOCK_END)
    assert f"Book a session with {NAME}: {BOOKING}" in note
    r = _preview(browser, stack, token, {"kind": "high_volume", "source": OWN, "units": "mi"})
    assert sample_advice("high_volume", "mi").headline.upper() in r.json()["note"]

    for case, source, reason in HOSTILE:
        r = _preview(browser, stack, token, {"kind": "pre_race", "source": source})
        assert r.status_code == 422, case
        assert r.json()["refused"].startswith("This wording cannot be used: "), case
        assert reason in r.json()["refused"], case
    for case, source, first in HARMLESS:
        r = _preview(browser, stack, token, {"kind": "high_volume", "source": source})
        first = first.replace("HEADLINE", sample_advice("high_volume").headline)
        assert r.json()["note"].splitlines()[1].startswith(first), case

    assert _preview(browser, stack, token, {"kind": "nope", "source": "x"}).status_code == 400
    assert _preview(browser, stack, token, {"kind": "long_run", "source": 5}).status_code == 400
    assert _preview(browser, stack, token, ["not", "an", "object"]).status_code == 400
    r = _preview(browser, stack, None, {"kind": "high_volume", "source": OWN})
    assert r.status_code == 400 and "csrf" in r.json()["error"]
    # A visitor with a good token of their own, but no login: a JSON 401, no preview.
    visitor = requests.Session()
    visitor_token = csrf_token(visitor.get(stack.url + "/clinic/login", timeout=10).text)
    r = _preview(visitor, stack, visitor_token, {"kind": "high_volume", "source": OWN})
    assert r.status_code == 401 and "log in again" in r.json()["error"]
    assert "BIG WEEK" not in r.text


@on_sqlite
def test_markup_in_a_wording_is_escaped_on_the_page(make_stack: MakeStack) -> None:
    stack: Stack = make_stack()
    _, email = _clinic(stack)
    browser, token = _staff(stack, email)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> {{ headline }}'
    assert _save(browser, stack, token, "monthly_checkin", hostile).status_code == 302
    page = browser.get(stack.url + EDIT, timeout=10).text
    assert "<script>alert" not in page and "<img src=x" not in page
    section = _section(page, "monthly_checkin")
    assert section.count("&lt;script&gt;alert(") == 2  # in the textarea and in the preview
    assert _textarea(section)[1] == hostile
    r = _preview(browser, stack, token, {"kind": "monthly_checkin", "source": hostile})
    assert "<script>alert" in r.json()["note"]  # JSON, put in the page as text by wording.js


@on_sqlite
def test_thresholds_are_saved_and_refused_field_by_field(make_stack: MakeStack) -> None:
    stack: Stack = make_stack()
    clinic_id, email = _clinic(stack)
    browser, token = _staff(stack, email)
    form = {t.name: "" for t in THRESHOLDS} | {"csrf_token": token}
    r = browser.post(
        f"{stack.url}{EDIT}/thresholds",
        data=form | {"high_volume_week_km": "60", "session_gap_days": "7"},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302 and r.headers["Location"] == f"{EDIT}#thresholds"
    saved = {"high_volume_week_km": 60.0, "session_gap_days": 7}
    assert _row(stack, clinic_id).advice_overrides == saved
    page = browser.get(stack.url + EDIT, timeout=10).text
    assert 'name="high_volume_week_km" value="60"' in page
    assert "60 km" in _section(page, "high_volume")  # the preview follows them

    bad = {
        "session_gap_days": "2.5",
        "acwr_spike": "lots",
        "checkin_km": "-5",
        "long_run_factor": "9",
    }
    r = browser.post(f"{stack.url}{EDIT}/thresholds", data=form | bad, timeout=10)
    assert r.status_code == 400 and "Nothing was saved" in r.text
    for name in bad:
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', r.text)
        assert tag and 'aria-invalid="true"' in tag.group(0), name
        assert f'aria-describedby="t-{name}-hint t-{name}-error"' in tag.group(0), name
        assert f'value="{bad[name]}"' in tag.group(0), name  # as typed, to be put right
    assert "Give a whole number from 1 to 60." in r.text
    assert "Give a number from 1.1 to 4." in r.text
    assert _row(stack, clinic_id).advice_overrides == saved

    # The defaults, then the clinic's numbers, then the runner's own: the runner's still win.
    clinic = _row(stack, clinic_id)
    runner = Athlete(id=1, advice_overrides={"session_gap_days": 3})
    settings = runner_settings(runner, clinic=clinic)
    assert settings.session_gap_days == 3 and settings.high_volume_week_km == 60.0

    # Emptying the boxes goes back to the defaults.
    r = browser.post(f"{stack.url}{EDIT}/thresholds", data=form, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and _row(stack, clinic_id).advice_overrides == {}


@on_sqlite
def test_a_clinic_sees_and_changes_only_its_own_wording(make_stack: MakeStack) -> None:
    stack: Stack = make_stack()
    a_id, a_email = _clinic(stack, "riverside")
    b_id, b_email = _clinic(stack, "hilltop", "Hilltop Physio")
    a, a_token = _staff(stack, a_email)
    b, b_token = _staff(stack, b_email)
    secret = "Riverside only: {{ headline }}"
    assert _save(a, stack, a_token, "post_race", secret).status_code == 302

    page = b.get(stack.url + EDIT, timeout=10).text
    assert "Riverside only" not in page and NAME not in page and "Hilltop Physio" in page
    assert _save(b, stack, b_token, "post_race", "Hilltop: {{ headline }}").status_code == 302
    b.post(f"{stack.url}{EDIT}/rules/post_race/reset", data={"csrf_token": b_token}, timeout=10)
    assert _row(stack, a_id).note_templates == {"post_race": secret}
    assert _row(stack, b_id).note_templates == {}
    # A's token in B's session is no token at all: CSRF tokens are bound to the session.
    r = _save(b, stack, a_token, "post_race", "x")
    assert r.status_code == 400 and _row(stack, b_id).note_templates == {}

    # No address names a clinic: the only thing a URL can carry is the rule's kind.
    rules = [r for r in stack.app.url_map.iter_rules() if r.endpoint.startswith("clinic_wording.")]
    assert len(rules) == 5 and all(r.arguments <= {"kind"} for r in rules)

    # Logged out: the login page, and nothing saved.
    visitor = requests.Session()
    r = visitor.get(stack.url + EDIT, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith("/clinic/login?next=")
    token = csrf_token(visitor.get(stack.url + "/clinic/login", timeout=10).text)
    r = _save(visitor, stack, token, "post_race", "x")
    assert r.status_code == 302 and r.headers["Location"].startswith("/clinic/login")
    assert _row(stack, a_id).note_templates == {"post_race": secret}


def _runner_of(stack: Stack, clinic_id: int) -> int:
    """A connected runner who joined the clinic; returns their id."""
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    stack.connect(athlete)
    with stack.db.session() as session:
        runner, clinic = session.get(Athlete, athlete), session.get(Clinic, clinic_id)
        assert runner is not None and clinic is not None
        clinics.join_clinic(session, runner, clinic, utcnow())
        session.commit()
    return int(athlete)


def _run_note(stack: Stack, athlete: int) -> str:
    """The note block the worker wrote on a new 8 km run."""
    run = stack.sim.create_activity(athlete, distance=8_000.0)
    stack.wait_idle()
    description = str(stack.sim.activity(run["id"])["description"])
    assert description.startswith(BLOCK_START) and description.endswith(BLOCK_END)
    return description


@on_sqlite
def test_a_refused_wording_never_reaches_a_runners_note(stack: Stack) -> None:
    clinic_id, email = _clinic(stack)
    athlete = _runner_of(stack, clinic_id)
    browser, token = _staff(stack, email)
    hostile = "{{ cycler.__init__.__globals__ }}"
    for kind in KINDS:
        assert _save(browser, stack, token, kind, hostile).status_code == 400

    note = _run_note(stack, athlete)
    assert "\nWhy: " in note and "globals" not in note  # the default wording, with the clinic's
    assert f"\nBook a session with {NAME}: {BOOKING}\n" in note  # booking line

    # A saved wording does reach the next note: the test above could tell them apart.
    own = "From {{ clinic }}: {{ headline|lower }}\n{{ body }}"
    for kind in KINDS:
        assert _save(browser, stack, token, kind, own).status_code == 302
    note = _run_note(stack, athlete)
    assert f"\nFrom {NAME}: " in note and "\nWhy: " not in note

    # Even a hostile wording put straight into the database (never through the editor) is
    # refused when the note is made, and the runner gets the default wording.
    with stack.db.session() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.note_templates = dict.fromkeys(KINDS, "{{ ''.__class__.__mro__ }}")
        session.commit()
    note = _run_note(stack, athlete)
    assert "\nWhy: " in note and "class" not in note and "From " not in note
    with stack.db.session() as session:
        texts = [n.text for n in session.query(Note).filter(Note.athlete_id == athlete)]
    assert len(texts) == 3 and not any("mro" in t or "globals" in t for t in texts)

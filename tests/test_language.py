"""One language per page: text, numbers and dates in a shipped translation or in English."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po
from sqlalchemy import select

from strava_massage.models import Athlete, MassageSession, Note
from strava_massage.services.dashboard import runner_today
from strava_massage.web.i18n import choose_language

from .conftest import Stack
from .helpers import make_clinic, runner_in, staff_login

# Pages are the same on every backend: these run on the embedded default.
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
MILE = 1609.344
FOREIGN = ["de-DE,de;q=0.9", "fr-FR"]


def _today(stack: Stack, athlete: int) -> dt.date:
    """The runner's own today, as their pages count it."""
    with stack.db.session() as session:
        row = session.get(Athlete, athlete)
        assert row is not None
        return runner_today(row)


def _week_total(page: str) -> str:
    """The dashboard's "This week" figure as the page shows it."""
    found = re.search(r'<dd id="total-week">([^<]+)</dd>', page)
    assert found, page[:300]
    return found.group(1)


@SQLITE
@pytest.mark.parametrize("language", FOREIGN)
def test_a_runner_page_is_english_throughout_without_a_translation(
    stack: Stack, language: str
) -> None:
    athlete = stack.sim.create_athlete(measurement_preference="feet")["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete, distance=18.6 * MILE)
    stack.wait_idle()
    today = _today(stack, athlete)
    page = browser.get(stack.url + "/dashboard", headers={"Accept-Language": language}).text
    assert '<html lang="en">' in page
    assert "Your running" in page
    assert _week_total(page) == "18.6 mi"  # a decimal point, as on English pages
    assert "18,6" not in page
    # The note's date and the chart's table: English months ("Dec 3, 2026").
    note_day = format_date(today, "medium", locale="en")
    assert f"<strong>{note_day}</strong>" in page
    with stack.db.session() as session:
        reason = session.scalar(select(Note.reason).where(Note.athlete_id == athlete))
    # The note's reason (written by the worker) and the page around it agree on the format.
    assert reason is not None and "18.6 mi" in reason and f"<p>{reason}</p>" in page


@SQLITE
@pytest.mark.parametrize("language", FOREIGN)
def test_a_clinic_page_is_english_throughout_without_a_translation(
    make_stack: Callable[..., Stack], language: str
) -> None:
    stack = make_stack(CLINIC_SHARED_FIGURES="on")
    stack.subscribe()
    stack.start_worker()
    clinic_id, email = make_clinic(stack, "knead")
    athlete = runner_in(stack, clinic_id, name="Ada Lovelace")  # a runner in kilometres
    stack.sim.create_activity(athlete, distance=12_345.0)
    stack.wait_idle()
    last = _today(stack, athlete) - dt.timedelta(days=10)
    with stack.db.session() as session:
        session.add(MassageSession(athlete_id=athlete, on=last))
        session.commit()
    staff = staff_login(stack, email)
    page = staff.get(stack.url + "/clinic", headers={"Accept-Language": language}).text
    assert '<html lang="en">' in page and "Last session" in page
    assert "12.3 km · 10 days" in page and "12,3" not in page
    assert f"<td>{format_date(last, 'medium', locale='en')}</td>" in page


def _translations(root: Path) -> Path:
    """A translations folder with German compiled and French left uncompiled (a .po only)."""
    german = Catalog(locale="de")
    german.add("This week", "Diese Woche")
    folder = root / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as f:
        write_mo(f, german)
    french = Catalog(locale="fr")
    french.add("This week", "Cette semaine")
    folder = root / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.po").open("wb") as f:
        write_po(f, french)
    return root


@SQLITE
def test_a_shipped_translation_switches_text_numbers_and_dates_together(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    folders = _translations(tmp_path / "translations")
    stack = make_stack(BABEL_TRANSLATION_DIRECTORIES=str(folders))
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete(measurement_preference="meters")["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete, distance=12_345.0)
    stack.wait_idle()
    today = _today(stack, athlete)

    def dashboard(language: str) -> str:
        """The dashboard as a browser asking for `language` gets it."""
        r = browser.get(stack.url + "/dashboard", headers={"Accept-Language": language})
        assert r.status_code == 200
        return r.text

    german = dashboard("de-DE,de;q=0.9")
    assert '<html lang="de">' in german and "Diese Woche" in german
    assert _week_total(german) == "12,3 km"  # German text, German numbers
    assert f"<strong>{format_date(today, 'medium', locale='de')}</strong>" in german
    assert "This month" in german  # a string the catalogue lacks stays English

    # French exists only as an uncompiled .po: not a shipped translation, so English.
    french = dashboard("fr-FR,fr;q=0.9")
    assert '<html lang="en">' in french and "This week" in french and "Cette" not in french
    assert _week_total(french) == "12.3 km"
    assert f"<strong>{format_date(today, 'medium', locale='en')}</strong>" in french

    # The browser's order decides: English first, German only as a fallback.
    british = dashboard("en-GB,de;q=0.5")
    assert '<html lang="en">' in british and _week_total(british) == "12.3 km"
    assert '<html lang="de">' in dashboard("de-AT")  # Austrian German reads German


def test_the_page_language_is_chosen_by_the_browsers_order() -> None:
    shipped = ["de", "en", "pt_BR"]
    assert choose_language(["fr-FR", "fr"], shipped) == "en"
    assert choose_language(["de-DE", "de"], shipped) == "de"
    assert choose_language(["de-CH"], shipped) == "de"
    assert choose_language(["en-GB", "de"], shipped) == "en"
    assert choose_language(["pt-BR"], shipped) == "pt_BR"
    assert choose_language(["pt-PT"], shipped) == "pt_BR"  # Portuguese over English
    assert choose_language(["*"], shipped) == "en"
    assert choose_language([], shipped) == "en"


@SQLITE
def test_the_landing_example_still_follows_the_browsers_country(make_stack) -> None:
    stack: Stack = make_stack()
    american = requests.get(stack.url + "/", headers={"Accept-Language": "en-US"}, timeout=10)
    german = requests.get(stack.url + "/", headers={"Accept-Language": "de-DE"}, timeout=10)
    assert '<html lang="en">' in american.text and '<html lang="en">' in german.text
    assert " mi" in american.text and " km" not in american.text.split("note-example")[1]
    assert " km" in german.text.split("note-example")[1]

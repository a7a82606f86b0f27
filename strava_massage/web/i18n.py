"""Language and formats: page text marked for translation; numbers and dates in the locale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel import Locale, UnknownLocaleError
from flask import Flask, current_app, request
from flask_babel import Babel, format_date, format_decimal, get_locale

from strava_massage.advice import Units, to_units
from strava_massage.paths import TRANSLATIONS_DIR


def select_locale() -> str:
    """The first language of the browser's Accept-Language that Babel knows; English otherwise.

    Formats follow the browser even where no translation exists yet: a runner in Germany reads
    "1.234,5 km" on English pages until someone adds German.
    """
    for tag, _quality in request.accept_languages:
        try:
            return str(Locale.parse(tag, sep="-"))
        except (ValueError, UnknownLocaleError):
            continue
    return "en"


def page_language() -> str:
    """The language of the page text: the locale's, when a translation exists, else English."""
    locale = get_locale()
    if locale is None:
        return "en"
    folders = str(current_app.config["BABEL_TRANSLATION_DIRECTORIES"]).split(";")
    if any((Path(folder) / locale.language).is_dir() for folder in folders):
        return str(locale.language)
    return "en"


def distance(metres: float, units: Units, digits: int = 1) -> str:
    """A distance in the runner's units, number formatted for their locale ("1,234.5 mi")."""
    value = to_units(metres, units)
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return f"{format_decimal(value, format=pattern)} {units}"


def number(value: float) -> str:
    """A plain number in the runner's locale."""
    return str(format_decimal(value))


def date(day: dt.date, form: str = "medium") -> str:
    """A date in the runner's locale ("23 Nov 2026", "Nov 23, 2026", ...)."""
    return str(format_date(day, form))


def init_app(app: Flask) -> None:
    """Register Flask-Babel and the format filters the templates use."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    # A Babel object per app: Flask-Babel caches catalogues on it, and two apps in one process
    # (tests, or a second deployment's catalogues) must not see each other's.
    Babel(app, locale_selector=select_locale)
    app.add_template_filter(distance, "distance")
    app.add_template_filter(number, "number")
    app.add_template_filter(date, "date")
    app.context_processor(lambda: {"page_language": page_language})

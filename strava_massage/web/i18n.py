"""Language and formats: one language per page, its text, numbers and dates alike.

The page's language is the browser's first choice among the translations that ship with the
service (a folder with a compiled catalogue) and English; numbers and dates are formatted in
that same language, so an English page never shows a German "18,6 km" or "14 Sept.".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from babel import Locale, UnknownLocaleError
from flask import Flask, current_app, request
from flask_babel import Babel, format_date, format_decimal, get_babel, get_locale

from strava_massage.advice import Units, to_units
from strava_massage.paths import TRANSLATIONS_DIR

DEFAULT_LANGUAGE = "en"


def page_locales() -> list[str]:
    """The languages pages can be in: each shipped translation, and English.

    Read once per app: a translation is added with a release (or by the operator), followed by
    a restart.
    """
    found = current_app.extensions.get("page_locales")
    if found is None:
        babel = get_babel().instance
        found = sorted({str(locale) for locale in babel.list_translations()} | {DEFAULT_LANGUAGE})
        current_app.extensions["page_locales"] = found
    return list(found)


def _key(tag: str) -> str:
    """A language tag compared without case and with "-" and "_" alike ("pt-BR" = "pt_br")."""
    return tag.replace("_", "-").lower()


def choose_language(accepted: Iterable[str], available: Iterable[str]) -> str:
    """The first of the browser's languages (best first) that a page can be in, else English.

    A tag matches exactly ("pt-BR" -> pt_BR) or by its language alone ("de-AT" -> de); the
    browser's order decides, so "en-GB, de;q=0.5" is English even though only "de" matches
    exactly.
    """
    by_tag = {_key(tag): tag for tag in available}
    by_language: dict[str, str] = {}
    for tag in sorted(by_tag.values()):
        by_language.setdefault(_key(tag).split("-")[0], tag)
    for tag in accepted:
        key = _key(tag)
        if key in by_tag:
            return by_tag[key]
        if key.split("-")[0] in by_language:
            return by_language[key.split("-")[0]]
    return DEFAULT_LANGUAGE


def select_locale() -> str:
    """The page's locale: the browser's preferred language among those a page can be in."""
    accepted = [tag for tag, _quality in request.accept_languages]
    return choose_language(accepted, page_locales())


def browser_territory() -> str | None:
    """The country of the browser's first language ("US" for en-US), or None if it names none.

    Only for guessing a visitor's everyday unit: the page's language has no country of its own
    when no regional translation ships.
    """
    for tag, _quality in request.accept_languages:
        try:
            return Locale.parse(tag, sep="-").territory
        except (ValueError, UnknownLocaleError):
            continue
    return None


def page_language() -> str:
    """The page's language as an HTML lang attribute ("en", "de", "pt-BR")."""
    locale = get_locale()
    return str(locale).replace("_", "-") if locale is not None else DEFAULT_LANGUAGE


def distance(metres: float, units: Units, digits: int = 1) -> str:
    """A distance in the runner's units, formatted in the page's language ("1,234.5 mi")."""
    value = to_units(metres, units)
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return f"{format_decimal(value, format=pattern)} {units}"


def number(value: float) -> str:
    """A plain number in the page's language."""
    return str(format_decimal(value))


def date(day: dt.date, form: str = "medium") -> str:
    """A date in the page's language ("Nov 23, 2026" in English)."""
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

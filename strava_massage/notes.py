"""Render an Advice into the short plain-text note written onto a Strava run."""

from __future__ import annotations

import functools
import logging

import jinja2

from strava_massage.advice import Advice
from strava_massage.paths import TEMPLATES_DIR

log = logging.getLogger(__name__)

# A note has to stay readable in a Strava feed: headline, advice, why, and one optional line.
MAX_NOTE_CHARS = 500
MAX_NOTE_LINES = 4

DEFAULT_DISCLAIMER = "General guidance, not medical advice; pain that lingers needs a professional."


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment for note templates, built once on first use (not at import)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=False,  # noqa: S701 - plain text for the Strava API, never served as HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def _one_line(text: str | None) -> str | None:
    """Collapse whitespace and newlines so a value can't add lines to the note; None if empty."""
    if text is None:
        return None
    collapsed = " ".join(text.split())
    return collapsed or None


def _render(advice: Advice, booking_url: str | None, disclaimer: str | None) -> str:
    """Render the template for the advice's kind with the given optional footer parts."""
    template = environment().get_template(f"notes/{advice.kind}.txt")
    text = template.render(
        advice=advice,
        kind=advice.kind,
        headline=_one_line(advice.headline),
        body=_one_line(advice.body),
        reason=_one_line(advice.reason),
        booking_url=booking_url,
        disclaimer=disclaimer,
    )
    return text.rstrip()


def _fits(text: str) -> bool:
    """Whether a rendered note is within the feed limits."""
    return len(text) < MAX_NOTE_CHARS and len(text.splitlines()) <= MAX_NOTE_LINES


def render_note(
    advice: Advice, *, booking_url: str | None = None, disclaimer: str | None = None
) -> str:
    """The note text for one run (without the service's block delimiters)."""
    booking_url = _one_line(booking_url)
    disclaimer = _one_line(disclaimer)
    # Too long with every extra: drop the disclaimer first (the note is already framed as general
    # guidance), then the booking link, rather than cut the advice itself short.
    attempts = [(booking_url, disclaimer), (booking_url, None), (None, disclaimer), (None, None)]
    text = ""
    for url, extra in dict.fromkeys(attempts):
        text = _render(advice, url, extra)
        if _fits(text):
            break
    if (url, extra) != (booking_url, disclaimer):
        log.warning("note for %s too long; left out part of the footer", advice.kind)
    return text

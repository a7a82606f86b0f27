"""Render an Advice into the short plain-text note written onto a Strava run."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import jinja2

from strava_massage.advice import Advice
from strava_massage.domain.note_templates import TemplateRefused, render_main
from strava_massage.paths import TEMPLATES_DIR

log = logging.getLogger(__name__)

# A note has to stay readable in a Strava feed: headline, advice, why, and one optional line.
MAX_NOTE_CHARS = 500
MAX_NOTE_LINES = 4

DEFAULT_DISCLAIMER = "General guidance, not medical advice; pain that lingers needs a professional."


@dataclass(frozen=True)
class Wording:
    """A clinic's brand on its runners' notes: its name, booking link and own templates."""

    clinic: str
    booking_url: str | None = None
    templates: Mapping[str, str] = field(default_factory=dict)  # rule kind -> template source


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


def _render(
    advice: Advice,
    booking_url: str | None,
    disclaimer: str | None,
    wording: Wording | None,
    strict: bool = False,
) -> str:
    """Render the note for the advice's kind with the given optional footer parts.

    Strict, a clinic template that cannot be used raises TemplateRefused instead of giving way
    to the default wording.
    """
    values = {
        "kind": advice.kind,
        "headline": _one_line(advice.headline),
        "body": _one_line(advice.body),
        "reason": _one_line(advice.reason),
        "booking_url": booking_url,
        "disclaimer": disclaimer,
        "clinic": _one_line(wording.clinic) if wording else None,
    }
    own = wording.templates.get(advice.kind) if wording else None
    if own:
        try:
            main = render_main(own, {k: v or "" for k, v in values.items()})
        except Exception as e:
            if strict:
                if isinstance(e, TemplateRefused):
                    raise
                raise TemplateRefused(f"it does not render ({type(e).__name__})") from None
            # Checked when saved, so this is a surprise (a template stored before a check was
            # added); the runner still gets the usual note, and the run still counts. The log
            # names the error's kind only: a message may quote the clinic's template.
            log.warning(
                "clinic template for %s not used (%s); the default wording went out",
                advice.kind,
                type(e.__cause__ or e).__name__,
            )
        else:
            footer = environment().get_template("notes/_footer.txt").render(values)
            return f"{main}\n{footer}".rstrip()
    template = environment().get_template(f"notes/{advice.kind}.txt")
    return template.render(advice=advice, **values).rstrip()


def _fits(text: str) -> bool:
    """Whether a rendered note is within the feed limits."""
    return len(text) < MAX_NOTE_CHARS and len(text.splitlines()) <= MAX_NOTE_LINES


def _too_long(text: str, with_link: bool) -> TemplateRefused:
    """Why a note does not fit, and by how much, for a clinic checking its wording."""
    if len(text) >= MAX_NOTE_CHARS:
        link = " with your booking line" if with_link else ""
        cut = len(text) - MAX_NOTE_CHARS + 1
        return TemplateRefused(
            f"the note{link} comes to {len(text)} characters for the sample runner; "
            f"it must stay under {MAX_NOTE_CHARS}, so shorten it by {cut}"
        )
    lines = len(text.splitlines())
    return TemplateRefused(f"the note comes to {lines} lines; at most {MAX_NOTE_LINES} fit")


def render_note(
    advice: Advice,
    *,
    booking_url: str | None = None,
    disclaimer: str | None = None,
    wording: Wording | None = None,
    strict: bool = False,
) -> str:
    """The note text for one run (without the service's block delimiters).

    With a clinic's wording, its booking link and its template for the rule (if any) are used.
    Strict (the wording editor's check): TemplateRefused if the clinic's template cannot be
    used or the note does not fit with every footer part, instead of working around it.
    """
    if wording is not None and wording.booking_url:
        booking_url = wording.booking_url
    booking_url = _one_line(booking_url)
    disclaimer = _one_line(disclaimer)
    if strict:
        text = _render(advice, booking_url, disclaimer, wording, strict=True)
        if not _fits(text):
            raise _too_long(text, with_link=booking_url is not None)
        return text
    # Too long with every extra: drop the disclaimer first (the note is already framed as general
    # guidance), then the booking link, rather than cut the advice itself short.
    attempts = [(booking_url, disclaimer), (booking_url, None), (None, disclaimer), (None, None)]
    text = ""
    for url, extra in dict.fromkeys(attempts):
        text = _render(advice, url, extra, wording)
        if _fits(text):
            break
    if (url, extra) != (booking_url, disclaimer):
        log.warning("note for %s too long; left out part of the footer", advice.kind)
    return text

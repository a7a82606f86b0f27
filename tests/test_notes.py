"""Note rendering: every kind fits a Strava feed (under 500 chars, at most 4 lines)."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import jinja2
import pytest

from strava_massage.advice import (
    KINDS,
    TIPS,
    Advice,
    Niggle,
    PastRun,
    Tip,
    TrainingState,
    advise,
)
from strava_massage.advice.rules import NIGGLE_ADVICE
from strava_massage.domain.clinic_notes import sample_state
from strava_massage.domain.notes import DEFAULT_DISCLAIMER, MAX_NOTE_CHARS, environment, render_note
from strava_massage.paths import TEMPLATES_DIR
from tests.factories import DAY, KM, MI, make_state

BOOKING = "https://book.example-clinic.com/legwork/runner-recovery?ref=strava&runner=12345"


def firing(kind: str, units: str) -> TrainingState:
    """A state whose advice is the given kind: the clinic editor's sample runner for it."""
    return sample_state(kind, "mi" if units == "mi" else "km")


FOOTERS = {
    "plain": (None, None),
    "booking": (BOOKING, None),
    "disclaimer": (None, DEFAULT_DISCLAIMER),
    "booking+disclaimer": (BOOKING, DEFAULT_DISCLAIMER),
}


@pytest.mark.parametrize("footer", FOOTERS, ids=FOOTERS.keys())
@pytest.mark.parametrize("units", ["mi", "km"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fits_the_feed(kind: str, units: str, footer: str) -> None:
    """Headline, advice, why, then the optional footer on one line; short and in the right units."""
    booking, disclaimer = FOOTERS[footer]
    advice = advise(firing(kind, units))
    assert advice.kind == kind
    text = render_note(advice, booking_url=booking, disclaimer=disclaimer)
    lines = text.split("\n")
    assert len(text) < MAX_NOTE_CHARS
    assert len(lines) == (3 if footer == "plain" else 4)
    assert lines[0] == advice.headline
    assert lines[1] == advice.body
    assert lines[2] == f"Why: {advice.reason}"
    if booking:
        assert lines[3].startswith(f"Book a session: {booking}")
    if disclaimer:
        assert lines[3].endswith(disclaimer)
    assert text == text.strip()
    assert all(line == line.strip() for line in lines)
    if kind != "pre_race":  # its why-line is a date and a day count, no distance
        assert re.search(rf"\d {units}\b", lines[2])
    assert set(re.findall(r"\d (mi|km)\b", text)) <= {units}
    assert "{" not in text
    assert "}" not in text


def longest_tip_note(tip: Tip, units: str, area: str | None) -> Advice:
    """The tip as the longest note it can be in: a comeback's Why line with three-digit
    numbers, and, for a sore area it looks after, when to see a physio."""
    u = MI if units == "mi" else KM
    runs = (
        PastRun(DAY - timedelta(days=40), 123.4 * u),
        PastRun(DAY - timedelta(days=20), 500 * u),
    )
    niggle = Niggle(area, DAY) if area else None
    state = make_state(units, runs=runs, distance=123.4 * u, history_days=400, niggle=niggle)
    advice = advise(state)
    assert advice.kind == "comeback"
    body = tip.text if area is None or "physio" in tip.text else f"{tip.text} {NIGGLE_ADVICE}"
    why = advice.reason.split("; ")[0] + f"; {tip.why}"
    return dataclasses.replace(advice, body=body, reason=why, tip_id=tip.id)


@pytest.mark.parametrize("units", ["mi", "km"])
@pytest.mark.parametrize("tip", TIPS, ids=[t.id for t in TIPS])
def test_every_tip_fits_with_the_longest_reason(tip: Tip, units: str) -> None:
    """Worst case: any tip, the longest why-line, booking link and disclaimer: the link
    always fits (the disclaimer may give way), also with a sore area's physio line."""
    for area in (None, *sorted(tip.areas)):
        text = render_note(
            longest_tip_note(tip, units, area), booking_url=BOOKING, disclaimer=DEFAULT_DISCLAIMER
        )
        assert len(text) < MAX_NOTE_CHARS
        assert BOOKING in text, (area, text)
        assert set(re.findall(r"\d (mi|km)\b", text)) == {units}


def test_too_long_footer_drops_the_disclaimer_first() -> None:
    """A long booking link keeps its place; the disclaimer gives way."""
    advice = advise(firing("load_spike", "km"))
    core = render_note(advice)
    url = "https://example.com/" + "b" * (MAX_NOTE_CHARS - len(core) - 40)
    text = render_note(advice, booking_url=url, disclaimer=DEFAULT_DISCLAIMER)
    assert len(text) < MAX_NOTE_CHARS
    assert text.endswith(f"Book a session: {url}")
    assert DEFAULT_DISCLAIMER not in text


def test_oversized_booking_link_is_left_out() -> None:
    """A link that can never fit is dropped, and the disclaimer comes back."""
    advice = advise(firing("long_run", "mi"))
    url = "https://example.com/" + "b" * MAX_NOTE_CHARS
    text = render_note(advice, booking_url=url, disclaimer=DEFAULT_DISCLAIMER)
    assert len(text) < MAX_NOTE_CHARS
    assert url not in text
    assert text.endswith(DEFAULT_DISCLAIMER)


@pytest.mark.parametrize(
    ("booking", "disclaimer"),
    [("https://x.example/\nbook", None), (None, "Line one\n\nline two  "), ("  ", "\n")],
    ids=["newline-in-url", "newline-in-disclaimer", "blank-values"],
)
def test_footer_values_cannot_add_lines(booking: str | None, disclaimer: str | None) -> None:
    """Clinic-supplied values are collapsed to one line; blank ones are left out."""
    text = render_note(advise(make_state("km")), booking_url=booking, disclaimer=disclaimer)
    lines = text.split("\n")
    assert len(lines) <= 4
    if booking and booking.strip():
        assert lines[3] == "Book a session: https://x.example/ book"
    elif disclaimer and disclaimer.strip():
        assert lines[3] == "Line one line two"
    else:
        assert len(lines) == 3


def test_every_kind_has_a_template() -> None:
    """One plain-text template per rule kind, under templates/notes/."""
    for kind in KINDS:
        assert (TEMPLATES_DIR / "notes" / f"{kind}.txt").is_file()


def test_unknown_kind_fails_loudly() -> None:
    """A kind without a template is a bug, not a blank note."""
    advice = dataclasses.replace(advise(make_state("km")), kind="no_such_rule")
    with pytest.raises(jinja2.TemplateNotFound):
        render_note(advice)


def test_environment_is_cached_and_strict() -> None:
    """One environment per process, plain text, and undefined names raise."""
    env = environment()
    assert env is environment()
    assert env.autoescape is False
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_render_is_deterministic_and_plain() -> None:
    """Same advice, same text; no HTML escaping of ordinary punctuation."""
    advice = dataclasses.replace(advise(make_state("km")), body='Rest & eat <well> "today"')
    assert render_note(advice) == render_note(advice)
    assert 'Rest & eat <well> "today"' in render_note(advice)


def test_default_disclaimer_is_one_short_line() -> None:
    """The disclaimer is a single short sentence pair."""
    assert "\n" not in DEFAULT_DISCLAIMER
    assert len(DEFAULT_DISCLAIMER) <= 100
    assert "medical advice" in DEFAULT_DISCLAIMER

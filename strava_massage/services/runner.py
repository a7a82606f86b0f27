"""What a runner can set: units, notes on or paused, note target, disclaimer, race, sessions,
and a sore area (a niggle) their tips favour for three weeks.

Plain functions over a session, used by the command line now and by the runner's pages later;
each checks its input and raises InputError with a message fit to show next to the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strava_massage.advice import DEFAULTS, AdviceSettings, Units, to_units
from strava_massage.advice.state import NIGGLE_AREAS, Niggle, metres_per_unit
from strava_massage.models import Athlete, MassageSession

UNITS = ("mi", "km")
NOTE_TARGETS = ("description", "private_note")
MAX_DISCLAIMER = 160
# The longest race a note plans around, in each unit (400 km: a multi-day ultra; 250 mi alike).
MAX_RACE: dict[Units, int] = {"km": 400, "mi": 250}
# How long a noted sore area shapes the tips: the advice settings' own number.
NIGGLE_DAYS = DEFAULTS.niggle_days


class InputError(ValueError):
    """A runner's input that cannot be accepted; the message says why."""


def get_athlete(session: Session, athlete_id: int) -> Athlete:
    """The connected runner, or InputError."""
    athlete = session.get(Athlete, athlete_id)
    if athlete is None:
        raise InputError(f"no connected runner with id {athlete_id}")
    return athlete


def parse_date(text: str, field: str = "date") -> dt.date:
    """An ISO date (YYYY-MM-DD)."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{field} must be a date like 2026-05-17, not {text!r}") from None


def set_units(athlete: Athlete, units: str | None) -> None:
    """Override the units (mi or km); None goes back to the Strava preference."""
    if units is not None and units not in UNITS:
        raise InputError("units must be mi or km")
    athlete.units_override = units


def set_note_target(athlete: Athlete, target: str) -> None:
    """Write notes to the description, or to Strava's private note."""
    if target not in NOTE_TARGETS:
        raise InputError("note target must be description or private_note")
    athlete.note_target = target


def set_disclaimer(athlete: Athlete, text: str | None) -> None:
    """A one-line disclaimer appended to notes; None or empty removes it."""
    text = " ".join((text or "").split())
    if len(text) > MAX_DISCLAIMER:
        raise InputError(f"the disclaimer must fit on one line ({MAX_DISCLAIMER} characters)")
    athlete.disclaimer = text or None


def set_race(
    athlete: Athlete,
    on: dt.date | None,
    distance: float | None,
    today: dt.date,
    units: Units = "km",
) -> None:
    """The next race (date, optional distance in `units`, stored in metres); None clears it."""
    if on is not None and on < today:
        raise InputError("the race date is in the past")
    top = MAX_RACE[units]
    if distance is not None and not 0 < distance <= top:
        raise InputError(f"the race distance must be between 0 and {top} {units}")
    athlete.next_race_on = on
    athlete.next_race_distance_m = distance * metres_per_unit(units) if distance and on else None


def race_distance(athlete: Athlete, units: Units) -> float | None:
    """The next race's distance in `units`, to one decimal as the runner typed it, or None."""
    metres = athlete.next_race_distance_m
    return round(to_units(metres, units), 1) if metres else None


def set_advice(athlete: Athlete, changes: dict[str, str]) -> AdviceSettings:
    """Override advice defaults (e.g. session_gap_days=10); checked against AdviceSettings."""
    fields = {f.name: f for f in dataclasses.fields(AdviceSettings)}
    overrides: dict[str, Any] = dict(athlete.advice_overrides or {})
    for name, raw in changes.items():
        if name not in fields:
            raise InputError(f"unknown advice setting {name!r}; known: {', '.join(sorted(fields))}")
        current = getattr(DEFAULTS, name)
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise InputError(f"{name} cannot be changed here")
        try:
            value = type(current)(raw)
        except ValueError:
            raise InputError(f"{name} must be a number") from None
        if value <= 0:
            raise InputError(f"{name} must be positive")
        overrides[name] = value
    settings = dataclasses.replace(DEFAULTS, **overrides)
    athlete.advice_overrides = overrides
    return settings


def set_niggle(athlete: Athlete, area: str, on: dt.date, today: dt.date) -> Niggle:
    """Note a sore area (a key of NIGGLE_AREAS) and the day it started; it replaces any other."""
    if area not in NIGGLE_AREAS:
        raise InputError(f"the sore area must be one of: {', '.join(NIGGLE_AREAS)}")
    if on > today:
        raise InputError("the date of a sore area cannot be in the future")
    if (today - on).days >= NIGGLE_DAYS:  # it would have ended already
        raise InputError(f"the date of a sore area must be within the last {NIGGLE_DAYS} days")
    athlete.niggle_area = area
    athlete.niggle_on = on
    return Niggle(area, on)


def clear_niggle(athlete: Athlete) -> None:
    """Forget the runner's sore area: the tips go back to their usual choice."""
    athlete.niggle_area = None
    athlete.niggle_on = None


def active_niggle(athlete: Athlete, today: dt.date, days: int = NIGGLE_DAYS) -> Niggle | None:
    """The runner's sore area while it still shapes the tips; None once `days` have passed."""
    area, on = athlete.niggle_area, athlete.niggle_on
    if area is None or on is None or area not in NIGGLE_AREAS:
        return None
    return Niggle(area, on) if (today - on).days < days else None


def niggle_last_day(niggle: Niggle, days: int = NIGGLE_DAYS) -> dt.date:
    """The last day a sore area shapes the tips."""
    return niggle.since + dt.timedelta(days=days - 1)


def log_massage(
    session: Session, athlete: Athlete, on: dt.date, place: str | None, today: dt.date
) -> MassageSession:
    """Record a massage session (resets 'since your last massage')."""
    if on > today + dt.timedelta(days=1):
        raise InputError("a session can be logged once it has happened")
    place = " ".join((place or "").split()) or None
    if place and len(place) > 120:
        raise InputError("the place must be at most 120 characters")
    row = MassageSession(athlete_id=athlete.id, on=on, place=place)
    session.add(row)
    return row


def massages(session: Session, athlete_id: int) -> list[MassageSession]:
    """The runner's sessions, newest first."""
    return list(
        session.scalars(
            select(MassageSession)
            .where(MassageSession.athlete_id == athlete_id)
            .order_by(MassageSession.on.desc(), MassageSession.id.desc())
        )
    )


def remove_massage(session: Session, athlete_id: int, session_id: int) -> None:
    """Delete one of the runner's own sessions."""
    row = session.get(MassageSession, session_id)
    if row is None or row.athlete_id != athlete_id:
        raise InputError(f"runner {athlete_id} has no session {session_id}")
    session.delete(row)

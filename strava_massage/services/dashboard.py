"""What a runner's dashboard shows, read with a handful of indexed queries (no page knows SQL)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strava_massage.domain import ledger
from strava_massage.domain.ledger import Week
from strava_massage.models import Activity, Athlete, MassageSession, Note
from strava_massage.services.advising import clinic_of, runner_settings

CHART_WEEKS = 16
NOTES_PER_PAGE = 20


def runner_today(athlete: Athlete, now: dt.datetime | None = None) -> dt.date:
    """Today on the runner's wall clock (their runs' time zone), UTC until one is known."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        zone = ZoneInfo(athlete.timezone) if athlete.timezone else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return now.astimezone(zone).date()


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows, in metres and dates (the page formats them)."""

    today: dt.date
    totals: ledger.Totals
    last_massage: dt.date | None
    runs: int
    weeks: list[Week]
    threshold_m: float
    notes: list[Note]
    older_notes: bool


def weekly(
    session: Session, athlete_id: int, today: dt.date, count: int = CHART_WEEKS
) -> list[Week]:
    """Distance per week for the last `count` weeks, oldest first, with sessions marked."""
    first = ledger.week_start(today) - dt.timedelta(weeks=count - 1)
    # Per day, then bucketed here: at most 7 * count rows, and no dialect-specific week function.
    per_day = session.execute(
        select(Activity.local_date, func.sum(Activity.distance_m))
        .where(
            Activity.athlete_id == athlete_id,
            Activity.local_date >= first,
            Activity.local_date <= today,
        )
        .group_by(Activity.local_date)
    )
    metres = [0.0] * count
    for day, total in per_day:
        metres[(day - first).days // 7] += float(total)
    sessions: list[list[dt.date]] = [[] for _ in range(count)]
    for day in session.scalars(
        select(MassageSession.on).where(
            MassageSession.athlete_id == athlete_id,
            MassageSession.on >= first,
            MassageSession.on <= today,
        )
    ):
        sessions[(day - first).days // 7].append(day)
    return [
        Week(first + dt.timedelta(weeks=i), metres[i], sessions=tuple(sorted(sessions[i])))
        for i in range(count)
    ]


def notes_page(
    session: Session, athlete_id: int, before: int | None = None, size: int = NOTES_PER_PAGE
) -> tuple[list[Note], bool]:
    """A page of the runner's notes, newest first, and whether older ones exist."""
    query = select(Note).where(Note.athlete_id == athlete_id)
    if before is not None:
        query = query.where(Note.id < before)
    rows = list(session.scalars(query.order_by(Note.id.desc()).limit(size + 1)))
    return rows[:size], len(rows) > size


def load(
    session: Session, athlete: Athlete, today: dt.date, before_note: int | None = None
) -> Dashboard:
    """The dashboard for `today`: totals, 16 weeks, a page of notes."""
    totals = ledger.totals(session, athlete, today)
    runs = session.scalar(select(func.count()).where(Activity.athlete_id == athlete.id)) or 0
    notes, older = notes_page(session, athlete.id, before_note)
    # The chart's line is the threshold the runner's notes use, a clinic's if it changed it.
    settings = runner_settings(athlete, clinic=clinic_of(session, athlete))
    return Dashboard(
        today=today,
        totals=totals,
        last_massage=totals.last_massage,
        runs=runs,
        weeks=weekly(session, athlete.id, today),
        threshold_m=settings.high_volume_m(athlete.effective_units),
        notes=notes,
        older_notes=older,
    )


@dataclass(frozen=True)
class Bar:
    """A bar of the SVG chart, in the chart's own coordinates."""

    x: float
    y: float
    width: float
    height: float
    week: Week
    over: bool


@dataclass(frozen=True)
class Chart:
    """Geometry of the weekly-distance chart; the template only draws it."""

    width: int
    height: int
    top: float
    bottom: float
    bars: list[Bar]
    line_y: float
    ticks: list[tuple[float, float]]  # (y, metres)


def chart(
    weeks: list[Week], threshold_m: float, unit_m: float, width: int = 640, height: int = 220
) -> Chart:
    """Lay out the bars, the threshold line and gridlines at round numbers of the runner's unit."""
    top, bottom, left, right = 12.0, height - 28.0, 44.0, 8.0
    peak = max([w.metres for w in weeks] + [threshold_m * 1.15])
    # Gridlines every 5, 10, 20, 25, 50... units, so that there are at most four of them.
    step = next(s for s in _STEPS if peak / (s * unit_m) <= 4) * unit_m
    peak = max(peak, step * math.ceil(peak / step))
    scale = (bottom - top) / peak
    slot = (width - left - right) / max(len(weeks), 1)
    bars = []
    for i, week in enumerate(weeks):
        h = week.metres * scale
        x = left + i * slot + slot * 0.15
        bars.append(Bar(x, bottom - h, slot * 0.7, h, week, week.metres >= threshold_m))
    ticks = [(bottom - k * step * scale, k * step) for k in range(int(peak / step + 1e-9) + 1)]
    return Chart(width, height, top, bottom, bars, bottom - threshold_m * scale, ticks)


_STEPS = (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9)

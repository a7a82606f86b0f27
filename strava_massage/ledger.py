"""The mileage ledger: one row per run, and every total derived from it by query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from strava_massage.models import Activity, Athlete, MassageSession, Note
from strava_massage.strava import ActivityInfo


@dataclass(frozen=True)
class Totals:
    """Distances in metres around one local date."""

    week_m: float
    month_m: float
    year_m: float
    rolling7_m: float
    rolling28_m: float
    since_connect_m: float
    since_massage_m: float


def upsert_run(session: Session, info: ActivityInfo) -> None:
    """Record a run keyed by its id; a second call overwrites, so totals never double.

    A real INSERT ... ON CONFLICT DO UPDATE, because a history import and a webhook may
    store the same run at the same moment.
    """
    values = {
        "id": info.id,
        "athlete_id": info.athlete_id,
        "local_date": info.start_date_local.date(),
        "distance_m": info.distance_m,
        "moving_time_s": info.moving_time_s,
        "sport_type": info.sport_type,
        "workout_type": info.workout_type,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Activity).values(**values)
    changed = {k: stmt.excluded[k] for k in values if k != "id"}
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed))


def remove_activity(session: Session, activity_id: int) -> bool:
    """Take an activity out of the ledger (deleted, or no longer a run)."""
    result = session.execute(delete(Activity).where(Activity.id == activity_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week holding `day`."""
    return day - dt.timedelta(days=day.weekday())


def last_massage(session: Session, athlete_id: int, day: dt.date) -> dt.date | None:
    """The runner's latest logged massage on or before `day` (a booked future one not yet)."""
    return session.scalar(
        select(func.max(MassageSession.on)).where(
            MassageSession.athlete_id == athlete_id, MassageSession.on <= day
        )
    )


def massage_anchor(athlete: Athlete, last: dt.date | None) -> dt.date:
    """The date distance 'since the last massage' counts from: the session, else connecting."""
    return last or athlete.connected_at.date()


def totals(session: Session, athlete: Athlete, day: dt.date, last: dt.date | None = None) -> Totals:
    """All totals for the week, month, year and windows around `day`, in one indexed query.

    `last` is the latest massage on or before `day` (see `last_massage`).
    """
    week0, month0, year0 = week_start(day), day.replace(day=1), day.replace(month=1, day=1)
    r7, r28 = day - dt.timedelta(days=6), day - dt.timedelta(days=27)
    connect0, massage0 = athlete.connected_at.date(), massage_anchor(athlete, last)
    d, dist = Activity.local_date, Activity.distance_m

    def window(lo: dt.date, hi: dt.date, *, exclusive_lo: bool = False) -> Any:
        lower = d > lo if exclusive_lo else d >= lo
        return func.coalesce(func.sum(case((lower & (d <= hi), dist), else_=0.0)), 0.0)

    # The anchor for "since the last massage": a session logged on a day counts that day's
    # runs as before it; without a session, runs on the connect day count.
    row = session.execute(
        select(
            window(week0, week0 + dt.timedelta(days=6)),
            window(month0, day),
            window(year0, day),
            window(r7, day),
            window(r28, day),
            window(connect0, day),
            window(massage0, day, exclusive_lo=last is not None),
        ).where(Activity.athlete_id == athlete.id, d >= min(year0, r28, connect0, massage0))
    ).one()
    return Totals(*(float(v) for v in row))


def runs_between(
    session: Session, athlete_id: int, first: dt.date, last: dt.date, exclude: int
) -> list[float]:
    """Distances of the runs dated first..last, leaving out one activity."""
    return list(
        session.scalars(
            select(Activity.distance_m).where(
                Activity.athlete_id == athlete_id,
                Activity.local_date >= first,
                Activity.local_date <= last,
                Activity.id != exclude,
            )
        )
    )


def first_run_date(session: Session, athlete_id: int) -> dt.date | None:
    """The date of the runner's earliest known run."""
    return session.scalar(
        select(func.min(Activity.local_date)).where(Activity.athlete_id == athlete_id)
    )


def recent_notes(session: Session, athlete_id: int, exclude: int, limit: int = 10) -> list[Note]:
    """The runner's latest notes, newest first, leaving out one activity's."""
    return list(
        session.scalars(
            select(Note)
            .where(Note.athlete_id == athlete_id, Note.activity_id != exclude)
            .order_by(Note.local_date.desc(), Note.id.desc())
            .limit(limit)
        )
    )

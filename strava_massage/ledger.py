"""The mileage ledger: one row per run, and every total derived from it by query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, bindparam, case, delete, func, select
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
    since_massage_m: float


_UPSERTS: dict[str, Any] = {}
_RUN_COLUMNS = (
    "athlete_id", "local_date", "distance_m", "moving_time_s", "sport_type", "workout_type",
)  # fmt: skip


def _upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE for this dialect, built once with bound parameters."""
    if dialect not in _UPSERTS:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(Activity).values({c: bindparam(c) for c in ("id", *_RUN_COLUMNS)})
        changed = {c: stmt.excluded[c] for c in _RUN_COLUMNS}
        _UPSERTS[dialect] = stmt.on_conflict_do_update(index_elements=["id"], set_=changed)
    return _UPSERTS[dialect]


def upsert_run(session: Session, info: ActivityInfo) -> None:
    """Record a run keyed by its id; a second call overwrites, so totals never double.

    A real INSERT ... ON CONFLICT DO UPDATE, because a history import and a webhook may
    store the same run at the same moment.
    """
    stmt = _upsert_statement(session.get_bind().dialect.name)
    session.execute(
        stmt,
        {
            "id": info.id,
            "athlete_id": info.athlete_id,
            "local_date": info.start_date_local.date(),
            "distance_m": info.distance_m,
            "moving_time_s": info.moving_time_s,
            "sport_type": info.sport_type,
            "workout_type": info.workout_type,
        },
    )


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


def _window(lo: str, hi: str) -> Any:
    """Sum of run distances dated between two bound dates, inclusive."""
    d = Activity.local_date
    inside = (d >= bindparam(lo, type_=Date)) & (d <= bindparam(hi, type_=Date))
    return func.coalesce(func.sum(case((inside, Activity.distance_m), else_=0.0)), 0.0)


# Built once: a run's totals are asked for on every note, and building the expression cost more
# than running it.
_TOTALS = select(
    _window("week0", "week1"),
    _window("month0", "day"),
    _window("year0", "day"),
    _window("r7", "day"),
    _window("r28", "day"),
).where(
    Activity.athlete_id == bindparam("athlete_id"),
    Activity.local_date >= bindparam("lowest", type_=Date),
    Activity.local_date <= bindparam("week1", type_=Date),
)
# Apart, and without CASEs: the last massage may be years back, and this is the one sum that
# reads that far.
_SINCE = select(func.coalesce(func.sum(Activity.distance_m), 0.0)).where(
    Activity.athlete_id == bindparam("athlete_id"),
    Activity.local_date >= bindparam("massage0", type_=Date),
    Activity.local_date <= bindparam("day", type_=Date),
)


def totals(session: Session, athlete: Athlete, day: dt.date, last: dt.date | None = None) -> Totals:
    """All totals for the week, month, year and windows around `day`, in two indexed queries.

    `last` is the latest massage on or before `day` (see `last_massage`).
    """
    week0 = week_start(day)
    dates = {
        "week0": week0,
        "week1": week0 + dt.timedelta(days=6),
        "month0": day.replace(day=1),
        "year0": day.replace(month=1, day=1),
        "r7": day - dt.timedelta(days=6),
        "r28": day - dt.timedelta(days=27),
        "day": day,
    }
    lowest = min(dates["year0"], dates["r28"], week0)
    row = session.execute(_TOTALS, {**dates, "athlete_id": athlete.id, "lowest": lowest}).one()
    # "Since the last massage": a session logged on a day counts that day's runs as before it;
    # without a session, runs from the connect day on count.
    massage0 = last + dt.timedelta(days=1) if last is not None else massage_anchor(athlete, last)
    since = session.scalar(_SINCE, {"athlete_id": athlete.id, "massage0": massage0, "day": day})
    week, month, year, r7, r28 = (float(v) for v in row)
    return Totals(week, month, year, r7, r28, float(since or 0.0))


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


def last_note_date(
    session: Session, athlete_id: int, kind: str, day: dt.date, exclude: int
) -> dt.date | None:
    """The latest date on or before `day` the runner got a note of this kind (one run left out)."""
    # Newest first along the (athlete, date) index, so it stops at the first match instead of
    # reading the runner's whole history.
    return session.scalar(
        select(Note.local_date)
        .where(
            Note.athlete_id == athlete_id,
            Note.kind == kind,
            Note.local_date <= day,
            Note.activity_id != exclude,
        )
        .order_by(Note.local_date.desc())
        .limit(1)
    )

"""The mileage ledger: one row per run, and every total derived from it by query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Date, bindparam, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from strava_massage.models import Activity, Athlete, MassageSession, Note, table_of
from strava_massage.strava import ActivityInfo

# The worker runs these on a Core connection (cheaper per statement), the pages in a session.
Executor = Session | Connection


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
        stmt = insert(table_of(Activity)).values({c: bindparam(c) for c in ("id", *_RUN_COLUMNS)})
        changed = {c: stmt.excluded[c] for c in _RUN_COLUMNS}
        _UPSERTS[dialect] = stmt.on_conflict_do_update(index_elements=["id"], set_=changed)
    return _UPSERTS[dialect]


def _dialect(session: Executor) -> str:
    """The database's dialect name, from a session or a connection."""
    return (session.get_bind() if isinstance(session, Session) else session).dialect.name


def upsert_run(session: Executor, info: ActivityInfo) -> None:
    """Record a run keyed by its id; a second call overwrites, so totals never double.

    A real INSERT ... ON CONFLICT DO UPDATE, because a history import and a webhook may
    store the same run at the same moment.
    """
    stmt = _upsert_statement(_dialect(session))
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


_REMOVE = delete(table_of(Activity)).where(Activity.id == bindparam("activity_id"))


def remove_activity(session: Executor, activity_id: int) -> bool:
    """Take an activity out of the ledger (deleted, or no longer a run)."""
    result = session.execute(_REMOVE, {"activity_id": activity_id})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week holding `day`."""
    return day - dt.timedelta(days=day.weekday())


# The queries below run for every note, so each is built once with bound parameters: building
# the expression per call cost more than running it.
_LAST_MASSAGE = select(func.max(MassageSession.on)).where(
    MassageSession.athlete_id == bindparam("athlete_id"),
    MassageSession.on <= bindparam("day", type_=Date),
)


def last_massage(session: Executor, athlete_id: int, day: dt.date) -> dt.date | None:
    """The runner's latest logged massage on or before `day` (a booked future one not yet)."""
    return session.scalar(_LAST_MASSAGE, {"athlete_id": athlete_id, "day": day})


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


def totals(
    session: Executor, athlete: Athlete, day: dt.date, last: dt.date | None = None
) -> Totals:
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


_RUNS_BETWEEN = select(Activity.distance_m).where(
    Activity.athlete_id == bindparam("athlete_id"),
    Activity.local_date >= bindparam("first", type_=Date),
    Activity.local_date <= bindparam("last", type_=Date),
    Activity.id != bindparam("exclude"),
)


def runs_between(
    session: Executor, athlete_id: int, first: dt.date, last: dt.date, exclude: int
) -> list[float]:
    """Distances of the runs dated first..last, leaving out one activity."""
    params = {"athlete_id": athlete_id, "first": first, "last": last, "exclude": exclude}
    return list(session.scalars(_RUNS_BETWEEN, params))


_FIRST_RUN = select(func.min(Activity.local_date)).where(
    Activity.athlete_id == bindparam("athlete_id")
)


def first_run_date(session: Executor, athlete_id: int) -> dt.date | None:
    """The date of the runner's earliest known run."""
    return session.scalar(_FIRST_RUN, {"athlete_id": athlete_id})


class PastNoteRow(Protocol):
    """The columns of a past note that the advice looks at."""

    local_date: dt.date
    kind: str
    tip_id: str | None
    is_session: bool


_NOTES = table_of(Note)
_RECENT_NOTES = (
    select(_NOTES.c.local_date, _NOTES.c.kind, _NOTES.c.tip_id, _NOTES.c.is_session)
    .where(
        _NOTES.c.athlete_id == bindparam("athlete_id"), _NOTES.c.activity_id != bindparam("exclude")
    )
    .order_by(_NOTES.c.local_date.desc(), _NOTES.c.id.desc())
    .limit(bindparam("limit"))
)


def recent_notes(
    session: Executor, athlete_id: int, exclude: int, limit: int = 10
) -> list[PastNoteRow]:
    """The runner's latest notes, newest first, leaving out one activity's."""
    params = {"athlete_id": athlete_id, "exclude": exclude, "limit": limit}
    return list(session.execute(_RECENT_NOTES, params))


# Newest first along the (athlete, date) index, so it stops at the first match instead of
# reading the runner's whole history.
_LAST_NOTE = (
    select(_NOTES.c.local_date)
    .where(
        _NOTES.c.athlete_id == bindparam("athlete_id"),
        _NOTES.c.kind == bindparam("kind"),
        _NOTES.c.local_date <= bindparam("day", type_=Date),
        _NOTES.c.activity_id != bindparam("exclude"),
    )
    .order_by(_NOTES.c.local_date.desc())
    .limit(1)
)


def last_note_date(
    session: Executor, athlete_id: int, kind: str, day: dt.date, exclude: int
) -> dt.date | None:
    """The latest date on or before `day` the runner got a note of this kind (one run left out)."""
    params = {"athlete_id": athlete_id, "kind": kind, "day": day, "exclude": exclude}
    return session.scalar(_LAST_NOTE, params)

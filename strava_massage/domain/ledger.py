"""The mileage ledger: one row per run, and every total derived from it by query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Date, bindparam, case, delete, func, select, union_all
from sqlalchemy.orm import Session

from strava_massage.advice.wordings import WORDINGS
from strava_massage.db import insert_for
from strava_massage.domain.activity import ActivityInfo
from strava_massage.models import Activity, Athlete, MassageSession, Note, table_of

# The worker runs these on a Core connection, the pages in a session.
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
    last_massage: dt.date | None  # the latest logged session on or before the day


_UPSERTS: dict[str, Any] = {}
_RUN_COLUMNS = (
    "athlete_id", "local_date", "distance_m", "moving_time_s", "sport_type", "workout_type",
)  # fmt: skip


def _upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE for this dialect, built once with bound parameters."""
    if dialect not in _UPSERTS:
        stmt = insert_for(dialect, table_of(Activity)).values(
            {c: bindparam(c) for c in ("id", *_RUN_COLUMNS)}
        )
        changed = {c: stmt.excluded[c] for c in _RUN_COLUMNS}
        _UPSERTS[dialect] = stmt.on_conflict_do_update(index_elements=["id"], set_=changed)
    return _UPSERTS[dialect]


def _dialect(session: Executor) -> str:
    """The database's dialect name, from a session or a connection."""
    return (session.get_bind() if isinstance(session, Session) else session).dialect.name


# A query is a prebuilt statement and its parameters, for the caller to run.
Query = tuple[Any, dict[str, Any]]


def run_of(info: ActivityInfo) -> Activity:
    """The ledger row of a run fetched from Strava (detached, not yet stored)."""
    return Activity(
        id=info.id,
        athlete_id=info.athlete_id,
        local_date=info.start_date_local.date(),
        distance_m=info.distance_m,
        moving_time_s=info.moving_time_s,
        sport_type=info.sport_type,
        workout_type=info.workout_type,
    )


def upsert_query(run: Activity, dialect: str) -> Query:
    """The statement that stores `run`, overwriting the row of the same id."""
    return _upsert_statement(dialect), {c: getattr(run, c) for c in ("id", *_RUN_COLUMNS)}


def upsert_run(session: Executor, info: ActivityInfo) -> Activity:
    """Record a run keyed by its id; a second call overwrites, so totals never double.

    A real INSERT ... ON CONFLICT DO UPDATE, because a history import and a webhook may
    store the same run at the same moment. Returns the row as written (detached).
    """
    run = run_of(info)
    session.execute(*upsert_query(run, _dialect(session)))
    return run


_REMOVE = delete(table_of(Activity)).where(
    Activity.id == bindparam("activity_id"), Activity.athlete_id == bindparam("athlete_id")
)


def remove_activity(session: Executor, activity_id: int, athlete_id: int) -> bool:
    """Take a runner's activity out of the ledger (deleted, or no longer a run).

    Only that runner's row: an event naming another runner's activity removes nothing.
    """
    result = session.execute(_REMOVE, {"activity_id": activity_id, "athlete_id": athlete_id})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week holding `day`."""
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True)
class Week:
    """A Monday-to-Sunday week: its Monday and the distance run in it, and what a view adds:
    the massage sessions in it (the dashboard's chart), or the distance of the 28 days to its
    end and its notes (the preview's replay)."""

    start: dt.date
    metres: float
    sessions: tuple[dt.date, ...] = ()
    rolling28_m: float = 0.0
    notes: tuple[Any, ...] = ()


# The queries below run for every note, so each is built once with bound parameters; the
# totals and the dates around them are read by one statement (scalar subqueries beside the
# window sums).
_LAST_MASSAGE = (
    select(func.max(MassageSession.on))
    .where(
        MassageSession.athlete_id == bindparam("athlete_id"),
        MassageSession.on <= bindparam("day", type_=Date),
    )
    .scalar_subquery()
)


def massage_anchor(athlete: Athlete, last: dt.date | None) -> dt.date:
    """The date distance 'since the last massage' counts from: the session, else connecting."""
    return last or athlete.connected_at.date()


def _window(lo: str, hi: str) -> Any:
    """Sum of run distances dated between two bound dates, inclusive."""
    d = Activity.local_date
    inside = (d >= bindparam(lo, type_=Date)) & (d <= bindparam(hi, type_=Date))
    return func.coalesce(func.sum(case((inside, Activity.distance_m), else_=0.0)), 0.0)


# The runs again, under another name: a subquery on the outer statement's table would be
# correlated with its rows instead of reading the runner's own.
_RUNS = table_of(Activity).alias("runs")
_AFTER = func.coalesce(_LAST_MASSAGE, bindparam("before_connect", type_=Date))
# Apart from the windows, and without CASEs: the last massage may be years back, and this is
# the one sum that reads that far. A session logged on a day counts that day's runs as before
# it; without a session, runs from the connect day on count ("before_connect" is the day before).
_SINCE = (
    select(func.coalesce(func.sum(_RUNS.c.distance_m), 0.0))
    .where(
        _RUNS.c.athlete_id == bindparam("athlete_id"),
        _RUNS.c.local_date > _AFTER,
        _RUNS.c.local_date <= bindparam("day", type_=Date),
    )
    .scalar_subquery()
)
_TOTALS = select(
    _window("week0", "week1"),
    _window("month0", "day"),
    _window("year0", "day"),
    _window("r7", "day"),
    _window("r28", "day"),
    _SINCE,
    _LAST_MASSAGE,
).where(
    Activity.athlete_id == bindparam("athlete_id"),
    Activity.local_date >= bindparam("lowest", type_=Date),
    Activity.local_date <= bindparam("week1", type_=Date),
)


def _totals_params(athlete: Athlete, day: dt.date) -> dict[str, Any]:
    """The bound dates of the totals statement for `day`."""
    week0 = week_start(day)
    dates = {
        "week0": week0,
        "week1": week0 + dt.timedelta(days=6),
        "month0": day.replace(day=1),
        "year0": day.replace(month=1, day=1),
        "r7": day - dt.timedelta(days=6),
        "r28": day - dt.timedelta(days=27),
        "day": day,
        "before_connect": athlete.connected_at.date() - dt.timedelta(days=1),
    }
    lowest = min(dates["year0"], dates["r28"], week0)
    return {**dates, "athlete_id": athlete.id, "lowest": lowest}


def _totals_of(row: Any) -> Totals:
    """Totals from the first seven columns of a totals row."""
    week, month, year, r7, r28, since = (float(v or 0.0) for v in row[:6])
    return Totals(week, month, year, r7, r28, since, row[6])


def totals(session: Executor, athlete: Athlete, day: dt.date) -> Totals:
    """All totals for the week, month, year and windows around `day`, and the last massage
    on or before it (a booked future one not yet), in one indexed statement."""
    return _totals_of(session.execute(_TOTALS, _totals_params(athlete, day)).one())


@dataclass(frozen=True)
class History:
    """What a note looks back on beside the totals: the first run and the last note of a kind."""

    totals: Totals
    first_run: dt.date | None
    last_note_of_kind: dt.date | None


_FIRST_RUN = (
    select(func.min(_RUNS.c.local_date))
    .where(_RUNS.c.athlete_id == bindparam("athlete_id"))
    .scalar_subquery()
)
_NOTES = table_of(Note)
# Newest first along the (athlete, kind, date) index: one lookup, whether the runner got a note of
# the kind yesterday, years ago or never.
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
    .scalar_subquery()
)
_HISTORY = _TOTALS.add_columns(_FIRST_RUN, _LAST_NOTE)


def history_query(athlete: Athlete, day: dt.date, kind: str, exclude: int) -> Query:
    """The totals around `day`, the runner's first run, and the latest date on or before `day`
    they got a note of `kind` (one run left out), in one statement; `history_of` reads its row."""
    return _HISTORY, {**_totals_params(athlete, day), "kind": kind, "exclude": exclude}


def history_of(row: Any) -> History:
    """A History from the row of `history_query`."""
    return History(_totals_of(row), row[7], row[8])


_RUNS_BETWEEN = (
    select(_RUNS.c.local_date, _RUNS.c.distance_m, _RUNS.c.workout_type)
    .where(
        _RUNS.c.athlete_id == bindparam("athlete_id"),
        _RUNS.c.local_date >= bindparam("first", type_=Date),
        _RUNS.c.local_date <= bindparam("last", type_=Date),
        _RUNS.c.id != bindparam("exclude"),
    )
    .order_by(_RUNS.c.local_date, _RUNS.c.id)
)


def runs_between_query(athlete_id: int, first: dt.date, last: dt.date, exclude: int) -> Query:
    """The runs dated first..last, oldest first, leaving out one activity: (local_date,
    distance_m, workout_type) rows."""
    params = {"athlete_id": athlete_id, "first": first, "last": last, "exclude": exclude}
    return _RUNS_BETWEEN, params


class PastNoteRow(Protocol):
    """The columns of a past note that the advice looks at (read only)."""

    @property
    def local_date(self) -> dt.date:
        """The note's run's day."""

    @property
    def kind(self) -> str:
        """Which rule decided it."""

    @property
    def tip_id(self) -> str | None:
        """The tip it gave, if any."""

    @property
    def is_session(self) -> bool:
        """Whether it suggested a session."""

    @property
    def wording_id(self) -> str | None:
        """The rule's wording it used, if any."""


_RECENT_NOTES = (
    select(
        _NOTES.c.local_date,
        _NOTES.c.kind,
        _NOTES.c.tip_id,
        _NOTES.c.is_session,
        _NOTES.c.wording_id,
    )
    .where(
        _NOTES.c.athlete_id == bindparam("athlete_id"), _NOTES.c.activity_id != bindparam("exclude")
    )
    .order_by(_NOTES.c.local_date.desc(), _NOTES.c.id.desc())
    .limit(bindparam("limit"))
)


# The wording each rule used last, however long ago (a rule may not have spoken for months): the
# wording of its latest note, read for each kind that has wordings (a wording's key is its
# rule's kind, or kind.variant) along the (athlete, kind, date) index. One index lookup per
# kind, whatever the runner's history; every note of these kinds carries a wording (only those
# from before wordings existed do not, and none is newer than a note with one).
_WORDING_KINDS = tuple(sorted({key.split(".")[0] for key in WORDINGS}))


def _last_wording(kind: str) -> Any:
    """The kind and wording of the runner's latest note of `kind` up to "day", if it has one."""
    latest = (
        select(_NOTES.c.kind, _NOTES.c.wording_id)
        .where(
            _NOTES.c.athlete_id == bindparam("athlete_id"),
            _NOTES.c.kind == kind,
            _NOTES.c.local_date <= bindparam("day", type_=Date),
            _NOTES.c.activity_id != bindparam("exclude"),
        )
        .order_by(_NOTES.c.local_date.desc(), _NOTES.c.id.desc())
        .limit(1)
        .subquery(f"last_{kind}")
    )
    return select(latest.c.kind, latest.c.wording_id).where(latest.c.wording_id.is_not(None))


_LAST_WORDINGS = union_all(*(_last_wording(kind) for kind in _WORDING_KINDS))


def last_wordings_query(athlete_id: int, day: dt.date, exclude: int) -> Query:
    """The wording each rule used last for the runner up to `day`: (kind, wording_id) rows."""
    return _LAST_WORDINGS, {"athlete_id": athlete_id, "day": day, "exclude": exclude}


def recent_notes_query(athlete_id: int, exclude: int, limit: int = 10) -> Query:
    """The runner's latest notes, newest first, leaving out one activity's (PastNoteRow rows)."""
    return _RECENT_NOTES, {"athlete_id": athlete_id, "exclude": exclude, "limit": limit}

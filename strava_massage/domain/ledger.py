"""The mileage ledger: one row per run, and every total derived from it by query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, case, delete, func, select, union_all
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


_RUN_COLUMNS = (
    "athlete_id", "local_date", "distance_m", "moving_time_s", "sport_type", "workout_type",
)  # fmt: skip


def _dialect(session: Executor) -> str:
    """The database's dialect name, from a session or a connection."""
    return (session.get_bind() if isinstance(session, Session) else session).dialect.name


def upsert_run(session: Executor, info: ActivityInfo) -> Activity:
    """Record a run keyed by its id; a second call overwrites, so totals never double.

    A real INSERT ... ON CONFLICT DO UPDATE, because a history import and a webhook may
    store the same run at the same moment. Returns the row as written (detached).
    """
    run = Activity(
        id=info.id,
        athlete_id=info.athlete_id,
        local_date=info.start_date_local.date(),
        distance_m=info.distance_m,
        moving_time_s=info.moving_time_s,
        sport_type=info.sport_type,
        workout_type=info.workout_type,
    )
    stmt = insert_for(_dialect(session), table_of(Activity))
    stmt = stmt.values({c: getattr(run, c) for c in ("id", *_RUN_COLUMNS)})
    changed = {c: stmt.excluded[c] for c in _RUN_COLUMNS}
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changed))
    return run


def remove_activity(session: Executor, activity_id: int, athlete_id: int) -> bool:
    """Take a runner's activity out of the ledger (deleted, or no longer a run).

    Only that runner's row: an event naming another runner's activity removes nothing.
    """
    result = session.execute(
        delete(table_of(Activity)).where(
            Activity.id == activity_id, Activity.athlete_id == athlete_id
        )
    )
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


def massage_anchor(athlete: Athlete, last: dt.date | None) -> dt.date:
    """The date distance 'since the last massage' counts from: the session, else connecting."""
    return last or athlete.connected_at.date()


# The runs again, under another name: a subquery on the outer statement's table would be
# correlated with its rows instead of reading the runner's own.
_RUNS = table_of(Activity).alias("runs")
_NOTES = table_of(Note)


def _totals(athlete: Athlete, day: dt.date) -> Any:
    """One indexed statement: the window sums around `day` and, beside them as scalar
    subqueries, the distance since the last massage and the last massage's date."""
    week0 = week_start(day)
    week1 = week0 + dt.timedelta(days=6)

    def window(lo: dt.date, hi: dt.date) -> Any:
        inside = (Activity.local_date >= lo) & (Activity.local_date <= hi)
        return func.coalesce(func.sum(case((inside, Activity.distance_m), else_=0.0)), 0.0)

    last_massage = (
        select(func.max(MassageSession.on))
        .where(MassageSession.athlete_id == athlete.id, MassageSession.on <= day)
        .scalar_subquery()
    )
    # Apart from the windows, and without CASEs: the last massage may be years back, and this
    # is the one sum that reads that far. A session logged on a day counts that day's runs as
    # before it; without a session, runs from the connect day on count.
    after = func.coalesce(last_massage, athlete.connected_at.date() - dt.timedelta(days=1))
    since = (
        select(func.coalesce(func.sum(_RUNS.c.distance_m), 0.0))
        .where(
            _RUNS.c.athlete_id == athlete.id,
            _RUNS.c.local_date > after,
            _RUNS.c.local_date <= day,
        )
        .scalar_subquery()
    )
    r7, r28 = day - dt.timedelta(days=6), day - dt.timedelta(days=27)
    return select(
        window(week0, week1),
        window(day.replace(day=1), day),
        window(day.replace(month=1, day=1), day),
        window(r7, day),
        window(r28, day),
        since,
        last_massage,
    ).where(
        Activity.athlete_id == athlete.id,
        Activity.local_date >= min(day.replace(month=1, day=1), r28, week0),
        Activity.local_date <= week1,
    )


def _totals_of(row: Any) -> Totals:
    """Totals from the first seven columns of a totals row."""
    week, month, year, r7, r28, since = (float(v or 0.0) for v in row[:6])
    return Totals(week, month, year, r7, r28, since, row[6])


def totals(session: Executor, athlete: Athlete, day: dt.date) -> Totals:
    """All totals for the week, month, year and windows around `day`, and the last massage
    on or before it (a booked future one not yet), in one indexed statement."""
    return _totals_of(session.execute(_totals(athlete, day)).one())


@dataclass(frozen=True)
class History:
    """What a note looks back on beside the totals: the first run and the last note of a kind."""

    totals: Totals
    first_run: dt.date | None
    last_note_of_kind: dt.date | None


def history(session: Executor, athlete: Athlete, day: dt.date, kind: str, exclude: int) -> History:
    """The totals around `day`, the runner's first run, and the latest date on or before `day`
    they got a note of `kind` (one run left out), in one statement."""
    first_run = select(func.min(_RUNS.c.local_date)).where(_RUNS.c.athlete_id == athlete.id)
    # Newest first along the (athlete, kind, date) index: one lookup, whether the runner got a
    # note of the kind yesterday, years ago or never.
    last_note = (
        select(_NOTES.c.local_date)
        .where(
            _NOTES.c.athlete_id == athlete.id,
            _NOTES.c.kind == kind,
            _NOTES.c.local_date <= day,
            _NOTES.c.activity_id != exclude,
        )
        .order_by(_NOTES.c.local_date.desc())
        .limit(1)
    )
    stmt = _totals(athlete, day).add_columns(
        first_run.scalar_subquery(), last_note.scalar_subquery()
    )
    row = session.execute(stmt).one()
    return History(_totals_of(row), row[7], row[8])


def runs_between(
    session: Executor, athlete_id: int, first: dt.date, last: dt.date, exclude: int
) -> list[Any]:
    """The runs dated first..last, oldest first, leaving out one activity: (local_date,
    distance_m, workout_type) rows."""
    stmt = (
        select(_RUNS.c.local_date, _RUNS.c.distance_m, _RUNS.c.workout_type)
        .where(
            _RUNS.c.athlete_id == athlete_id,
            _RUNS.c.local_date >= first,
            _RUNS.c.local_date <= last,
            _RUNS.c.id != exclude,
        )
        .order_by(_RUNS.c.local_date, _RUNS.c.id)
    )
    return list(session.execute(stmt))


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


def recent_notes(
    session: Executor, athlete_id: int, exclude: int, limit: int = 10
) -> list[PastNoteRow]:
    """The runner's latest notes, newest first, leaving out one activity's."""
    n = _NOTES.c
    stmt = (
        select(n.local_date, n.kind, n.tip_id, n.is_session, n.wording_id)
        .where(n.athlete_id == athlete_id, n.activity_id != exclude)
        .order_by(n.local_date.desc(), n.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt))


# The kinds of rule that have wordings (a wording's key is its rule's kind, or kind.variant).
_WORDING_KINDS = tuple(sorted({key.split(".")[0] for key in WORDINGS}))


def last_wordings(session: Executor, athlete_id: int, day: dt.date, exclude: int) -> dict[str, str]:
    """The wording each rule used last for the runner up to `day`, however long ago: {kind:
    wording_id}.

    The wording of the rule's latest note, read for each kind along the (athlete, kind, date)
    index: one lookup per kind, whatever the runner's history. Every note of these kinds carries
    a wording (only those from before wordings existed do not, and none is newer than one with).
    """

    def last_of(kind: str) -> Any:
        latest = (
            select(_NOTES.c.kind, _NOTES.c.wording_id)
            .where(
                _NOTES.c.athlete_id == athlete_id,
                _NOTES.c.kind == kind,
                _NOTES.c.local_date <= day,
                _NOTES.c.activity_id != exclude,
            )
            .order_by(_NOTES.c.local_date.desc(), _NOTES.c.id.desc())
            .limit(1)
            .subquery(f"last_{kind}")
        )
        return select(latest.c.kind, latest.c.wording_id).where(latest.c.wording_id.is_not(None))

    rows = session.execute(union_all(*(last_of(kind) for kind in _WORDING_KINDS)))
    return {row.kind: row.wording_id for row in rows}

"""Strava's rate budget, shared by every worker through the database.

Each API call first reserves a request in the current 15-minute and daily windows with one
conditional UPDATE; when the window is full the job is deferred to the window's end instead of
calling Strava and collecting a 429. Every response's headers then raise the stored usage to
what Strava counted (other processes of the app, rejected requests), never lower it.

Fair share: a job charges its calls to its runner too (`charged_to`), in a row of the same
table ("@" and the runner's id) counting that runner's calls in the current 15-minute window:
exact, reserved calls less refunds. Once less than half of the window is left, a runner who has
taken more than a quarter of it is deferred (FairShare, a RateLimited: pending with a due time)
while other runners within their own share have events waiting, so one runner's flood (forged
or real) cannot use up the budget every other runner's notes need. The deferred event comes
back a fifteenth of a window later (a minute), or at the next window if that is sooner: once
nobody else waits, what is left of the window is the runner's again rather than unused.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, select, update

from strava_massage.db import Database, insert_for
from strava_massage.models import Event, RateBudget, table_of
from strava_massage.strava.client import RateLimited, RateStatus, seconds_until_reset

DAY = 86400
SHORT, DAILY = "short", "daily"
SHARED = (SHORT, DAILY)
# Fair share: past this part of the 15-minute window used, one runner may take this part of it
# while other runners' events wait.
SHORT_WHEN_USED, RUNNER_SHARE = 0.5, 0.25
RECHECK_PARTS = 15  # a runner deferred for their share looks again after this part of a window

# Built once per set of buckets, with bound parameters: they run for every call to Strava.
# Each statement covers the rows of its buckets, each moving to its own window number (a
# runner's row counts in the 15-minute window).
_ROW = table_of(RateBudget)
_WINDOW = case((_ROW.c.bucket == DAILY, bindparam("daily_window")), else_=bindparam("short_window"))
_MINE = _ROW.c.bucket == bindparam("mine")
_EVENTS = table_of(Event)
# Other runners with an event waiting: due and pending, or being processed (a sample).
WAITING_SAMPLE = 64
_OTHERS_WAITING = (
    select(_EVENTS.c.owner_id)
    .where(
        _EVENTS.c.owner_id != bindparam("athlete"),
        (_EVENTS.c.status == "processing")
        | ((_EVENTS.c.status == "pending") & (_EVENTS.c.due_at <= bindparam("now"))),
    )
    .distinct()
    .limit(WAITING_SAMPLE)
)
_CHARGED: ContextVar[int | None] = ContextVar("charged_to", default=None)


class FairShare(RateLimited):
    """This runner has had their share of a short window while other runners' events wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after, "fair share of the rate budget used")


@contextmanager
def charged_to(athlete_id: int) -> Iterator[None]:
    """Charge the Strava calls made inside (in this thread) to one runner's fair share."""
    token = _CHARGED.set(athlete_id)
    try:
        yield
    finally:
        _CHARGED.reset(token)


def runner_bucket(athlete_id: int) -> str:
    """The rate_budget row counting one runner's calls (the bucket column holds 8 characters).

    "@" and the id in base 36: exact for every id below 36**7 (78 billion).
    """
    digits, n = "", athlete_id % 36**7
    while True:
        n, rest = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if not n:
            return "@" + digits


def _split(buckets: Buckets) -> tuple[Buckets, bool]:
    """The shared buckets among `buckets`, and whether a runner's row is among them too."""
    shared = tuple(bucket for bucket in buckets if bucket in SHARED)
    return shared, len(shared) < len(buckets)


def _which(shared: Buckets, charged: bool, fits: Any = None) -> Any:
    """The rows of the shared buckets (those that `fits`, if given), and with `charged` the
    runner's row `mine` (never refused here: its share is judged after)."""
    parts = []
    if shared:
        rows = _ROW.c.bucket.in_(shared)
        parts.append(rows & fits if fits is not None else rows)
    if charged:
        parts.append(_MINE)
    return parts[0] if len(parts) == 1 else parts[0] | parts[1]


_FRESH = _ROW.c.window_index < _WINDOW  # the row still counts an old window
_TAKEN = (_ROW.c.bucket, _ROW.c.used, _ROW.c.allowed)
Buckets = tuple[str, ...]


def _in_window(buckets: Buckets) -> tuple[Any, Any]:
    """The buckets' rows, unless one already counts a later window."""
    return _ROW.c.bucket.in_(buckets), _ROW.c.window_index <= _WINDOW


def _reserve(buckets: Buckets) -> Any:
    """Take `calls` from each row whose total stays within `ceiling` tenths of its limit."""
    return _reserve_in(*_split(buckets))


@cache
def _reserve_in(shared: Buckets, charged: bool) -> Any:
    """`_reserve` for the shared buckets, and the runner's row `mine` if `charged`."""
    fits = (case((_FRESH, 0), else_=_ROW.c.used) + bindparam("calls")) * 10 <= _ROW.c.allowed * (
        bindparam("ceiling")
    )
    return (
        update(_ROW)
        .where(_which(shared, charged, fits), _ROW.c.window_index <= _WINDOW)
        .values(
            window_index=_WINDOW,
            used=case((_FRESH, bindparam("calls")), else_=_ROW.c.used + bindparam("calls")),
        )
        .returning(*_TAKEN)
    )


@cache
def _observe(buckets: Buckets) -> Any:
    """Raise the usage to what Strava counted (never lower it), and take Strava's limit."""
    return (
        update(_ROW)
        .where(*_in_window(buckets))
        .values(
            window_index=_WINDOW,
            allowed=bindparam("limit"),
            used=case(
                (_FRESH | (_ROW.c.used < bindparam("usage")), bindparam("usage")),
                else_=_ROW.c.used,
            ),
        )
        .returning(*_TAKEN)
    )


def _refund(buckets: Buckets) -> Any:
    """Give `calls` back to each row, in the window it was taken from."""
    return _refund_in(*_split(buckets))


@cache
def _refund_in(shared: Buckets, charged: bool) -> Any:
    """`_refund` for the shared buckets, and the runner's row `mine` if `charged`."""
    return (
        update(_ROW)
        .where(
            _which(shared, charged),
            _ROW.c.window_index == _WINDOW,
            _ROW.c.used >= bindparam("calls"),
        )
        .values(used=_ROW.c.used - bindparam("calls"))
    )


class Budget:
    """Reserve requests before calling Strava; learn the real usage from its answers."""

    def __init__(
        self,
        db: Database,
        window_seconds: int = 900,
        limits: tuple[int, int] = (100, 1000),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.window_seconds = window_seconds
        self.limits = {SHORT: limits[0], DAILY: limits[1]}  # until Strava's headers say otherwise
        self.clock = clock
        # This process's last sight of each row: (window, used, allowed). It only saves writes:
        # the row itself stays the truth every reservation checks.
        self._known: dict[str, tuple[int, int, int]] = {}

    def _windows(self, now: float) -> dict[str, int]:
        """The numbers of the short and daily windows `now` falls in."""
        return {SHORT: int(now // self.window_seconds), DAILY: int(now // DAY)}

    def reserve(self, calls: int = 1, *, spare: bool = False) -> None:
        """Take `calls` requests from both windows at once, or none and raise RateLimited.

        A job reserves its GET and the PUT that usually follows together, so a run it fetched
        is never left without the request that writes its note. With `spare`, the last tenth
        of each window stays free: likely non-runs wait so that runs still get their notes.
        Inside `charged_to`, the calls count toward that runner's fair share too, and
        FairShare (a RateLimited) defers a runner over their share (see the module's doc).
        """
        ceiling = 9 if spare else 10  # tenths of the limit this reservation may reach
        now = self.clock()
        windows = self._windows(now)
        athlete = _CHARGED.get()
        mine = runner_bucket(athlete) if athlete is not None else None
        buckets = SHARED + ((mine,) if mine else ())
        # One transaction: a refused reservation (an exception) is rolled back whole.
        with self.db.engine.begin() as conn:
            params = {"calls": calls, "ceiling": ceiling, "mine": mine}
            taken = self._update(conn, _reserve, windows, buckets, params)
            full = [bucket for bucket in SHARED if bucket not in taken]
            if full:
                daily = full[-1] == DAILY  # the later reset, when both are full
                raise RateLimited(seconds_until_reset(now, self.window_seconds, daily=daily))
            if mine and _over_share(taken[SHORT], taken[mine][0]):
                assert athlete is not None
                if _others_within_share(conn, athlete, now, windows[SHORT], taken[SHORT][1]):
                    reset = seconds_until_reset(now, self.window_seconds, daily=False)
                    raise FairShare(min(reset, max(self.window_seconds / RECHECK_PARTS, 1.0)))
        for bucket in SHARED:
            self._known[bucket] = (windows[bucket], *taken[bucket])

    def _update(
        self,
        conn: Connection,
        statement: Callable[[Buckets], Any],
        windows: dict[str, int],
        buckets: Buckets,
        params: dict[str, Any],
    ) -> dict[str, tuple[int, int]]:
        """One UPDATE of the buckets' rows, each moved to its window; {bucket: (used, allowed)}
        for the rows it changed.

        Moving to a new window and counting in it is a single statement. A row is created on
        first use, and the statement run again for it.
        """
        changed: dict[str, tuple[int, int]] = {}
        todo = list(buckets)
        params = {**_window_params(windows), **params}
        for _ in range(2):
            rows = conn.execute(statement(tuple(todo)), params)
            changed.update((row.bucket, (row.used, row.allowed)) for row in rows)
            todo = [bucket for bucket in todo if bucket not in changed]
            if not todo or not self._create(conn, windows, todo):
                break
        return changed

    def _create(self, conn: Connection, windows: dict[str, int], buckets: list[str]) -> bool:
        """Create the rows of buckets never used yet; whether any was missing."""
        found = select(_ROW.c.bucket).where(_ROW.c.bucket.in_(tuple(buckets)))
        missing = set(buckets) - {row.bucket for row in conn.execute(found)}
        for bucket in missing:
            window = windows.get(bucket, windows[SHORT])  # a runner's row counts 15 minutes
            row = {"bucket": bucket, "window_index": window, "used": 0}
            conn.execute(
                insert_for(conn.dialect.name, _ROW)
                .values(**row, allowed=self.limits.get(bucket, 0))
                .on_conflict_do_nothing(index_elements=["bucket"])  # another worker's first
            )
        return bool(missing)

    def refund(self, calls: int = 1) -> None:
        """Give back requests reserved but not made (the PUT a non-run never needed)."""
        windows = self._windows(self.clock())
        athlete = _CHARGED.get()
        mine = runner_bucket(athlete) if athlete is not None else None
        with self.db.engine.begin() as conn:
            _give_back(conn, windows, SHARED + ((mine,) if mine else ()), calls, mine)

    def forget_old_windows(self) -> None:
        """Delete the runners' rows of past 15-minute windows (the sweep calls this)."""
        window = self._windows(self.clock())[SHORT]
        with self.db.session() as session:
            session.execute(
                delete(RateBudget).where(
                    RateBudget.bucket.not_in(SHARED), RateBudget.window_index < window
                )
            )
            session.commit()

    def runner_calls(self, athlete_id: int) -> int:
        """Calls charged to one runner in the current 15-minute window (tests, operators)."""
        window = self._windows(self.clock())[SHORT]
        with self.db.session() as session:
            row = session.get(RateBudget, runner_bucket(athlete_id))
            return row.used if row is not None and row.window_index == window else 0

    def observe(self, status: RateStatus) -> None:
        """Raise the stored usage to what Strava reports, and take its limits."""
        windows = self._windows(status.seen_at)
        news = {}
        for index, bucket in enumerate((SHORT, DAILY)):
            limit, usage = _binding(status, index)
            window, used, allowed = self._known.get(bucket, (-1, 0, 0))
            # Usually the reservation already counted this call: then there is nothing to write.
            if (window, allowed) != (windows[bucket], limit) or usage > used:
                news[bucket] = (limit, usage)
        if not news:
            return
        with self.db.engine.begin() as conn:
            for bucket, (limit, usage) in news.items():
                params = {"limit": limit, "usage": usage}
                known = self._update(conn, _observe, windows, (bucket,), params)
                if bucket in known:
                    self._known[bucket] = (windows[bucket], *known[bucket])

    def remaining(self) -> dict[str, int]:
        """Requests left in the current short and daily windows (for /metrics)."""
        windows = self._windows(self.clock())
        with self.db.session() as session:
            found = select(RateBudget).where(RateBudget.bucket.in_(SHARED))
            rows = {r.bucket: r for r in session.scalars(found)}
        out = {}
        for bucket, window in windows.items():
            row = rows.get(bucket)
            if row is None or row.window_index != window:
                out[bucket] = row.allowed if row is not None else self.limits[bucket]
            else:
                out[bucket] = max(row.allowed - row.used, 0)
        return out


def _give_back(
    conn: Connection, windows: dict[str, int], buckets: Buckets, calls: int, mine: str | None
) -> None:
    """Return `calls` to the buckets' rows (a runner's is `mine`), in the windows they were
    taken from."""
    params = {**_window_params(windows), "calls": calls, "mine": mine}
    conn.execute(_refund(buckets), params)


def _others_within_share(
    conn: Connection, athlete: int, now: float, window: int, allowed: int
) -> bool:
    """Whether another runner has an event waiting and has not had their own share of this
    15-minute window (runners all over their share compete freely for what is left)."""
    params = {"athlete": athlete, "now": dt.datetime.fromtimestamp(now, dt.UTC)}
    owners = [row.owner_id for row in conn.execute(_OTHERS_WAITING, params)]
    if not owners:
        return False
    buckets = {runner_bucket(owner): owner for owner in owners}
    found = select(_ROW.c.bucket, _ROW.c.used).where(
        _ROW.c.bucket.in_(tuple(buckets)), _ROW.c.window_index == window
    )
    over = {row.bucket for row in conn.execute(found) if row.used > allowed * RUNNER_SHARE}
    return len(over) < len(buckets)


def _over_share(short: tuple[int, int], runner_used: int) -> bool:
    """Whether, with this reservation, the 15-minute window is short (less than half left)
    and the runner has had more than their quarter of it."""
    used, allowed = short
    return used > allowed * SHORT_WHEN_USED and runner_used > allowed * RUNNER_SHARE


def _window_params(windows: dict[str, int]) -> dict[str, int]:
    """The bound parameters that move each row to its window."""
    return {"short_window": windows[SHORT], "daily_window": windows[DAILY]}


def _binding(status: RateStatus, index: int) -> tuple[int, int]:
    """(limit, usage) of whichever limit, overall or non-upload, has fewer requests left."""
    pairs = [(status.limit[index], status.usage[index])]
    if status.read_limit and status.read_usage:
        pairs.append((status.read_limit[index], status.read_usage[index]))
    return min(pairs, key=lambda p: p[0] - p[1])

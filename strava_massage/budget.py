"""Strava's rate budget, shared by every worker through the database.

Each API call first reserves a request in the current 15-minute and daily windows with one
conditional UPDATE; when the window is full the job is deferred to the window's end instead of
calling Strava and collecting a 429. Every response's headers then raise the stored usage to
what Strava counted (other processes of the app, rejected requests), never lower it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from strava_massage.db import Database, autocommit_rows
from strava_massage.models import RateBudget, one_of, table_of
from strava_massage.strava import RateLimited, RateStatus, seconds_until_reset

DAY = 86400
SHORT, DAILY = "short", "daily"

# Built once per set of buckets, with bound parameters: they run for every call to Strava.
# Each statement covers the rows of its buckets, each moving to its own window number.
_ROW = table_of(RateBudget)
_WINDOW = case((_ROW.c.bucket == SHORT, bindparam("short_window")), else_=bindparam("daily_window"))
_FRESH = _ROW.c.window_index < _WINDOW  # the row still counts an old window
_TAKEN = (_ROW.c.bucket, _ROW.c.used, _ROW.c.allowed)
Buckets = tuple[str, ...]


def _in_window(buckets: Buckets) -> tuple[Any, Any]:
    """The buckets' rows, unless one already counts a later window."""
    return one_of(_ROW.c.bucket, buckets), _ROW.c.window_index <= _WINDOW


@cache
def _reserve(buckets: Buckets) -> Any:
    """Take `calls` from each row whose total stays within `ceiling` tenths of its limit."""
    return (
        update(_ROW)
        .where(
            *_in_window(buckets),
            (case((_FRESH, 0), else_=_ROW.c.used) + bindparam("calls")) * 10
            <= _ROW.c.allowed * bindparam("ceiling"),
        )
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


@cache
def _refund(buckets: Buckets) -> Any:
    """Give `calls` back to each row, in the window it was taken from."""
    return (
        update(_ROW)
        .where(
            one_of(_ROW.c.bucket, buckets),
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
        """
        ceiling = 9 if spare else 10  # tenths of the limit this reservation may reach
        now = self.clock()
        windows = self._windows(now)
        with self.db.write_lock, self.db.autocommit() as conn:
            params = {"calls": calls, "ceiling": ceiling}
            taken = self._update(conn, _reserve, windows, (SHORT, DAILY), params)
            full = [bucket for bucket in (SHORT, DAILY) if bucket not in taken]
            if full:
                if taken:  # the other window had room: give its share back
                    _give_back(conn, windows, tuple(taken), calls)
                daily = full[-1] == DAILY  # the later reset, when both are full
                raise RateLimited(seconds_until_reset(now, self.window_seconds, daily=daily))
        for bucket, known in taken.items():
            self._known[bucket] = (windows[bucket], *known)

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
            rows = autocommit_rows(conn, statement(tuple(todo)), params)
            changed.update((row.bucket, (row.used, row.allowed)) for row in rows)
            todo = [bucket for bucket in todo if bucket not in changed]
            if not todo or not self._create(conn, windows, todo):
                break
        return changed

    def _create(self, conn: Connection, windows: dict[str, int], buckets: list[str]) -> bool:
        """Create the rows of buckets never used yet; whether any was missing."""
        missing = set(buckets) - set(conn.scalars(select(_ROW.c.bucket)))
        for bucket in missing:
            row = {"bucket": bucket, "window_index": windows[bucket], "used": 0}
            with suppress(IntegrityError):  # another worker created it first
                conn.execute(insert(RateBudget).values(**row, allowed=self.limits[bucket]))
        return bool(missing)

    def refund(self, calls: int = 1) -> None:
        """Give back requests reserved but not made (the PUT a non-run never needed)."""
        windows = self._windows(self.clock())
        with self.db.write_lock, self.db.autocommit() as conn:
            _give_back(conn, windows, (SHORT, DAILY), calls)

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
        with self.db.write_lock, self.db.autocommit() as conn:
            for bucket, (limit, usage) in news.items():
                params = {"limit": limit, "usage": usage}
                known = self._update(conn, _observe, windows, (bucket,), params)
                if bucket in known:
                    self._known[bucket] = (windows[bucket], *known[bucket])

    def remaining(self) -> dict[str, int]:
        """Requests left in the current short and daily windows (for /metrics)."""
        windows = self._windows(self.clock())
        with self.db.session() as session:
            rows = {r.bucket: r for r in session.scalars(select(RateBudget))}
        out = {}
        for bucket, window in windows.items():
            row = rows.get(bucket)
            if row is None or row.window_index != window:
                out[bucket] = row.allowed if row is not None else self.limits[bucket]
            else:
                out[bucket] = max(row.allowed - row.used, 0)
        return out


def _give_back(conn: Connection, windows: dict[str, int], buckets: Buckets, calls: int) -> None:
    """Return `calls` to the buckets' rows, in the windows they were taken from."""
    autocommit_rows(conn, _refund(buckets), {**_window_params(windows), "calls": calls})


def _window_params(windows: dict[str, int]) -> dict[str, int]:
    """The bound parameters that move each row to its window."""
    return {"short_window": windows[SHORT], "daily_window": windows[DAILY]}


def _binding(status: RateStatus, index: int) -> tuple[int, int]:
    """(limit, usage) of whichever limit, overall or non-upload, has fewer requests left."""
    pairs = [(status.limit[index], status.usage[index])]
    if status.read_limit and status.read_usage:
        pairs.append((status.read_limit[index], status.read_usage[index]))
    return min(pairs, key=lambda p: p[0] - p[1])

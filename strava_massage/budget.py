"""Strava's rate budget, shared by every worker through the database.

Each API call first reserves a request in the current 15-minute and daily windows with one
conditional UPDATE; when the window is full the job is deferred to the window's end instead of
calling Strava and collecting a 429. Every response's headers then raise the stored usage to
what Strava counted (other processes of the app, rejected requests), never lower it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from strava_massage.db import Database
from strava_massage.models import RateBudget, table_of
from strava_massage.strava import RateLimited, RateStatus, seconds_until_reset

DAY = 86400
SHORT, DAILY = "short", "daily"

# Built once with bound parameters: they run for every call to Strava.
_ROW = table_of(RateBudget)
_FRESH = _ROW.c.window_index < bindparam("window")  # the row still counts an old window
_IN_WINDOW = (_ROW.c.bucket == bindparam("b"), _ROW.c.window_index <= bindparam("window"))
# Take `calls` if the total stays within `ceiling` tenths of the limit.
_RESERVE = (
    update(_ROW)
    .where(
        *_IN_WINDOW,
        (case((_FRESH, 0), else_=_ROW.c.used) + bindparam("calls")) * 10
        <= _ROW.c.allowed * bindparam("ceiling"),
    )
    .values(
        window_index=bindparam("window"),
        used=case((_FRESH, bindparam("calls")), else_=_ROW.c.used + bindparam("calls")),
    )
    .returning(_ROW.c.used, _ROW.c.allowed)
)
# Raise the usage to what Strava counted (never lower it), and take Strava's limit.
_OBSERVE = (
    update(_ROW)
    .where(*_IN_WINDOW)
    .values(
        window_index=bindparam("window"),
        allowed=bindparam("limit"),
        used=case(
            (_FRESH | (_ROW.c.used < bindparam("usage")), bindparam("usage")),
            else_=_ROW.c.used,
        ),
    )
    .returning(_ROW.c.used, _ROW.c.allowed)
)
_REFUND = (
    update(_ROW)
    .where(
        _ROW.c.bucket == bindparam("b"),
        _ROW.c.window_index == bindparam("window"),
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
        with self.db.write_lock, self.db.jobs.connect() as conn:
            for bucket, window in self._windows(now).items():
                taken = self._update(
                    conn, _RESERVE, bucket, window, {"calls": calls, "ceiling": ceiling}
                )
                if taken is not None:
                    self._known[bucket] = (window, *taken)
                else:
                    conn.rollback()
                    raise RateLimited(
                        seconds_until_reset(now, self.window_seconds, daily=bucket == DAILY)
                    )
            conn.commit()

    def _update(
        self, conn: Connection, statement: Any, bucket: str, window: int, params: dict[str, Any]
    ) -> tuple[int, int] | None:
        """One UPDATE of a bucket's row, moved to `window`; (used, allowed) after it, or None.

        Moving to a new window and counting in it is a single statement, since every call
        to Strava pays for these round trips. The row is created on first use.
        """
        for _ in range(2):
            row = conn.execute(statement, {"b": bucket, "window": window, **params}).first()
            if row is not None:
                return row.used, row.allowed
            if conn.scalar(select(_ROW.c.bucket).where(_ROW.c.bucket == bucket)) is not None:
                return None
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(RateBudget).values(
                            bucket=bucket, window_index=window, used=0, allowed=self.limits[bucket]
                        )
                    )
            except IntegrityError:
                pass  # another worker created it first
        return None

    def refund(self, calls: int = 1) -> None:
        """Give back requests reserved but not made (the PUT a non-run never needed)."""
        windows = self._windows(self.clock())
        with self.db.write_lock, self.db.jobs.connect() as conn:
            for bucket, window in windows.items():
                conn.execute(_REFUND, {"b": bucket, "window": window, "calls": calls})
            conn.commit()

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
        with self.db.write_lock, self.db.jobs.connect() as conn:
            for bucket, (limit, usage) in news.items():
                params = {"limit": limit, "usage": usage}
                known = self._update(conn, _OBSERVE, bucket, windows[bucket], params)
                if known is not None:
                    self._known[bucket] = (windows[bucket], *known)
            conn.commit()

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


def _binding(status: RateStatus, index: int) -> tuple[int, int]:
    """(limit, usage) of whichever limit, overall or non-upload, has fewer requests left."""
    pairs = [(status.limit[index], status.usage[index])]
    if status.read_limit and status.read_usage:
        pairs.append((status.read_limit[index], status.read_usage[index]))
    return min(pairs, key=lambda p: p[0] - p[1])

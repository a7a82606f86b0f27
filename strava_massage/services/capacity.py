"""Strava's athlete capacity: when Strava refuses a new runner, the operator is told.

An app on Strava's Standard tier connects at most 10 athletes; the 11th is refused at the
token exchange. The refusal is logged (a WARNING), counted (/metrics) and kept in the queue's
key-value store, shared by every process, so /healthz on any of them reports it until a
connection succeeds again.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)

KEY = "legwork:strava-athlete-limit"
OK = "ok"


def refused(tasks: Any, metrics: Any, athlete_hint: str = "") -> None:
    """Record that Strava refused a new runner because the app is at its athlete limit."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    log.warning(
        "Strava refused a new runner: the Strava app is at its athlete limit (the Standard "
        "tier allows 10). Ask Strava for Extended Access, or disconnect runners who left "
        "(docs/deploy.md, Strava app)%s",
        athlete_hint,
    )
    if metrics is not None:
        metrics.athlete_limit_refusals.inc()
    try:
        before = tasks.huey.get(KEY, peek=True) or {}
        tasks.huey.put(KEY, {"last": now, "count": int(before.get("count", 0)) + 1})
    except Exception as e:  # the runner's page and the log matter more than this detail
        log.warning("could not record the athlete limit for /healthz: %s", type(e).__name__)


def connected(tasks: Any) -> None:
    """A connection succeeded: Strava has room again, so forget an earlier refusal."""
    try:
        tasks.huey.get(KEY)  # reading without peek removes it
    except Exception as e:
        log.warning("could not clear the athlete limit for /healthz: %s", type(e).__name__)


def status(tasks: Any) -> str:
    """For /healthz: "ok", or since when Strava has been refusing new runners."""
    try:
        seen = tasks.huey.get(KEY, peek=True)
    except Exception as e:
        return f"unknown: {type(e).__name__}"
    if not seen:
        return OK
    return (
        f"full: Strava refused {seen.get('count', 1)} new runner(s), the last at "
        f"{seen.get('last')}: the Strava app is at its athlete limit (docs/deploy.md, Strava app)"
    )

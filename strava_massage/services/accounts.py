"""Runners joining and leaving: the internal events that import or check them, and leaving."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from strava_massage.domain.accounts import delete_athlete
from strava_massage.services.context import Services
from strava_massage.strava.client import StravaError, Unauthorized
from strava_massage.strava.tokens import NoToken, access_token

log = logging.getLogger(__name__)

BACKFILL_DAYS = 56  # eight weeks: enough for the 28-day load figures and a month's history


def internal_event(aspect: str, athlete_id: int, at: dt.datetime) -> dict[str, Any]:
    """An event of our own about a runner, received and due `at` (the caller's clock).

    "backfill" imports their recent history after they connect; "check" asks Strava whether a
    quiet runner still grants access.
    """
    stamp = int(at.timestamp())
    return {
        "dedupe_key": f"{aspect}:{athlete_id}:{stamp}",
        "object_type": "athlete",
        "object_id": athlete_id,
        "aspect_type": aspect,
        "owner_id": athlete_id,
        "updates": {},
        "event_time": stamp,
        "received_at": at,
        "due_at": at,
    }


def disconnect_athlete(svc: Services, athlete_id: int) -> bool:
    """Revoke the app at Strava, then delete the runner's data; True if Strava confirmed.

    The runner asked to leave: their data goes even when Strava cannot be reached, and a
    token that is already invalid means the app is revoked anyway.
    """
    revoked = False
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, athlete_id, margin=svc.token_margin, clock=svc.clock
        )
        svc.strava.disconnect(token)  # deauthorize or revoke, as STRAVA_DISCONNECT says
        revoked = True
    except (NoToken, Unauthorized):
        revoked = True
    except StravaError as e:
        log.warning("deauthorize failed athlete=%s: %s", athlete_id, type(e).__name__)
    delete_athlete(svc.db, athlete_id)
    return revoked

"""Access tokens on demand: refreshed before expiry, one refresh per athlete at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import update
from sqlalchemy.orm import Session

from strava_massage.db import Database
from strava_massage.domain.accounts import delete_athlete
from strava_massage.models import Token
from strava_massage.strava.client import RefreshRefused, StravaAPI, TokenGrant, Unauthorized
from strava_massage.strava.crypto import TokenBox

log = logging.getLogger(__name__)


class NoToken(Exception):
    """The athlete has no stored token (disconnected or never connected)."""


class TokenRevoked(NoToken, Unauthorized):
    """Strava refused the runner's refresh token, so the runner and their data are gone now.

    Both a NoToken (there is none any more) and an Unauthorized (Strava said so), so every
    caller's existing handling of either applies.
    """


class Stored(NamedTuple):
    """A token as a caller already read it with the runner: sealed access token and expiry."""

    access_token: bytes
    expires_at: int


def store_grant(session: Session, box: TokenBox, athlete_id: int, grant: TokenGrant) -> None:
    """Save a token pair, encrypted, replacing any earlier one."""
    row = session.get(Token, athlete_id)
    if row is None:
        row = Token(athlete_id=athlete_id, version=0)
        session.add(row)
    row.access_token = box.seal(grant.access_token)
    row.refresh_token = box.seal(grant.refresh_token)
    row.expires_at = grant.expires_at


def access_token(
    db: Database,
    strava: StravaAPI,
    box: TokenBox,
    athlete_id: int,
    *,
    margin: int = 300,
    clock: Callable[[], float] = time.time,
    stored: Stored | None = None,
) -> str:
    """A usable access token for the athlete, refreshing (and persisting the rotation) if due.

    `stored` saves the read when the caller has just loaded the token with the runner.
    """
    if stored is None:
        with db.session() as session:
            row = session.get(Token, athlete_id)
            if row is None:
                raise NoToken(athlete_id)
            stored = Stored(row.access_token, row.expires_at)
    if stored.expires_at - margin > clock():
        return box.open(stored.access_token)

    with db.session() as session:
        # The UPDATE comes first so it takes the row lock on PostgreSQL (the write lock on
        # SQLite) before the token is read: a second worker waits here, then sees the new pair.
        locked = session.execute(
            update(Token).where(Token.athlete_id == athlete_id).values(version=Token.version + 1)
        )
        if not locked.rowcount:  # type: ignore[attr-defined]
            raise NoToken(athlete_id)
        row = session.get(Token, athlete_id, populate_existing=True)
        assert row is not None
        if row.expires_at - margin > clock():
            current = box.open(row.access_token)
            session.rollback()  # another worker refreshed while we waited; release the lock
            return current
        try:
            grant = strava.refresh(box.open(row.refresh_token))
        except RefreshRefused:
            session.rollback()  # release the lock before deleting the runner
            _forget_revoked(db, athlete_id)
            raise TokenRevoked(athlete_id) from None
        # Strava has already killed the old refresh token: commit the new pair at once.
        store_grant(session, box, athlete_id, grant)
        session.commit()
        return grant.access_token


def _forget_revoked(db: Database, athlete_id: int) -> None:
    """Delete a runner whose refresh token Strava refused, as for a confirmed deauthorization."""
    delete_athlete(db, athlete_id)
    log.warning(
        "Strava refused the refresh token of athlete=%s (access revoked): "
        "disconnected and all their data deleted",
        athlete_id,
    )

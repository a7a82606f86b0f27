"""Access tokens on demand: refreshed before expiry, one refresh per athlete at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import update
from sqlalchemy.orm import Session

from strava_massage.crypto import TokenBox
from strava_massage.db import Database
from strava_massage.models import Token
from strava_massage.strava import StravaAPI, TokenGrant


class NoToken(Exception):
    """The athlete has no stored token (disconnected or never connected)."""


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
        grant = strava.refresh(box.open(row.refresh_token))
        # Strava has already killed the old refresh token: commit the new pair at once.
        store_grant(session, box, athlete_id, grant)
        session.commit()
        return grant.access_token

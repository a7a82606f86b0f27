"""A runner's data as a whole: deleting every row about them."""

from __future__ import annotations

from sqlalchemy import delete, select

from strava_massage.db import Database
from strava_massage.models import (
    Activity,
    Athlete,
    ConsentChange,
    Event,
    MassageSession,
    Note,
    Token,
)


def delete_athlete(db: Database, athlete_id: int) -> None:
    """Remove every row about a runner, in one transaction."""
    with db.session() as session:
        # The runner's row first, as a claim locks it before their events: the other order
        # could deadlock with a claim of one of them.
        session.execute(select(Athlete.id).where(Athlete.id == athlete_id).with_for_update())
        for table in (Note, Activity, Token, MassageSession, ConsentChange):
            session.execute(delete(table).where(table.athlete_id == athlete_id))
        session.execute(delete(Event).where(Event.owner_id == athlete_id))
        session.execute(delete(Athlete).where(Athlete.id == athlete_id))
        session.commit()

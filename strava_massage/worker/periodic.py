"""One run of each periodic task per interval across every worker process and host.

Every worker's huey scheduler fires the periodic tasks, so that any worker can stop without the
sweep stopping with it; the task body first takes its turn here, and only the winner works.
"""

from __future__ import annotations

from sqlalchemy import update

from strava_massage.db import Database, insert_for
from strava_massage.models import PeriodicRun


def take_turn(db: Database, name: str, now: float, interval: float) -> bool:
    """Claim this interval's run of a periodic task; True for exactly one caller per interval."""
    slot = int(now // interval)
    with db.session() as session:
        # A conditional UPDATE is atomic on both backends: of several callers in one slot,
        # one moves the row forward and the others find it already there.
        # RETURNING rather than rowcount, which some drivers report as -1 for these statements.
        won = session.execute(
            update(PeriodicRun)
            .where(PeriodicRun.name == name, PeriodicRun.slot < slot)
            .values(slot=slot)
            .returning(PeriodicRun.name)
        ).first()
        if won is None:
            # The task's first run ever: the row is created by whoever inserts it first.
            dialect = session.get_bind().dialect.name
            won = session.execute(
                insert_for(dialect, PeriodicRun)
                .values(name=name, slot=slot)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(PeriodicRun.name)
            ).first()
        session.commit()
    return won is not None

"""Advice without writing: the note a runner's next run would get."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from strava_massage.advice import TrainingState
from strava_massage.models import Activity, Athlete, Note
from strava_massage.processing import clinic_of, decide_note, runner_settings, training_state

# An id Strava never gives, for the imagined run that exists only inside a rolled-back savepoint.
IMAGINED_RUN_ID = -1
DEFAULT_RUN_M = 5000.0


def preview_next_run(
    session: Session, athlete: Athlete, day: dt.date, distance_km: float | None = None
) -> tuple[TrainingState, Note]:
    """The state and note for a run on `day`; nothing is written (a savepoint is rolled back).

    Without a distance, the run is as long as the runner's average over the last 28 days.
    """
    if distance_km is None:
        average = session.scalar(
            select(func.avg(Activity.distance_m)).where(
                Activity.athlete_id == athlete.id,
                Activity.local_date > day - dt.timedelta(days=28),
                Activity.local_date <= day,
            )
        )
        distance_m = float(average or DEFAULT_RUN_M)
    else:
        distance_m = distance_km * 1000
    savepoint = session.begin_nested()
    try:
        session.add(
            Activity(
                id=IMAGINED_RUN_ID,
                athlete_id=athlete.id,
                local_date=day,
                distance_m=distance_m,
                moving_time_s=int(distance_m * 0.33),  # about 5:30 per km
                sport_type="Run",
                workout_type=None,
            )
        )
        session.flush()
        settings = runner_settings(athlete, clinic=clinic_of(session, athlete))
        state = training_state(session, athlete, IMAGINED_RUN_ID, settings)
        note = decide_note(session, athlete, IMAGINED_RUN_ID)
    finally:
        savepoint.rollback()
    return state, note

"""Deciding a note: a run's training state, the runner's settings and clinic, the advice.

The worker, `strava-massage advise`, `preview` and the clinic's sample notes all decide here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from strava_massage.advice import (
    DEFAULTS,
    MONTHLY_CHECKIN,
    AdviceSettings,
    Niggle,
    PastNote,
    PastRun,
    TrainingState,
    advise,
)
from strava_massage.advice.settings import with_overrides
from strava_massage.domain import ledger
from strava_massage.domain.ledger import Executor
from strava_massage.domain.notes import Wording, render_note
from strava_massage.models import Activity, Athlete, Clinic, Note, table_of

_CLINICS = table_of(Clinic)
_ACTIVITIES = table_of(Activity)

# A runner's clinic as their notes and pages show it: everything but the logo's bytes.
_CLINIC_OF = select(*(c for c in _CLINICS.columns if c.key != "logo")).where(
    _CLINICS.c.id == bindparam("clinic_id")
)


_RUN = select(_ACTIVITIES).where(_ACTIVITIES.c.id == bindparam("activity_id"))


def runner_settings(
    athlete: Athlete, base: AdviceSettings = DEFAULTS, clinic: Clinic | None = None
) -> AdviceSettings:
    """The defaults, then the clinic's thresholds, then the runner's own overrides."""
    overrides = {**((clinic.advice_overrides or {}) if clinic else {})}
    overrides.update(athlete.advice_overrides or {})
    return with_overrides(base, overrides)


def clinic_of(session: Executor, athlete: Athlete) -> Clinic | None:
    """The runner's clinic (detached, without the logo's bytes), or None; no query if none."""
    if athlete.clinic_id is None:
        return None
    row = session.execute(_CLINIC_OF, {"clinic_id": athlete.clinic_id}).first()
    return Clinic(**row._mapping) if row is not None else None


def wording_of(clinic: Clinic | None) -> Wording | None:
    """A clinic's name, link and templates for the note renderer."""
    if clinic is None:
        return None
    return Wording(clinic.name, clinic.booking_url, dict(clinic.note_templates or {}))


def decide_note(
    session: Executor,
    athlete: Athlete,
    activity_id: int,
    base: AdviceSettings = DEFAULTS,
    *,
    run: Activity | None = None,
) -> Note:
    """Advice and note text for a run already in the ledger, as an unsaved Note row.

    The worker, `strava-massage advise` and `strava-massage preview` all decide through here;
    a clinic's runner gets the clinic's thresholds, wording and booking link. `run` is the
    run's ledger row when the caller has just written it.
    """
    clinic = clinic_of(session, athlete)
    settings = runner_settings(athlete, base, clinic)
    state = training_state(session, athlete, activity_id, settings, run=run)
    if clinic is not None:  # a session note names the clinic to ask about a sore area
        state = dataclasses.replace(state, clinic=clinic.name)
    advice = advise(state, settings)
    return Note(
        activity_id=state.activity_id,
        athlete_id=athlete.id,
        local_date=state.local_date,
        kind=advice.kind,
        is_session=advice.is_session,
        tip_id=advice.tip_id,
        wording_id=advice.wording_id,
        reason=advice.reason,
        fact_ids=",".join(advice.fact_ids),
        text=render_note(advice, disclaimer=athlete.disclaimer, wording=wording_of(clinic)),
        target=athlete.note_target,
        status="decided",
    )


def training_state(
    session: Executor,
    athlete: Athlete,
    activity_id: int,
    settings: AdviceSettings = DEFAULTS,
    *,
    run: Activity | None = None,
) -> TrainingState:
    """Everything the advice rules look at for one counted run, derived from the ledger.

    `run` is the run's ledger row when the caller has it; it is read otherwise.
    """
    row: Any = (
        run if run is not None else session.execute(_RUN, {"activity_id": activity_id}).first()
    )
    assert row is not None, "the run is in the ledger before advice is asked for"
    history, notes, runs, wordings = _state_queries(athlete, row, settings)
    return _state_of(
        row,
        athlete,
        ledger.history_of(session.execute(*history).one()),
        list(session.execute(*notes)),
        list(session.execute(*runs)),
        list(session.execute(*wordings)),
    )


def _state_queries(
    athlete: Athlete, run: Any, settings: AdviceSettings
) -> tuple[ledger.Query, ledger.Query, ledger.Query, ledger.Query]:
    """The ledger's reads behind a run's training state: its history (totals, first run, last
    check-in), the runner's recent notes, their runs of the weeks before it, and the wording
    each rule used last."""
    day = run.local_date
    first = day - dt.timedelta(days=settings.history_days())
    return (
        ledger.history_query(athlete, day, MONTHLY_CHECKIN, run.id),
        ledger.recent_notes_query(athlete.id, run.id, settings.notes_looked_back),
        ledger.runs_between_query(athlete.id, first, day, run.id),
        ledger.last_wordings_query(athlete.id, day, run.id),
    )


def _state_of(
    row: Any,
    athlete: Athlete,
    past: ledger.History,
    notes: Sequence[ledger.PastNoteRow],
    runs: Sequence[Any],
    wordings: Sequence[Any],
) -> TrainingState:
    """The training state of a run from what the ledger answered about it."""
    day = row.local_date
    t, last = past.totals, past.totals.last_massage
    anchor = ledger.massage_anchor(athlete, last)
    niggle = None
    if athlete.niggle_area and athlete.niggle_on:
        niggle = Niggle(athlete.niggle_area, athlete.niggle_on)
    return TrainingState(
        activity_id=row.id,
        local_date=day,
        distance_m=row.distance_m,
        moving_time_s=row.moving_time_s,
        workout_type=row.workout_type,
        units=athlete.effective_units,
        week_m=t.week_m,
        month_m=t.month_m,
        year_m=t.year_m,
        rolling7_m=t.rolling7_m,
        rolling28_m=t.rolling28_m,
        past_runs=tuple(PastRun(r.local_date, r.distance_m, r.workout_type) for r in runs),
        history_days=(day - (past.first_run or day)).days,
        since_massage_m=t.since_massage_m,
        since_massage_days=(day - anchor).days,
        last_massage_date=last,
        next_race_date=athlete.next_race_on,
        race_distance_m=athlete.next_race_distance_m,
        recent_notes=tuple(
            PastNote(n.local_date, n.kind, n.tip_id, n.is_session, wording_id=n.wording_id)
            for n in notes
        ),
        last_checkin_date=past.last_note_of_kind,
        last_wordings={w.kind: w.wording_id for w in wordings},
        niggle=niggle,
    )


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

"""The worker's job: turn one stored webhook event into ledger rows and, for a run, a note.

Plain functions over their collaborators (database, Strava adapter, token box, clock), so they
run the same under huey, in a test, or from the command line. Every step is safe to repeat.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased

from strava_massage import ledger
from strava_massage.advice import (
    DEFAULTS,
    MONTHLY_CHECKIN,
    AdviceSettings,
    PastNote,
    TrainingState,
    advise,
)
from strava_massage.crypto import TokenBox
from strava_massage.db import Database
from strava_massage.logfmt import life_line
from strava_massage.merge import make_block, merge_note
from strava_massage.models import (
    Activity,
    Athlete,
    Event,
    MassageSession,
    Note,
    OAuthState,
    Token,
    utcnow,
)
from strava_massage.notes import render_note
from strava_massage.strava import (
    RUN_TYPES,
    ActivityInfo,
    NotFound,
    RateLimited,
    Rejected,
    StravaAPI,
    StravaError,
    TemporaryFailure,
    Unauthorized,
)
from strava_massage.tokens import NoToken, access_token

log = logging.getLogger(__name__)

RETRY_MAX_SECONDS = 600.0


@dataclass
class Services:
    """What a job needs, passed in rather than looked up, so tests can build their own."""

    db: Database
    strava: StravaAPI
    box: TokenBox
    enqueue: Callable[[int, float], None]  # (event id, delay in seconds)
    advice: AdviceSettings = DEFAULTS
    token_margin: int = 300
    lease_seconds: int = 60
    max_attempts: int = 6
    retry_base_seconds: float = 5.0  # first retry's wait; doubled for each further attempt
    on_outcome: Callable[[str], None] = field(default=lambda outcome: None)  # for /metrics
    clock: Callable[[], float] = field(default=time.time)

    def now(self) -> dt.datetime:
        """The clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)


class Done(Exception):
    """Ends an event cleanly, with a short outcome, without retrying."""

    def __init__(self, outcome: str, status: str = "done") -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.status = status


class ClaimLost(Exception):
    """This worker's lease ran out and another took the event: the write is theirs now."""


class AthleteBusy(Exception):
    """Another worker holds an event of the same runner; this one waits its turn."""


def claim(svc: Services, event_id: int) -> Event | None:
    """Take the event for this worker until its lease ends; None if done or held elsewhere.

    One runner's events go one at a time: the claim fails with AthleteBusy while another of
    their events is claimed and its lease is running. The lease is the lock, so a crashed
    holder frees the runner when it ends.
    """
    now = svc.now()
    with svc.db.write_lock, svc.db.session() as session:
        owner = session.scalar(select(Event.owner_id).where(Event.id == event_id))
        if owner is None:
            return None
        if session.get_bind().dialect.name == "postgresql":
            # Serialise claims for this runner until commit: two claims for different events
            # would otherwise both see no other claim under READ COMMITTED.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": owner})
        other = aliased(Event)
        held = (
            select(other.id)
            .where(
                other.owner_id == owner,
                other.id != event_id,
                other.status == "processing",
                other.due_at > now,
            )
            .exists()
        )
        result = session.execute(
            update(Event)
            .where(
                Event.id == event_id,
                Event.status.in_(("pending", "processing")),
                Event.due_at <= now,
                ~held,
            )
            .values(
                status="processing",
                attempts=Event.attempts + 1,
                due_at=now + dt.timedelta(seconds=svc.lease_seconds),
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            busy = session.scalar(select(held)) and session.scalar(
                select(Event.id).where(
                    Event.id == event_id,
                    Event.status.in_(("pending", "processing")),
                    Event.due_at <= now,
                )
            )
            session.rollback()
            if busy:
                raise AthleteBusy(owner)
            return None
        session.commit()
        return session.get(Event, event_id)


def _finish(svc: Services, event_id: int, status: str, outcome: str, due_in: float = 0) -> None:
    """Record how the event ended, or when it is due again."""
    values: dict[str, object] = {"status": status, "outcome": outcome[:200]}
    if status == "pending":
        values["due_at"] = svc.now() + dt.timedelta(seconds=due_in)
    else:
        values["finished_at"] = svc.now()
    with svc.db.session() as session:
        session.execute(update(Event).where(Event.id == event_id).values(**values))
        session.commit()


def process_event(svc: Services, event_id: int) -> str:
    """Process one event end to end; returns its outcome. Safe to call any number of times.

    Then take the runner's other due events, one by one: claims that found the runner busy
    left theirs to the holder rather than polling for their turn.
    """
    try:
        event = claim(svc, event_id)
    except AthleteBusy:
        return "waiting: another event of this runner is in progress"
    if event is None:
        return "not claimable (finished, deferred or held by another worker)"
    outcome = _process_claimed(svc, event)
    while (next_id := _next_due(svc, event.owner_id)) is not None:
        try:
            following = claim(svc, next_id)
        except AthleteBusy:
            break  # another worker has the runner now, and drains in turn
        if following is None:
            break
        _process_claimed(svc, following)
    return outcome


def _next_due(svc: Services, owner_id: int) -> int | None:
    """The runner's oldest claimable event: waiting and due, or left by a dead worker."""
    with svc.db.session() as session:
        return session.scalar(
            select(func.min(Event.id)).where(
                Event.owner_id == owner_id,
                Event.status.in_(("pending", "processing")),
                Event.due_at <= svc.now(),
            )
        )


def _process_claimed(svc: Services, event: Event) -> str:
    """Handle a claimed event, record how it ended, and log one structured line."""
    outcome = _run_claimed(svc, event)
    svc.on_outcome(outcome)
    return outcome


def _run_claimed(svc: Services, event: Event) -> str:
    """Handle a claimed event and store how it ended; returns the outcome."""
    where = {"object": f"{event.object_type}:{event.object_id}", "attempt": event.attempts}

    def line(stage: str, **fields: object) -> str:
        return life_line(stage, event.id, event.owner_id, **where, **fields)

    try:
        outcome = _handle(svc, event)
    except Done as done:
        _finish(svc, event.id, done.status, done.outcome)
        log.info(line("processed", status=done.status, outcome=done.outcome))
        return done.outcome
    except ClaimLost:
        svc.strava.refund()  # the PUT reserved with the GET is the other worker's to make
        log.warning(line("abandoned", reason="lease ran out; another worker has it"))
        return "claim lost"
    except RateLimited as e:
        # Not a failure: the budget is spent. Come back when the window resets.
        _finish(svc, event.id, "pending", "deferred: rate limit", e.retry_after)
        svc.enqueue(event.id, e.retry_after)
        log.info(line("deferred", wait=f"{e.retry_after:.0f}s", reason="rate limit"))
        return "deferred"
    except (Unauthorized, NotFound) as e:
        # Between our GET and PUT the runner revoked access or deleted the run: nothing to do.
        outcome = f"Strava answered {type(e).__name__} while writing; left alone"
        _finish(svc, event.id, "skipped", outcome)
        log.info(line("processed", status="skipped", outcome=outcome))
        return outcome
    except Exception as e:
        transient = isinstance(e, TemporaryFailure | OperationalError)  # Strava or database hiccup
        if transient and event.attempts < svc.max_attempts:
            return _retry(svc, event, line, e)
        # A dead letter, visible in `strava-massage events --failed`, never a silent loop.
        _finish(svc, event.id, "failed", f"{type(e).__name__}: {e}")
        if isinstance(e, StravaError):
            log.warning(line("failed", reason=e))
        else:
            log.exception(line("failed", reason=f"{type(e).__name__} (a bug)"))
        return "failed"
    _finish(svc, event.id, "done", outcome)
    log.info(line("processed", status="done", outcome=outcome))
    return outcome


def _retry(svc: Services, event: Event, line: Callable[..., str], e: Exception) -> str:
    """Hand a temporary failure back to the queue with exponential backoff and jitter."""
    delay = min(svc.retry_base_seconds * 2 ** (event.attempts - 1), RETRY_MAX_SECONDS)
    delay *= random.uniform(0.8, 1.2)  # jitter, so a burst of failures spreads out
    _finish(svc, event.id, "pending", f"retrying: {e}", delay)
    svc.enqueue(event.id, delay)
    log.info(line("retrying", wait=f"{delay:.1f}s", reason=e))
    return "retrying"


def _handle(svc: Services, event: Event) -> str:
    """Dispatch on the event's kind."""
    if event.aspect_type == "backfill":
        return _backfill(svc, event)
    if event.object_type == "athlete":
        if str(event.updates.get("authorized", "")).lower() == "false":
            delete_athlete(svc.db, event.owner_id)  # this event included
            raise Done("athlete deauthorized: all their data deleted")
        raise Done("athlete update ignored", "skipped")
    if event.aspect_type == "delete":
        with svc.db.session() as session:
            removed = ledger.remove_activity(session, event.object_id)
            session.execute(delete(Note).where(Note.activity_id == event.object_id))
            session.commit()
        return "activity deleted: removed from ledger" if removed else "activity deleted"
    return _handle_activity(svc, event)


def _handle_activity(svc: Services, event: Event) -> str:
    """Create or update: fetch, count if it is a run, and make sure it carries its note."""
    with svc.db.session() as session:
        athlete = session.get(Athlete, event.owner_id)
    if athlete is None:
        # Stored in the instant the runner left: keep nothing about them, not even this.
        with svc.db.session() as session:
            session.execute(delete(Event).where(Event.id == event.id))
            session.commit()
        raise Done("unknown athlete", "skipped")  # costs no Strava call
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, athlete.id, margin=svc.token_margin, clock=svc.clock
        )
        info = svc.strava.get_activity(
            token, event.object_id, low_priority=_likely_not_a_run(svc, event)
        )
    except NoToken:
        raise Done("athlete has no token", "skipped") from None
    except Unauthorized:
        raise Done("Strava refused the athlete's token (access revoked?)", "skipped") from None
    except NotFound:
        with svc.db.session() as session:
            ledger.remove_activity(session, event.object_id)
            session.commit()
        raise Done("activity not found on Strava", "skipped") from None
    if info.athlete_id != athlete.id:
        raise Done("activity belongs to another athlete", "skipped")

    with svc.db.session() as session:
        if not info.is_run:
            removed = ledger.remove_activity(session, info.id)
            session.commit()
            svc.strava.refund()
            raise Done(f"not a run ({info.sport_type})" + ("; left the ledger" if removed else ""))
        ledger.upsert_run(session, info)
        _follow_timezone(session, athlete, info.timezone)
        note = session.scalar(select(Note).where(Note.activity_id == info.id))
        session.commit()

    if note is not None and note.status == "written" and event.aspect_type == "update":
        svc.strava.refund()
        return "ledger updated; note already written"
    if note is None:
        if not athlete.notes_enabled:
            svc.strava.refund()
            return "counted; notes paused"
        note = _decide_note(svc, athlete, info)
    _keep_claim(svc, event)
    return _write_note(svc, token, info, note)


def _keep_claim(svc: Services, event: Event) -> None:
    """Renew the lease right before writing to Strava; ClaimLost if the event is not ours.

    A job slower than its lease may have been handed out again: without this fence both
    workers would PUT. The claim bumped `attempts`, so a newer claim no longer matches.
    """
    with svc.db.session() as session:
        kept = session.execute(
            update(Event)
            .where(
                Event.id == event.id,
                Event.status == "processing",
                Event.attempts == event.attempts,
            )
            .values(due_at=svc.now() + dt.timedelta(seconds=svc.lease_seconds))
        )
        session.commit()
    if not kept.rowcount:  # type: ignore[attr-defined]
        raise ClaimLost(event.id)


def _decide_note(svc: Services, athlete: Athlete, info: ActivityInfo) -> Note:
    """Run the advice rules and store the note before writing it, so a retry reuses it."""
    with svc.db.session() as session:
        note = decide_note(session, athlete, info.id, svc.advice)
        session.add(note)
        try:
            session.commit()
        except IntegrityError:
            # Another worker decided this activity's note first: use theirs, never a second.
            session.rollback()
            existing = session.scalar(select(Note).where(Note.activity_id == info.id))
            assert existing is not None
            return existing
        return note


def _follow_timezone(session: Session, athlete: Athlete, strava_zone: str | None) -> None:
    """Keep the runner's time zone (for "this week" on their pages) as their latest run's."""
    # Strava writes "(GMT+01:00) Europe/Paris"; the IANA name is the last word.
    zone = strava_zone.rsplit(" ", 1)[-1] if strava_zone else None
    if zone and zone != athlete.timezone:
        session.execute(update(Athlete).where(Athlete.id == athlete.id).values(timezone=zone))


def runner_settings(athlete: Athlete, base: AdviceSettings = DEFAULTS) -> AdviceSettings:
    """The defaults with the runner's own overrides applied (a clinic's come in between)."""
    overrides = athlete.advice_overrides or {}
    return dataclasses.replace(base, **overrides) if overrides else base


def decide_note(
    session: Session, athlete: Athlete, activity_id: int, base: AdviceSettings = DEFAULTS
) -> Note:
    """Advice and note text for a run already in the ledger, as an unsaved Note row.

    The worker, `strava-massage advise` and `strava-massage preview` all decide through here.
    """
    settings = runner_settings(athlete, base)
    state = training_state(session, athlete, activity_id, settings)
    advice = advise(state, settings)
    return Note(
        activity_id=activity_id,
        athlete_id=athlete.id,
        local_date=state.local_date,
        kind=advice.kind,
        is_session=advice.is_session,
        tip_id=advice.tip_id,
        reason=advice.reason,
        fact_ids=",".join(advice.fact_ids),
        text=render_note(advice, disclaimer=athlete.disclaimer),
        target=athlete.note_target,
        status="decided",
    )


def _likely_not_a_run(svc: Services, event: Event) -> bool:
    """An update to an activity outside the ledger, or one turning it into another sport.

    A create's sport is unknown until the GET, so every create counts as a run.
    """
    if event.aspect_type != "update":
        return False
    new_type = event.updates.get("type") or event.updates.get("sport_type")
    if new_type:
        return str(new_type) not in RUN_TYPES
    with svc.db.session() as session:
        return session.get(Activity, event.object_id) is None


def _write_note(svc: Services, token: str, info: ActivityInfo, note: Note) -> str:
    """Merge the note's block into its target field; PUT only if that changes it.

    The GET reserved one PUT in the rate budget: it is used here, or given back.
    """
    prepaid = True
    if note.target == "private_note":
        current = info.private_note or ""
        text = merge_note(current, note.text, make_block(note.text))
        try:
            if text == current:
                svc.strava.refund()
            else:
                svc.strava.update_private_note(token, info.id, text, prepaid=True)
            return _mark_written(svc, note, f"note in private note ({note.kind})")
        except Rejected:
            # The private note is undocumented; when Strava refuses it, the description is
            # the clean fallback, for this note and the runner's next ones.
            log.warning("private note refused athlete=%s; using the description", note.athlete_id)
            _use_description(svc, note)
            prepaid = False  # the reserved PUT went on the refusal
    description = merge_note(info.description, note.text, make_block(note.text))
    if description != info.description:
        svc.strava.update_description(token, info.id, description, prepaid=prepaid)
        return _mark_written(svc, note, f"note written ({note.kind})")
    if prepaid:
        svc.strava.refund()
    return _mark_written(svc, note, f"note already present ({note.kind})")


def _use_description(svc: Services, note: Note) -> None:
    """Switch this note and its runner from the private note to the description."""
    note.target = "description"
    with svc.db.session() as session:
        session.execute(update(Note).where(Note.id == note.id).values(target="description"))
        session.execute(
            update(Athlete).where(Athlete.id == note.athlete_id).values(note_target="description")
        )
        session.commit()


def _mark_written(svc: Services, note: Note, result: str) -> str:
    """Record that the note is on Strava; returns the outcome text."""
    with svc.db.session() as session:
        session.execute(
            update(Note)
            .where(Note.id == note.id, Note.status != "written")
            .values(status="written", written_at=utcnow())
        )
        session.commit()
    return result


BACKFILL_DAYS = 56  # eight weeks: enough for the 28-day load figures and a month's history


def backfill_event(athlete_id: int, connected_at: dt.datetime) -> dict[str, Any]:
    """The internal event that imports a runner's recent history after they connect."""
    stamp = int(connected_at.timestamp())
    return {
        "dedupe_key": f"backfill:{athlete_id}:{stamp}",
        "object_type": "athlete",
        "object_id": athlete_id,
        "aspect_type": "backfill",
        "owner_id": athlete_id,
        "updates": {},
        "event_time": stamp,
    }


def _backfill(svc: Services, event: Event) -> str:
    """Import the last eight weeks of runs into the ledger (no notes: they are history).

    One list call per 200 activities; runs are keyed by id, so a webhook for one of them
    later does not count it twice.
    """
    with svc.db.session() as session:
        athlete = session.get(Athlete, event.owner_id)
        if athlete is None:
            raise Done("athlete gone before their history was imported", "skipped")
        athlete.backfill_status = "running"
        session.commit()
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, event.owner_id, margin=svc.token_margin, clock=svc.clock
        )
    except NoToken:
        raise Done("athlete has no token", "skipped") from None
    calls_before = svc.strava.calls
    found = svc.strava.list_activities(token, svc.now() - dt.timedelta(days=BACKFILL_DAYS))
    runs = [a for a in found if a.is_run and a.athlete_id == event.owner_id]
    with svc.db.session() as session:
        for run in runs:
            ledger.upsert_run(session, run)
        session.execute(
            update(Athlete)
            .where(Athlete.id == event.owner_id)
            .values(backfill_status="done", backfill_runs=len(runs))
        )
        session.commit()
    calls = svc.strava.calls - calls_before
    return f"history imported: {len(runs)} runs of {len(found)} activities, {calls} call(s)"


def training_state(
    session: Session, athlete: Athlete, activity_id: int, settings: AdviceSettings = DEFAULTS
) -> TrainingState:
    """Everything the advice rules look at for one counted run, derived from the ledger."""
    run = session.get(Activity, activity_id)
    assert run is not None, "the run is in the ledger before advice is asked for"
    day = run.local_date
    last = ledger.last_massage(session, athlete.id, day)
    t = ledger.totals(session, athlete, day, last)
    first = ledger.first_run_date(session, athlete.id) or day
    anchor = ledger.massage_anchor(athlete, last)
    notes = ledger.recent_notes(session, athlete.id, activity_id, settings.no_repeat_notes)
    return TrainingState(
        activity_id=run.id,
        local_date=day,
        distance_m=run.distance_m,
        moving_time_s=run.moving_time_s,
        workout_type=run.workout_type,
        units=athlete.effective_units,
        week_m=t.week_m,
        month_m=t.month_m,
        year_m=t.year_m,
        rolling7_m=t.rolling7_m,
        rolling28_m=t.rolling28_m,
        recent_runs_m=tuple(
            ledger.runs_between(session, athlete.id, day - dt.timedelta(days=28), day, run.id)
        ),
        history_days=(day - first).days,
        since_massage_m=t.since_massage_m,
        since_massage_days=(day - anchor).days,
        last_massage_date=last,
        next_race_date=athlete.next_race_on,
        recent_notes=tuple(PastNote(n.local_date, n.kind, n.tip_id, n.is_session) for n in notes),
        last_checkin_date=ledger.last_note_date(session, athlete.id, MONTHLY_CHECKIN, day, run.id),
    )


def reopen_events(svc: Services, ids: list[int] | None) -> list[int]:
    """Make finished events (by id, or every failed one for None) pending again; returns ids.

    Processing is idempotent, so replaying an event that did succeed costs a GET and no PUT.
    """
    with svc.db.write_lock, svc.db.session() as session:
        query = select(Event.id).where(Event.status.not_in(("pending", "processing")))
        query = (
            query.where(Event.id.in_(ids))
            if ids is not None
            else query.where(Event.status == "failed")
        )
        found = list(session.scalars(query.order_by(Event.id)))
        if found:
            session.execute(
                update(Event)
                .where(Event.id.in_(found))
                .values(status="pending", attempts=0, due_at=svc.now(), outcome="replay requested")
            )
        session.commit()
    for event_id in found:
        svc.enqueue(event_id, 0)
    return found


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
        svc.strava.deauthorize(token)
        revoked = True
    except (NoToken, Unauthorized):
        revoked = True
    except StravaError as e:
        log.warning("deauthorize failed athlete=%s: %s", athlete_id, type(e).__name__)
    delete_athlete(svc.db, athlete_id)
    return revoked


def delete_athlete(db: Database, athlete_id: int) -> None:
    """Remove every row about a runner, in one transaction."""
    with db.session() as session:
        for table in (Note, Activity, Token, MassageSession):
            session.execute(delete(table).where(table.athlete_id == athlete_id))
        session.execute(delete(Event).where(Event.owner_id == athlete_id))
        session.execute(delete(Athlete).where(Athlete.id == athlete_id))
        session.commit()


def sweep(svc: Services) -> list[int]:
    """Hand out again events a dead worker held past their lease, or that sat pending too long.

    A pending event's task is normally still in the queue, so it gets a lease's grace before
    it counts as lost; enqueueing one twice is harmless, since only one claim succeeds.
    """
    now = svc.now()
    grace = now - dt.timedelta(seconds=svc.lease_seconds)
    with svc.db.session() as session:
        ids = list(
            session.scalars(
                select(Event.id)
                .where(
                    ((Event.status == "processing") & (Event.due_at <= now))
                    | ((Event.status == "pending") & (Event.due_at <= grace))
                )
                .order_by(Event.id)
            )
        )
        # An OAuth state nobody came back with in ten minutes is worthless.
        session.execute(
            delete(OAuthState).where(OAuthState.created_at < now - dt.timedelta(minutes=10))
        )
        session.commit()
    for event_id in ids:
        svc.enqueue(event_id, 0)
    if ids:
        log.info("sweep re-enqueued %d event(s)", len(ids))
    return ids


__all__ = ["Done", "Services", "delete_athlete", "process_event", "sweep", "training_state"]

"""The worker's job: turn one stored webhook event into ledger rows and, for a run, a note.

Plain functions over their collaborators (database, Strava adapter, token box, clock), so they
run the same under huey, in a test, or from the command line. Every step is safe to repeat.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.exc import OperationalError

from strava_massage.advice import (
    RUN_TYPES,
)
from strava_massage.db import insert_for
from strava_massage.domain import ledger
from strava_massage.domain.accounts import delete_athlete
from strava_massage.domain.activity import ActivityInfo
from strava_massage.domain.merge import make_block, merge_note
from strava_massage.logfmt import life_line
from strava_massage.models import (
    Activity,
    Athlete,
    Clinic,
    Event,
    Note,
    OAuthState,
    Token,
    aware,
    table_of,
    utcnow,
)
from strava_massage.services.accounts import BACKFILL_DAYS, internal_event
from strava_massage.services.advising import decide_note
from strava_massage.services.context import Services
from strava_massage.services.outcomes import Outcome, OutcomeKind
from strava_massage.strava.budget import FairShare, charged_to
from strava_massage.strava.client import (
    NotFound,
    RateLimited,
    Rejected,
    StravaError,
    TemporaryFailure,
    Unauthorized,
)
from strava_massage.strava.tokens import NoToken, Stored, access_token

log = logging.getLogger(__name__)

RETRY_MAX_SECONDS = 600.0


class Done(Exception):
    """Ends an event cleanly, with its outcome, without retrying."""

    def __init__(self, kind: OutcomeKind, status: str = "done", detail: str = "") -> None:
        super().__init__(kind)
        self.outcome = Outcome(kind, detail)
        self.status = status


class ClaimLost(Exception):
    """This worker's lease ran out and another took the event: the write is theirs now."""


class AthleteBusy(Exception):
    """Another worker holds an event of the same runner; this one waits its turn."""


@dataclass(frozen=True)
class Runner:
    """The runner an activity event is for, read with the claim, and their stored token."""

    athlete: Athlete  # detached: read on the claim's connection, not through a session
    stored: Stored | None


@dataclass(frozen=True)
class Claimed:
    """An event this worker holds until its lease ends; `attempts` identifies the claim."""

    id: int
    owner_id: int
    object_type: str
    object_id: int
    aspect_type: str
    updates: dict[str, Any]
    attempts: int
    # For a new or changed activity: None when the runner has gone (the event is then moot).
    runner: Runner | None = None


# The events whose claim also reads the runner (in the claim's transaction).
RUNNER_ASPECTS = ("create", "update")
_CLAIMED = ("id", "owner_id", "object_type", "object_id", "aspect_type", "updates", "attempts")


# The worker's statements, built once on the tables: they run for every event.
_EVENTS = table_of(Event)
_NOTES = table_of(Note)
_ACTIVITIES = table_of(Activity)
OPEN = ("pending", "processing")

_STATE = select(_EVENTS.c.owner_id, _EVENTS.c.status, _EVENTS.c.due_at).where(
    _EVENTS.c.id == bindparam("event_id")
)
_OTHER = _EVENTS.alias("other")


def _held(owner: Any) -> Any:
    """Whether another event of `owner` is claimed and its lease still running."""
    return (
        select(_OTHER.c.id)
        .where(
            _OTHER.c.owner_id == owner,
            _OTHER.c.id != bindparam("event_id"),
            _OTHER.c.status == "processing",
            _OTHER.c.due_at > bindparam("now"),
        )
        .exists()
    )


_HELD = select(_held(bindparam("owner")))
_CLAIM = (
    update(_EVENTS)
    .where(
        _EVENTS.c.id == bindparam("event_id"),
        _EVENTS.c.status.in_(OPEN),
        _EVENTS.c.due_at <= bindparam("now"),
        ~_held(_EVENTS.c.owner_id),
    )
    .values(status="processing", attempts=_EVENTS.c.attempts + 1, due_at=bindparam("lease_end"))
    .returning(*(_EVENTS.c[name] for name in _CLAIMED))
)
_KEEP = (
    update(_EVENTS)
    .where(
        _EVENTS.c.id == bindparam("event_id"),
        _EVENTS.c.status == "processing",
        _EVENTS.c.attempts == bindparam("claim"),
    )
    .values(due_at=bindparam("lease_end"))
)
# How an event ends: back to pending with a due time, or finished.
_ENDINGS = {
    ended: update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(status=bindparam("status"), outcome=bindparam("outcome"), **{column: bindparam("at")})
    for ended, column in ((False, "due_at"), (True, "finished_at"))
}
_NEXT_DUE = select(func.min(_EVENTS.c.id)).where(
    _EVENTS.c.owner_id == bindparam("owner"),
    _EVENTS.c.status.in_(OPEN),
    _EVENTS.c.due_at <= bindparam("now"),
)
_ATHLETES, _TOKENS, _CLINICS = table_of(Athlete), table_of(Token), table_of(Clinic)
# Claims of one runner's events take turns on the runner's row: under READ COMMITTED two claims
# of different events would otherwise both see no other claim. (SQLite has no row locks; its
# transactions take the database's write lock when they begin.)
_LOCK_RUNNER = (
    select(_ATHLETES.c.id)
    .where(_ATHLETES.c.id == bindparam("athlete_id"))
    .with_for_update(key_share=True)
)
# The runner and their token, under names that cannot clash with the claimed event's.
_RUNNER_COLUMNS = (
    *(column.label(f"runner_{column.key}") for column in _ATHLETES.columns),
    _TOKENS.c.access_token,
    _TOKENS.c.expires_at,
)
_WITH_TOKEN = _ATHLETES.outerjoin(_TOKENS, _TOKENS.c.athlete_id == _ATHLETES.c.id)
_RUNNER = (
    select(*_RUNNER_COLUMNS)
    .select_from(_WITH_TOKEN)
    .where(_ATHLETES.c.id == bindparam("athlete_id"))
)


_NOTE_OF = select(_NOTES).where(_NOTES.c.activity_id == bindparam("activity_id"))
_SET_TIMEZONE = (
    update(_ATHLETES)
    .where(_ATHLETES.c.id == bindparam("athlete_id"))
    .values(timezone=bindparam("zone"))
)
_WRITTEN = (
    update(_NOTES)
    .where(_NOTES.c.id == bindparam("note_id"), _NOTES.c.status != "written")
    .values(status="written", written_at=bindparam("now"))
)


def claim(svc: Services, event_id: int) -> Claimed | None:
    """Take the event for this worker until its lease ends; None if done or held elsewhere.

    One runner's events go one at a time: the claim fails with AthleteBusy while another of
    their events is claimed and its lease is running. The lease is the lock, so a crashed
    holder frees the runner when it ends.
    """
    now = svc.now()
    lease_end = now + dt.timedelta(seconds=svc.lease_seconds)
    with svc.db.engine.begin() as conn:
        state: Any = conn.execute(_STATE, {"event_id": event_id}).first()
        # Most tasks of a busy runner find their event finished by the runner's drain (below).
        if not _claimable(state, now):
            return None
        conn.execute(_LOCK_RUNNER, {"athlete_id": state.owner_id})
        params = {"event_id": event_id, "owner": state.owner_id, "now": now}
        row = conn.execute(_CLAIM, {**params, "lease_end": lease_end}).first()
        if row is None:
            if conn.scalar(_HELD, params):
                raise AthleteBusy(state.owner_id)
            return None
        runner = _read_runner(conn, row)
    return _claimed(row._asdict(), runner)


def _claimable(state: Any, now: dt.datetime) -> bool:
    """Whether an event's state (a row of `_STATE`, or None) lets it be claimed at `now`."""
    return state is not None and state.status in OPEN and aware(state.due_at) <= now


def _claimed(values: Any, runner: Runner | None) -> Claimed:
    """The claimed event from its row's values."""
    return Claimed(**{name: values[name] for name in _CLAIMED}, runner=runner)


def _read_runner(conn: Connection, row: Any) -> Runner | None:
    """The runner of a claimed new or changed activity, read in the claim's transaction."""
    if not (row.object_type == "activity" and row.aspect_type in RUNNER_ASPECTS):
        return None
    found = conn.execute(_RUNNER, {"athlete_id": row.owner_id}).first()
    return _runner(found._asdict()) if found is not None else None


def _runner(values: Any) -> Runner:
    """The runner and token from a row of `_RUNNER_COLUMNS`."""
    athlete = Athlete(**{c.key: values[f"runner_{c.key}"] for c in _ATHLETES.columns})
    token = values["access_token"]
    return Runner(athlete, Stored(token, values["expires_at"]) if token else None)


def _finish(
    svc: Services, event: Claimed, status: str, outcome: Outcome, due_in: float = 0, note: int = 0
) -> int | None:
    """Record how the event ended (and, if given, that its note is on Strava); returns the
    runner's next due event, read in the same transaction."""
    now = svc.now()
    ended = status != "pending"
    at = now if ended else now + dt.timedelta(seconds=due_in)
    ending = {"event_id": event.id, "status": status, "outcome": str(outcome)[:200], "at": at}
    with svc.db.engine.begin() as conn:
        # The runner's row first, as a claim does: a claim of their next event then either
        # sees this one ended, or is seen by the read of the next due event below.
        conn.execute(_LOCK_RUNNER, {"athlete_id": event.owner_id})
        if note:
            conn.execute(_WRITTEN, {"note_id": note, "now": now})
        conn.execute(_ENDINGS[ended], ending)
        following: int | None = conn.scalar(
            _NEXT_DUE, {"owner": event.owner_id, "event_id": event.id, "now": now}
        )
    return following


def process_event(svc: Services, event_id: int) -> Outcome:
    """Process one event end to end; returns its outcome. Safe to call any number of times.

    Then take the runner's other due events, one by one: claims that found the runner busy
    left theirs to the holder rather than polling for their turn.
    """
    try:
        event = claim(svc, event_id)
    except AthleteBusy:
        return Outcome(OutcomeKind.WAITING)
    if event is None:
        return Outcome(OutcomeKind.NOT_CLAIMABLE)
    outcome, next_id = process_claimed(svc, event)
    while next_id is not None:
        try:
            following = claim(svc, next_id)
        except AthleteBusy:
            break  # another worker has the runner now, and drains in turn
        if following is None:
            break
        _, next_id = process_claimed(svc, following)
    return outcome


def process_claimed(svc: Services, event: Claimed) -> tuple[Outcome, int | None]:
    """Handle a claimed event and record how it ended; (outcome, the runner's next due event).

    Its lease is renewed by the lease keeper while it runs, and its Strava calls are charged
    to its runner's fair share of the rate budget.
    """
    svc.held[event.id] = (event.attempts, svc.clock())
    try:
        with charged_to(event.owner_id):
            outcome, following = _run_claimed(svc, event)
    finally:
        svc.held.pop(event.id, None)
    svc.on_outcome(outcome)
    return outcome, following


@dataclass(frozen=True)
class Handled:
    """How an event ended, and the note it put on Strava (marked written with the event)."""

    outcome: Outcome
    note_id: int = 0


def _run_claimed(svc: Services, event: Claimed) -> tuple[Outcome, int | None]:
    """Handle a claimed event and store how it ended; (outcome, the runner's next due event)."""
    where = {"object": f"{event.object_type}:{event.object_id}", "attempt": event.attempts}

    def line(stage: str, **fields: object) -> str:
        return life_line(stage, event.id, event.owner_id, **where, **fields)

    try:
        handled = handle(svc, event)
    except Done as done:
        following = _finish(svc, event, done.status, done.outcome)
        log.info(line("processed", status=done.status, outcome=done.outcome))
        return done.outcome, following
    except ClaimLost:
        svc.strava.refund()  # the PUT reserved with the GET is the other worker's to make
        log.warning(line("abandoned", reason="lease ran out; another worker has it"))
        return Outcome(OutcomeKind.CLAIM_LOST), None
    except RateLimited as e:
        # Not a failure: the budget is spent, or this runner had their fair share of a short
        # window while others wait. Come back at the window's reset (or, for a fair share,
        # a minute later).
        reason = "fair share" if isinstance(e, FairShare) else "rate limit"
        outcome = Outcome(OutcomeKind.DEFERRED, reason)
        following = _finish(svc, event, "pending", outcome, e.retry_after)
        svc.enqueue(event.id, e.retry_after)
        log.info(line("deferred", wait=f"{e.retry_after:.0f}s", reason=reason))
        return outcome, following
    except (Unauthorized, NotFound) as e:
        # Between our GET and PUT the runner revoked access or deleted the run: nothing to do.
        outcome = Outcome(OutcomeKind.LEFT_ALONE, f"Strava answered {type(e).__name__}")
        following = _finish(svc, event, "skipped", outcome)
        log.info(line("processed", status="skipped", outcome=outcome))
        return outcome, following
    except Exception as e:
        transient = isinstance(e, TemporaryFailure | OperationalError)  # Strava or database hiccup
        if transient and event.attempts < svc.max_attempts:
            return _retry(svc, event, line, e)
        # A dead letter, visible in `strava-massage events --failed`, never a silent loop.
        outcome = Outcome(OutcomeKind.FAILED, f"{type(e).__name__}: {e}")
        following = _finish(svc, event, "failed", outcome)
        if isinstance(e, StravaError):
            log.warning(line("failed", reason=e))
        else:
            log.exception(line("failed", reason=f"{type(e).__name__} (a bug)"))
        return outcome, following
    following = _finish(svc, event, "done", handled.outcome, note=handled.note_id)
    log.info(line("processed", status="done", outcome=handled.outcome))
    return handled.outcome, following


def _retry(
    svc: Services, event: Claimed, line: Callable[..., str], e: Exception
) -> tuple[Outcome, int | None]:
    """Hand a temporary failure back to the queue with exponential backoff and jitter."""
    delay = min(svc.retry_base_seconds * 2 ** (event.attempts - 1), RETRY_MAX_SECONDS)
    delay *= random.uniform(0.8, 1.2)  # jitter, so a burst of failures spreads out
    outcome = Outcome(OutcomeKind.RETRYING, str(e))
    following = _finish(svc, event, "pending", outcome, delay)
    svc.enqueue(event.id, delay)
    log.info(line("retrying", wait=f"{delay:.1f}s", reason=e))
    return outcome, following


def handle(svc: Services, event: Claimed) -> Handled:
    """Do what a claimed event asks, by its kind (without recording how it ended)."""
    if event.aspect_type == "backfill":
        return Handled(_backfill(svc, event))
    if event.aspect_type == "check":
        # Our own monthly question for a runner we have not heard of: is the app still allowed?
        if not _revoked_at_strava(svc, event.owner_id):
            raise Done(OutcomeKind.ACCESS_CONFIRMED)
        delete_athlete(svc.db, event.owner_id)  # this event included
        log.warning("runner %s revoked access at Strava: all their data deleted", event.owner_id)
        raise Done(OutcomeKind.ACCESS_REVOKED)
    if event.object_type == "athlete":
        if str(event.updates.get("authorized", "")).lower() == "false":
            # Events are unsigned: only Strava refusing the runner's token proves it.
            if not _revoked_at_strava(svc, event.owner_id):
                raise Done(OutcomeKind.DEAUTH_NOT_CONFIRMED, "skipped")
            delete_athlete(svc.db, event.owner_id)  # this event included
            raise Done(OutcomeKind.DEAUTHORIZED)
        raise Done(OutcomeKind.ATHLETE_UPDATE_IGNORED, "skipped")
    if event.aspect_type == "delete":
        # Only the owner's rows: an event naming someone else's activity changes nothing.
        with svc.db.session() as session:
            removed = ledger.remove_activity(session, event.object_id, event.owner_id)
            session.execute(
                delete(Note).where(
                    Note.activity_id == event.object_id, Note.athlete_id == event.owner_id
                )
            )
            session.commit()
        detail = "removed from ledger" if removed else ""
        return Handled(Outcome(OutcomeKind.ACTIVITY_DELETED, detail))
    return _handle_activity(svc, event)


def _revoked_at_strava(svc: Services, athlete_id: int) -> bool:
    """Whether Strava refuses the runner's token now: one call (a refresh when it is due).

    Only Strava's Unauthorized counts. A runner with no token here cannot be checked, and
    any other refusal is no proof; a rate limit or a temporary failure defers or retries.
    """
    with svc.db.session() as session:
        row = session.get(Token, athlete_id)
        if row is None:
            return False
        stored = Stored(row.access_token, row.expires_at)
    due = stored.expires_at - svc.token_margin <= svc.clock()
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, athlete_id, margin=svc.token_margin, clock=svc.clock,
            stored=stored,
        )  # fmt: skip
        if not due:  # a granted refresh was the call, and proof enough
            svc.strava.get_athlete(token)
    except Unauthorized:  # first: tokens.TokenRevoked is both an Unauthorized and a NoToken
        return True
    except (NoToken, Rejected, NotFound):
        return False
    return False


def _handle_activity(svc: Services, event: Claimed) -> Handled:
    """Create or update: fetch, count if it is a run, and make sure it carries its note."""
    runner = event.runner
    if runner is None:
        # Stored in the instant the runner left: keep nothing about them, not even this.
        with svc.db.session() as session:
            session.execute(delete(Event).where(Event.id == event.id))
            session.commit()
        raise Done(OutcomeKind.UNKNOWN_ATHLETE, "skipped")  # costs no Strava call
    athlete, stored = runner.athlete, runner.stored
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, athlete.id, margin=svc.token_margin, clock=svc.clock,
            stored=stored,
        )  # fmt: skip
        info = svc.strava.get_activity(
            token, event.object_id, low_priority=_likely_not_a_run(svc, event)
        )
    except NoToken:
        raise Done(OutcomeKind.UNCONNECTED, "skipped") from None
    except Unauthorized:
        raise Done(OutcomeKind.ACCESS_REFUSED, "skipped") from None
    except NotFound:
        # The owner cannot read it: gone, or never theirs. Only the owner's row of it goes.
        with svc.db.session() as session:
            ledger.remove_activity(session, event.object_id, athlete.id)
            session.commit()
        raise Done(OutcomeKind.ACTIVITY_NOT_FOUND, "skipped") from None
    if info.athlete_id != athlete.id:
        svc.strava.refund()  # the PUT reserved with the GET: nothing is written
        raise Done(OutcomeKind.OTHER_ATHLETES, "skipped")
    if not info.is_run:
        with svc.db.session() as session:
            removed = ledger.remove_activity(session, info.id, athlete.id)
            session.commit()
        svc.strava.refund()
        left = ", left the ledger" if removed else ""
        raise Done(OutcomeKind.NOT_A_RUN, detail=f"{info.sport_type}{left}")

    note = _count(svc, event, athlete, info)
    if note is None:
        svc.strava.refund()
        return Handled(Outcome(OutcomeKind.NOTES_PAUSED))
    if _already_written(event, note):
        svc.strava.refund()
        return Handled(Outcome(OutcomeKind.NOTE_ALREADY_WRITTEN))
    return _write_note(svc, token, info, note)


def _already_written(event: Claimed, note: Note) -> bool:
    """Whether a changed run's note is on Strava already: a new run's is (re)written."""
    return note.status == "written" and event.aspect_type == "update"


def _count(svc: Services, event: Claimed, athlete: Athlete, info: ActivityInfo) -> Note | None:
    """Count the run, decide its note and renew the lease, in one transaction; the note.

    Counted, decided and fenced together. None when the runner paused notes.
    """
    with svc.db.engine.begin() as conn:
        run = ledger.upsert_run(conn, info)
        zone = _new_zone(athlete, info.timezone)
        if zone:
            conn.execute(_SET_TIMEZONE, {"athlete_id": athlete.id, "zone": zone})
        # A new run has no note yet; should a retry find one, the insert below returns it.
        note = None if event.aspect_type == "create" else _note_of(conn, info.id)
        if note is None and athlete.notes_enabled:
            decided = decide_note(conn, athlete, info.id, svc.advice, run=run)
            note = _store_note(conn, decided)
        if note is not None and not _already_written(event, note):
            keep_claim(conn, svc, event)
    return note


def keep_claim(conn: Connection, svc: Services, event: Claimed) -> None:
    """Renew the lease right before writing to Strava; ClaimLost if the event is not ours.

    A job slower than its lease may have been handed out again: without this fence both
    workers would PUT. The claim bumped `attempts`, so a newer claim no longer matches.
    The caller's transaction is to be rolled back on ClaimLost.
    """
    kept = conn.execute(_KEEP, _lease(svc, event))
    if not kept.rowcount:
        raise ClaimLost(event.id)


def _lease(svc: Services, event: Claimed) -> dict[str, Any]:
    """The parameters of `_KEEP` that renew this worker's claim from now."""
    lease_end = svc.now() + dt.timedelta(seconds=svc.lease_seconds)
    return {"event_id": event.id, "claim": event.attempts, "lease_end": lease_end}


def _note_of(conn: Connection, activity_id: int) -> Note | None:
    """The activity's stored note, as a detached Note, or None."""
    row = conn.execute(_NOTE_OF, {"activity_id": activity_id}).first()
    return Note(**row._mapping) if row is not None else None


def _store_note(conn: Connection, note: Note) -> Note:
    """Insert a decided note, or return the one already stored for its activity.

    Stored before it is written, so a retry reuses it; never a second note for one run.
    """
    inserted = conn.scalar(_note_insert(conn.dialect.name), _note_values(note))
    if inserted is None:  # another worker decided this activity's note first: use theirs
        existing = _note_of(conn, note.activity_id)
        assert existing is not None
        return existing
    note.id = inserted
    return note


def _note_values(note: Note) -> dict[str, Any]:
    """The parameters of `_note_insert` for a decided note."""
    values = {c.key: getattr(note, c.key) for c in _NOTES.columns if c.key != "id"}
    values["created_at"] = utcnow()
    return values


_NOTE_INSERTS: dict[str, Any] = {}


def _note_insert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (activity_id) DO NOTHING RETURNING id, built once per dialect."""
    if dialect not in _NOTE_INSERTS:
        columns = [c.key for c in _NOTES.columns if c.key != "id"]
        _NOTE_INSERTS[dialect] = (
            insert_for(dialect, _NOTES)
            .values({c: bindparam(c) for c in columns})
            .on_conflict_do_nothing(index_elements=["activity_id"])
            .returning(_NOTES.c.id)
        )
    return _NOTE_INSERTS[dialect]


def _new_zone(athlete: Athlete, strava_zone: str | None) -> str | None:
    """The runner's time zone (for "this week" on their pages) if their latest run changed it."""
    # Strava writes "(GMT+01:00) Europe/Paris"; the IANA name is the last word.
    zone = strava_zone.rsplit(" ", 1)[-1] if strava_zone else None
    return zone if zone and zone != athlete.timezone else None


def _likely_not_a_run(svc: Services, event: Claimed) -> bool:
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


def _write_note(svc: Services, token: str, info: ActivityInfo, note: Note) -> Handled:
    """Merge the note's block into its target field; PUT only if that changes it.

    The GET reserved one PUT in the rate budget: it is used here, or given back.
    """
    prepaid = True
    if note.target == "private_note":
        current = info.private_note or ""
        text = merge_note(current, note.text, make_block(note.text))
        # The private note is undocumented; when Strava refuses it, or takes the PUT but keeps
        # nothing (checked once per runner, by reading it back), the description is the clean
        # fallback, for this note and the runner's next ones.
        try:
            if text == current:
                svc.strava.refund()
                return Handled(Outcome(OutcomeKind.NOTE_IN_PRIVATE_NOTE, note.kind), note.id)
            proven = _private_note_proven(svc, note)
            svc.strava.update_private_note(token, info.id, text, prepaid=True)
            if proven or _private_note_kept(svc, token, info.id, note):
                return Handled(Outcome(OutcomeKind.NOTE_IN_PRIVATE_NOTE, note.kind), note.id)
            log.warning("private note ignored athlete=%s; using the description", note.athlete_id)
        except Rejected:
            log.warning("private note refused athlete=%s; using the description", note.athlete_id)
        _use_description(svc, note)
        prepaid = False  # the reserved PUT went on the private note
    description = merge_note(info.description, note.text, make_block(note.text))
    if description != info.description:
        svc.strava.update_description(token, info.id, description, prepaid=prepaid)
        return Handled(Outcome(OutcomeKind.NOTE_WRITTEN, note.kind), note.id)
    if prepaid:
        svc.strava.refund()
    return Handled(Outcome(OutcomeKind.NOTE_PRESENT, note.kind), note.id)


def _private_note_proven(svc: Services, note: Note) -> bool:
    """Whether a private note of this runner was written before (then it is trusted)."""
    earlier = select(Note.id).where(
        Note.athlete_id == note.athlete_id,
        Note.target == "private_note",
        Note.status == "written",
        Note.id != note.id,
    )
    with svc.db.session() as session:
        return session.execute(earlier.limit(1)).first() is not None


def _private_note_kept(svc: Services, token: str, activity_id: int, note: Note) -> bool:
    """Read the private note back once: whether Strava kept the note that was just PUT."""
    kept = svc.strava.get_private_note(token, activity_id).replace("\r\n", "\n")
    return make_block(note.text).strip() in kept


def _use_description(svc: Services, note: Note) -> None:
    """Switch this note and its runner from the private note to the description."""
    note.target = "description"
    with svc.db.session() as session:
        session.execute(update(Note).where(Note.id == note.id).values(target="description"))
        session.execute(
            update(Athlete).where(Athlete.id == note.athlete_id).values(note_target="description")
        )
        session.commit()


def check_idle_runners(svc: Services, idle_days: float, batch: int = 20) -> list[int]:
    """Queue an access check for up to `batch` runners with no event for `idle_days`; their ids.

    A runner who revoked the app while its deauthorization event was lost would otherwise keep
    their data here for ever (Strava's agreement: delete what a user revoked). Any event,
    a check included, proves the runner recent, so each quiet runner is asked once per period;
    the batch keeps the checks to a trickle of the quota.
    """
    now = svc.now()
    cutoff = now - dt.timedelta(days=idle_days)
    recent = select(Event.id).where(Event.owner_id == Athlete.id, Event.received_at >= cutoff)
    with svc.db.session() as session:
        quiet = list(
            session.scalars(
                select(Athlete.id)
                .where(Athlete.connected_at < cutoff, ~recent.exists())
                .order_by(Athlete.id)
                .limit(batch)
            )
        )
        events = [Event(**internal_event("check", athlete_id, now)) for athlete_id in quiet]
        session.add_all(events)
        session.commit()
        ids = [event.id for event in events]
    for event_id in ids:
        svc.enqueue(event_id, 0)
    if quiet:
        log.info("access check queued for %d quiet runner(s)", len(quiet))
    return quiet


def _backfill(svc: Services, event: Claimed) -> Outcome:
    """Import the last eight weeks of runs into the ledger (no notes: they are history).

    One list call per 200 activities; runs are keyed by id, so a webhook for one of them
    later does not count it twice.
    """
    with svc.db.session() as session:
        athlete = session.get(Athlete, event.owner_id)
        if athlete is None:
            raise Done(OutcomeKind.ATHLETE_GONE, "skipped")
        athlete.backfill_status = "running"
        session.commit()
    try:
        token = access_token(
            svc.db, svc.strava, svc.box, event.owner_id, margin=svc.token_margin, clock=svc.clock
        )
    except NoToken:
        raise Done(OutcomeKind.UNCONNECTED, "skipped") from None
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
    detail = f"{len(runs)} runs of {len(found)} activities, {calls} call(s)"
    return Outcome(OutcomeKind.HISTORY_IMPORTED, detail)


def reopen_events(svc: Services, ids: list[int] | None) -> list[int]:
    """Make finished events (by id, or every failed one for None) pending again; returns ids.

    Processing is idempotent, so replaying an event that did succeed costs a GET and no PUT.
    """
    with svc.db.session() as session:
        query = select(Event.id).where(Event.status.not_in(OPEN))
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


def sweep(svc: Services, *, take_over: bool = False) -> list[int]:
    """Hand out again events a dead worker held past their lease, or that sat pending too long.

    A live worker's lease keeper renews its leases every few seconds, so a lease that ran out
    is a dead (or stalled) holder's. A pending event's task is normally still in the queue, so
    it gets a grace of a few leases before it counts as lost; enqueueing one twice is harmless,
    since only one claim succeeds. `take_over` (a restarted single-process `serve`) hands out
    every claimed event at once, leases running or not: the fence before each PUT (the claim's
    `attempts`) keeps a holder that is somehow still alive from writing a second note.
    """
    now = svc.now()
    grace = now - dt.timedelta(seconds=svc.lease_seconds * svc.pending_grace_leases)
    if take_over:
        with svc.db.session() as session:
            session.execute(update(Event).where(Event.status == "processing").values(due_at=now))
            session.commit()
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
    budget = getattr(svc.strava, "budget", None)
    if budget is not None:
        budget.forget_old_windows()  # runners' fair-share counts of past windows
    for event_id in ids:
        svc.enqueue(event_id, 0)
    if ids:
        log.info("sweep re-enqueued %d event(s)", len(ids))
    return ids


# A job still running after this long is presumed hung: its lease is left to run out, and the
# fence before its PUT (the claim's `attempts`) keeps it from writing once another took over.
HOLD_MAX = 900.0


def renew_leases(svc: Services) -> int:
    """Extend the lease of every claim this process is working on; how many were renewed.

    The lease keeper calls this every quarter lease: a claim's lease then ends only when its
    holder has died (or stalled that long), and the sweep hands the event out again soon after.
    A claim taken over meanwhile no longer matches (`attempts`) and is left alone.
    """
    now = svc.clock()
    held = [(i, claim) for i, (claim, since) in list(svc.held.items()) if now - since < HOLD_MAX]
    if not held:
        return 0
    lease_end = svc.now() + dt.timedelta(seconds=svc.lease_seconds)
    params = [{"event_id": i, "claim": claim, "lease_end": lease_end} for i, claim in held]
    with svc.db.engine.begin() as conn:
        conn.execute(_KEEP, params)
    return len(held)

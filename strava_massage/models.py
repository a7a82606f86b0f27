"""Database tables: athletes, their tokens, the subscription, events, the ledger, notes, clinics."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from strava_massage.advice.state import Units


def utcnow() -> dt.datetime:
    """Timezone-aware now, called per row (never evaluated once at import)."""
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime: SQLite hands them back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def first_session_version() -> int:
    """A new person's session generation: random, so a cookie for a removed person whose id is
    used again (SQLite reuses the highest) does not match the newcomer's."""
    return 1 + secrets.randbelow(2**30)


class Base(DeclarativeBase):
    """Declarative base for every table."""


def table_of(model: type[Base]) -> Table:
    """A model's Table, for statements built once on the table rather than the ORM class."""
    return cast(Table, model.__table__)  # declared as the wider FromClause


class Athlete(Base):
    """A connected runner: only what the notes need, nothing from their profile beyond it."""

    __tablename__ = "athletes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    units: Mapped[str] = mapped_column(String(2), default="km")  # from Strava's preference
    units_override: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200), default="")
    notes_enabled: Mapped[bool] = mapped_column(default=True)
    connected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_race_on: Mapped[dt.date | None] = mapped_column(Date)
    next_race_distance_m: Mapped[float | None] = mapped_column(Float)
    # A sore area the runner noted (a key of advice.state.NIGGLE_AREAS) and the day it was sore
    # from; the tips favour it for runner.NIGGLE_DAYS, then it ends by itself.
    niggle_area: Mapped[str | None] = mapped_column(String(16))
    niggle_on: Mapped[dt.date | None] = mapped_column(Date)
    # Where the note goes: "description" (default) or Strava's undocumented "private_note".
    note_target: Mapped[str] = mapped_column(String(16), default="description")
    disclaimer: Mapped[str | None] = mapped_column(String(200))
    # The runner's own changes to the advice defaults (AdviceSettings field -> value).
    advice_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # History import on connect: none -> running -> done | failed, and runs imported so far.
    backfill_status: Mapped[str] = mapped_column(String(16), default="none")
    backfill_runs: Mapped[int] = mapped_column(Integer, default=0)
    # The clinic the runner joined through its invite link (at most one), and since when.
    clinic_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("clinics.id", name="fk_athletes_clinic_id", ondelete="SET NULL"),
        index=True,
    )
    clinic_joined_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Consent to show the clinic their figures: None is "not shared" (the default). The name is
    # the one the runner typed for the clinic to know them by; nothing comes from Strava's profile.
    clinic_consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    clinic_display_name: Mapped[str | None] = mapped_column(String(80))
    # The generation of the runner's login sessions, kept in the signed cookie and checked on
    # every request: logging out bumps it, so every copy of an older cookie stops working.
    session_version: Mapped[int] = mapped_column(
        Integer, default=first_session_version, server_default="0"
    )

    @property
    def effective_units(self) -> Units:
        """Miles or kilometres: the runner's override, else their Strava preference."""
        return "mi" if (self.units_override or self.units) == "mi" else "km"


class MassageSession(Base):
    """A massage or physio session the runner (or, later, their clinic) logged."""

    __tablename__ = "massage_sessions"
    __table_args__ = (Index("ix_massage_sessions_athlete_on", "athlete_id", "on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    athlete_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("athletes.id", ondelete="CASCADE")
    )
    on: Mapped[dt.date] = mapped_column(Date)
    place: Mapped[str | None] = mapped_column(String(120))
    # Set when the clinic's staff logged it (the runner logs their own with none).
    clinic_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("clinics.id", name="fk_massage_sessions_clinic_id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Token(Base):
    """An athlete's OAuth tokens, encrypted at rest with Fernet."""

    __tablename__ = "tokens"

    athlete_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("athletes.id", ondelete="CASCADE"), primary_key=True
    )
    access_token: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # Bumped by every refresh; the UPDATE doubles as the per-athlete refresh lock.
    version: Mapped[int] = mapped_column(Integer, default=0)


class Subscription(Base):
    """The one Strava push subscription of this application."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    callback_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateBudget(Base):
    """Strava's request budget for one window ("short" 15 minutes, or "daily"), for all workers."""

    __tablename__ = "rate_budget"

    bucket: Mapped[str] = mapped_column(String(8), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger)  # epoch seconds // window length
    used: Mapped[int] = mapped_column(Integer)  # reserved by us or reported by Strava, the larger
    allowed: Mapped[int] = mapped_column(Integer)


class PeriodicRun(Base):
    """The latest time slot in which some worker ran a periodic task (one winner per slot)."""

    __tablename__ = "periodic_runs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)  # epoch seconds // the task's interval


class Event(Base):
    """A webhook event as received: the record of work, whatever the queue does."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Hash of the event's identifying fields: Strava's retries carry the same body.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(BigInteger)
    aspect_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(BigInteger, index=True)
    updates: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    event_time: Mapped[int] = mapped_column(BigInteger)
    # pending -> processing -> done | skipped | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the event may next be handed out (a deferral or a claim's lease end).
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Activity(Base):
    """The mileage ledger: one row per counted run, keyed by Strava's activity id."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_athlete_date", "athlete_id", "local_date"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    athlete_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("athletes.id", ondelete="CASCADE")
    )
    local_date: Mapped[dt.date] = mapped_column(Date)
    distance_m: Mapped[float] = mapped_column(Float)
    moving_time_s: Mapped[int] = mapped_column(Integer)
    sport_type: Mapped[str] = mapped_column(String(32))
    workout_type: Mapped[int | None] = mapped_column(Integer)


class Note(Base):
    """A note decided for one activity; written to Strava once, replaced never doubled."""

    __tablename__ = "notes"
    __table_args__ = (
        UniqueConstraint("activity_id", name="uq_notes_activity"),
        Index("ix_notes_athlete_date", "athlete_id", "local_date"),
        # The last note of a kind, and the wording each rule used last: one lookup per kind.
        Index("ix_notes_athlete_kind_date", "athlete_id", "kind", "local_date"),
        # The dashboard pages through a runner's notes by id, newest first.
        Index("ix_notes_athlete_id", "athlete_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(BigInteger)
    athlete_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("athletes.id", ondelete="CASCADE")
    )
    local_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    is_session: Mapped[bool] = mapped_column(default=False)
    tip_id: Mapped[str | None] = mapped_column(String(64))
    # Which of its rule's wordings a session note used, so the next one can use another.
    wording_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    fact_ids: Mapped[str] = mapped_column(String(100), default="")
    text: Mapped[str] = mapped_column(Text)
    # Where it was written: "description", or "private_note" when Strava accepted that.
    target: Mapped[str] = mapped_column(String(16), default="description")
    # decided -> written; a crash between the two replays the same text, never a new one.
    status: Mapped[str] = mapped_column(String(16), default="decided")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    written_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthState(Base):
    """A single-use OAuth `state` value, so a callback cannot be forged or replayed."""

    __tablename__ = "oauth_states"

    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Clinic(Base):
    """A massage or physio clinic offering the notes to its clients, with its own brand."""

    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)  # the invite link: /c/<slug>
    name: Mapped[str] = mapped_column(String(80))
    booking_url: Mapped[str | None] = mapped_column(String(300))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str | None] = mapped_column(String(32))
    # Threshold overrides (AdviceSettings field -> value), between the defaults and the runner's.
    advice_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The clinic's own wording: rule kind -> template source (sandboxed; see note_templates).
    note_templates: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClinicStaff(Base):
    """A clinic's staff login: an email and a password hash, never the password."""

    __tablename__ = "clinic_staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(Integer, ForeignKey("clinics.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None until first set
    # A password-reset link's token, as a hash, and when it stops working.
    reset_hash: Mapped[str | None] = mapped_column(String(64))
    reset_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Wrong passwords in a row, and the login's pause after too many (against guessing).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # As Athlete.session_version: bumped by logging out and by a password change or reset.
    session_version: Mapped[int] = mapped_column(
        Integer, default=first_session_version, server_default="0"
    )


class LoginThrottle(Base):
    """Staff login tries per source (and per source and account), against online guessing.

    A try is reserved by one UPDATE before the password is checked, so parallel guesses can
    never get more tries than allowed; a success deletes the row. The account itself is never
    locked: a guesser elsewhere cannot keep its owner out.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)  # reserved since the last success
    # Epoch seconds before which no try is allowed (None while tries are left).
    free_at: Mapped[float | None] = mapped_column(Float)
    # Epoch seconds of the last try: rows idle for a day are deleted.
    last_at: Mapped[float] = mapped_column(Float, index=True)


class ConsentChange(Base):
    """Each time a runner turned sharing with their clinic on or off: the consent's record."""

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    athlete_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("athletes.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int] = mapped_column(Integer, ForeignKey("clinics.id", ondelete="CASCADE"))
    shared: Mapped[bool]
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

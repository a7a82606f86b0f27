"""Clinics: accounts and staff logins, runners joining and leaving, consent, the roster.

Plain functions on a database session, no Flask: the pages, the CLI and the tests call the
same ones. Every query about runners is scoped by the clinic asking, and figures come only for
runners who chose to share them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from strava_massage.advice import AdviceSettings, Units, to_units
from strava_massage.advice.state import NIGGLE_AREAS, Niggle
from strava_massage.domain import ledger
from strava_massage.models import (
    Athlete,
    Clinic,
    ClinicStaff,
    ConsentChange,
    LoginThrottle,
    MassageSession,
    aware,
    table_of,
)
from strava_massage.services.advising import runner_settings
from strava_massage.services.dashboard import runner_today
from strava_massage.services.runner import InputError, active_niggle

log = logging.getLogger(__name__)
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 10
RESET_VALID = dt.timedelta(hours=2)
# Login tries a source gets for one account, and over all accounts, before it must wait; the
# first wait, doubled by each wrong password after it, up to a day. Only that source waits.
MAX_FAILED_LOGINS = 5
MAX_SOURCE_TRIES = 20
BACKOFF_SECONDS = 60
MAX_BACKOFF_SECONDS = 24 * 3600
# A try in progress keeps a source's last free try this long at most (a check takes < 1 s).
HOLD_SECONDS = 30
# scrypt is werkzeug's default; named so a change of default never silently changes ours.
HASH_METHOD = "scrypt"
MAX_NAME = 80
# The hosts a booking link may reach over plain http: this machine, for the demo and tests.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
LOGO_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
MAX_LOGO_BYTES = 200 * 1024
# A hash to check against when no such staff exists, so a wrong email costs what a wrong password
# does (no way to learn which addresses have accounts from the time a login takes).
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)


def _one_line(text: str | None) -> str:
    """Whitespace collapsed: a value shown in a note or a page keeps to one line."""
    return " ".join((text or "").split())


def check_slug(slug: str) -> str:
    """A valid invite slug (lower-case letters, digits, hyphens; 3-40), else InputError."""
    slug = slug.strip().lower()
    if not SLUG.fullmatch(slug):
        raise InputError(
            "the link name must be 3 to 40 lower-case letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    return slug


def check_name(name: str) -> str:
    """A clinic's display name, one line, 1-80 characters."""
    name = _one_line(name)
    if not name or len(name) > MAX_NAME:
        raise InputError(f"the clinic's name must be 1 to {MAX_NAME} characters")
    return name


def check_booking_url(url: str | None) -> str | None:
    """An https booking link without spaces (http only on this machine), or None for none."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    # Plain http only for a page on this machine (the demo, tests): runners' browsers would
    # send their booking details unencrypted anywhere else.
    local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
    if not (parts.scheme == "https" or local) or not parts.netloc or any(c.isspace() for c in url):
        raise InputError(
            "the booking link must be a web address starting with https:// "
            "(http:// only for localhost or 127.0.0.1, for testing)"
        )
    if len(url) > 300:
        raise InputError("the booking link must be at most 300 characters")
    return url


def check_email(email: str) -> str:
    """An email address, lower-cased for lookups."""
    email = email.strip().lower()
    if not EMAIL.fullmatch(email) or len(email) > 254:
        raise InputError("that is not an email address")
    return email


def check_logo(data: bytes, content_type: str) -> str:
    """The logo's media type if it is a small PNG or JPEG (checked by its first bytes)."""
    if len(data) > MAX_LOGO_BYTES:
        raise InputError(f"the logo must be at most {MAX_LOGO_BYTES // 1024} KB")
    for kind, magic in LOGO_TYPES.items():
        if data.startswith(magic):
            return kind
    raise InputError("the logo must be a PNG or JPEG image")


def create_clinic(
    session: Session, slug: str, name: str, email: str, booking_url: str | None = None
) -> tuple[Clinic, ClinicStaff]:
    """A new clinic and its first staff login (no password until they set one)."""
    slug, name, email = check_slug(slug), check_name(name), check_email(email)
    booking_url = check_booking_url(booking_url)
    if session.scalar(select(Clinic.id).where(Clinic.slug == slug)) is not None:
        raise InputError(f"the link name {slug!r} is taken")
    clinic = Clinic(slug=slug, name=name, booking_url=booking_url)
    session.add(clinic)
    session.flush()
    return clinic, add_staff(session, clinic, email)


def add_staff(session: Session, clinic: Clinic, email: str) -> ClinicStaff:
    """Another staff login for the clinic."""
    email = check_email(email)
    if session.scalar(select(ClinicStaff.id).where(ClinicStaff.email == email)) is not None:
        raise InputError(f"{email} already has a login")
    staff = ClinicStaff(clinic_id=clinic.id, email=email)
    session.add(staff)
    session.flush()
    return staff


def remove_staff(session: Session, email: str) -> ClinicStaff:
    """Delete a staff login; its sessions end with it (the caller commits)."""
    email = check_email(email)
    staff = session.scalar(select(ClinicStaff).where(ClinicStaff.email == email))
    if staff is None:
        raise InputError(f"{email} has no login")
    session.delete(staff)
    return staff


def find_clinic(session: Session, slug: str) -> Clinic | None:
    """The clinic an invite link names, or None."""
    return session.scalar(select(Clinic).where(Clinic.slug == slug.strip().lower()))


def set_password(staff: ClinicStaff, password: str) -> None:
    """Hash and store a new password (the reset link, if any, stops working)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must be at least {MIN_PASSWORD} characters")
    staff.password_hash = generate_password_hash(password, method=HASH_METHOD)
    staff.reset_hash = None
    staff.reset_expires_at = None
    staff.failed_logins, staff.locked_until = 0, None
    end_sessions(staff)  # a changed password logs out every browser, a thief's too


class LoginPaused(Exception):
    """Too many wrong passwords from this source: it may try again in `wait` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"try again in {wait:.0f} s")
        self.wait = wait


def _source_of(address: str) -> str:
    """The unit a source is counted by: an IPv4 address, or an IPv6 address's /64 network (one
    host is given a whole /64 and could otherwise try from each address in it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _throttle_keys(email: str, address: str) -> list[tuple[str, int]]:
    """The counters a login try from `address` for `email` takes from, with their allowances."""
    source = _source_of(address)
    return [(f"src:{source}", MAX_SOURCE_TRIES), (f"src:{source}|{email}"[:300], MAX_FAILED_LOGINS)]


def _reserve_try(session: Session, key: str, allowed: int, now: float) -> int | None:
    """Take one try from a counter in one UPDATE (so parallel tries never get more than
    allowed); the tries taken so far, or None while the source must wait. Commits."""
    table = table_of(LoginThrottle)
    take = (
        update(table)
        .where(
            table.c.key == key,
            or_(and_(table.c.tries < allowed, table.c.free_at.is_(None)), table.c.free_at <= now),
        )
        .values(
            tries=table.c.tries + 1,
            last_at=now,
            # The last free try holds the counter until it is over: no second one slips in.
            free_at=case((table.c.tries + 1 >= allowed, now + HOLD_SECONDS), else_=None),
        )
        .returning(table.c.tries)
    )
    exists = select(table.c.key).where(table.c.key == key)
    for _ in range(2):
        # The row first, committed, so the UPDATE below always sees it: an UPDATE that ran
        # before a parallel try's INSERT committed would look like a source told to wait.
        if session.scalar(exists) is None:
            try:
                # A new counter: first clear those idle for a day (their waits are all over).
                session.execute(delete(table).where(table.c.last_at < now - MAX_BACKOFF_SECONDS))
                session.execute(insert(table).values(key=key, tries=0, free_at=None, last_at=now))
                session.commit()
            except IntegrityError:  # a parallel try created it first
                session.rollback()
        tries = session.scalar(take)
        session.commit()
        if tries is not None:
            return int(tries)
        if session.scalar(exists) is not None:
            return None  # the source must wait
    return None


def _backoff(tries: int, allowed: int) -> float:
    """How long a source waits after its `tries`-th wrong password (0 while tries are left)."""
    if tries < allowed:
        return 0.0
    return float(min(BACKOFF_SECONDS * 2 ** min(tries - allowed, 20), MAX_BACKOFF_SECONDS))


def _wait_of(session: Session, keys: list[tuple[str, int]], now: float) -> float:
    """How long until the source may try again (for the page), at least a second."""
    table = table_of(LoginThrottle)
    free = session.scalars(select(table.c.free_at).where(table.c.key.in_([key for key, _ in keys])))
    return float(max([1.0, *((at - now) for at in free if at is not None)]))


def check_login(
    session: Session, email: str, password: str, now: dt.datetime, source: str = "unknown"
) -> ClinicStaff | None:
    """The staff member with this email and password, or None (same cost either way).

    Each try is taken from the source's counters before the password is checked; once a
    source has used its tries it waits (LoginPaused), twice as long after each further wrong
    password. Other sources, and so the account's owner, are not held up. Commits.
    """
    email = email.strip().lower()
    stamp = now.timestamp()
    keys = _throttle_keys(email, source)
    taken: list[tuple[str, int, int]] = []
    for key, allowed in keys:
        tries = _reserve_try(session, key, allowed, stamp)
        if tries is None:
            _settle(session, taken, stamp)
            raise LoginPaused(_wait_of(session, keys, stamp))
        taken.append((key, allowed, tries))
    staff = session.scalar(select(ClinicStaff).where(ClinicStaff.email == email))
    stored = staff.password_hash if staff is not None and staff.password_hash else _DUMMY_HASH
    ok = check_password_hash(stored, password)
    if staff is None or not staff.password_hash or not ok:
        _settle(session, taken, stamp)
        if staff is not None:
            _count_wrong_password(session, staff.id)
        return None
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_([k for k, _ in keys])))
    staff.failed_logins, staff.locked_until = 0, None
    session.commit()
    return staff


def _settle(session: Session, taken: list[tuple[str, int, int]], now: float) -> None:
    """After a wrong password: a source that has used its tries waits, longer each time."""
    table = table_of(LoginThrottle)
    for key, allowed, tries in taken:
        wait = _backoff(tries, allowed)
        if wait:
            session.execute(update(table).where(table.c.key == key).values(free_at=now + wait))
    session.commit()


def _count_wrong_password(session: Session, staff_id: int) -> None:
    """Count a wrong password on the account itself (for the log; it never locks the account)."""
    count = session.scalar(
        update(table_of(ClinicStaff))
        .where(table_of(ClinicStaff).c.id == staff_id)
        .values(failed_logins=table_of(ClinicStaff).c.failed_logins + 1)
        .returning(table_of(ClinicStaff).c.failed_logins)
    )
    session.commit()
    if count and count % MAX_SOURCE_TRIES == 0:
        log.warning("many wrong passwords for staff=%s (%s since the last login)", staff_id, count)


def end_sessions(staff: ClinicStaff) -> None:
    """End every login session of the staff member, in every browser (the caller commits)."""
    # Computed by the database at flush, so two revocations at once both count.
    staff.session_version = ClinicStaff.session_version + 1


def _token_hash(token: str) -> str:
    """Reset tokens are stored as a hash: a leaked table gives no working link."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_reset(staff: ClinicStaff, now: dt.datetime) -> str:
    """A new single-use password-reset token for the staff member (the old one stops working);
    their login sessions end."""
    token = secrets.token_urlsafe(32)
    staff.reset_hash = _token_hash(token)
    end_sessions(staff)  # a reset is asked for when the password may be known to someone else
    staff.reset_expires_at = now + RESET_VALID
    return token


def staff_for_reset(session: Session, token: str, now: dt.datetime) -> ClinicStaff | None:
    """The staff member a reset token is for, if it is current."""
    if not token or len(token) > 100:
        return None
    staff = session.scalar(select(ClinicStaff).where(ClinicStaff.reset_hash == _token_hash(token)))
    if staff is None or staff.reset_expires_at is None:
        return None
    return staff if now < aware(staff.reset_expires_at) else None


def _record_consent(session: Session, athlete: Athlete, shared: bool, now: dt.datetime) -> None:
    """Change the runner's consent and keep the record of the change."""
    assert athlete.clinic_id is not None
    athlete.clinic_consent_at = now if shared else None
    session.add(
        ConsentChange(athlete_id=athlete.id, clinic_id=athlete.clinic_id, shared=shared, at=now)
    )


def join_clinic(session: Session, athlete: Athlete, clinic: Clinic, now: dt.datetime) -> bool:
    """Link the runner to the clinic (leaving any other); False if already its runner."""
    if athlete.clinic_id == clinic.id:
        return False
    if athlete.clinic_id is not None:
        leave_clinic(session, athlete, now)
    athlete.clinic_id = clinic.id
    athlete.clinic_joined_at = now
    athlete.clinic_consent_at = None  # sharing is asked for anew, clinic by clinic
    return True


def leave_clinic(session: Session, athlete: Athlete, now: dt.datetime) -> None:
    """Unlink the runner from their clinic; sharing ends with it."""
    if athlete.clinic_id is None:
        return
    if athlete.clinic_consent_at is not None:
        _record_consent(session, athlete, False, now)
    athlete.clinic_id = None
    athlete.clinic_joined_at = None
    athlete.clinic_display_name = None


def set_sharing(
    session: Session, athlete: Athlete, share: bool, name: str | None, now: dt.datetime
) -> None:
    """Turn sharing with the runner's clinic on (with the name the clinic will see) or off."""
    if athlete.clinic_id is None:
        raise InputError("you are not with a clinic")
    if not share:
        if athlete.clinic_consent_at is not None:
            _record_consent(session, athlete, False, now)
        return
    name = _one_line(name)
    if not name or len(name) > MAX_NAME:
        raise InputError(f"give the name your clinic knows you by (1 to {MAX_NAME} characters)")
    athlete.clinic_display_name = name
    if athlete.clinic_consent_at is None:
        _record_consent(session, athlete, True, now)


@dataclass(frozen=True)
class RosterRow:
    """One sharing runner as the clinic sees them, distances in metres.

    The figures derived from Strava (the distances, the days counted from a run, "due") are
    None unless the operator turned CLINIC_SHARED_FIGURES on: Strava's API agreement lets a
    user's Strava data be shown to that user only.
    """

    athlete_id: int
    name: str
    units: Units
    week_m: float | None
    since_session_m: float | None
    last_session: dt.date | None
    since_days: int | None
    due: bool | None
    shared_since: dt.datetime
    niggle: Niggle | None = None  # a sore area the runner noted, while it lasts
    joined: dt.datetime | None = None
    sessions_here: int = 0  # the sessions this clinic logged for the runner


@dataclass(frozen=True)
class Roster:
    """The clinic's runners: how many, and figures for those who share them (with `figures`,
    the operator's CLINIC_SHARED_FIGURES; otherwise no figure derived from Strava)."""

    total: int
    not_sharing: int
    sharing: list[RosterRow]
    figures: bool = False


def session_due(settings: AdviceSettings, units: Units, totals: ledger.Totals, days: int) -> bool:
    """Due for a session by the note rules' own thresholds: the monthly check-in's distance and
    days since the last one, or a high-volume week with the usual gap between sessions over."""
    monthly = days >= settings.checkin_days and totals.since_massage_m >= settings.checkin_m(units)
    big_week = totals.week_m >= settings.high_volume_m(units) and days >= settings.session_gap_days
    return monthly or big_week


def _sharing_runners(session: Session, clinic: Clinic) -> list[Athlete]:
    """The clinic's runners who share their figures, by name."""
    return list(
        session.scalars(
            select(Athlete)
            .where(Athlete.clinic_id == clinic.id, Athlete.clinic_consent_at.is_not(None))
            .order_by(Athlete.clinic_display_name, Athlete.id)
        )
    )


def roster(
    session: Session, clinic: Clinic, now: dt.datetime | None = None, *, figures: bool = False
) -> Roster:
    """Counts for every runner of the clinic, and a row for each runner sharing with it.

    With `figures` (CLINIC_SHARED_FIGURES on) a row carries the runner's figures derived from
    Strava; without, only who joined, the sessions logged and what the runner sent: the
    ledger is not even read.
    """
    now = now or dt.datetime.now(dt.UTC)
    total = session.scalar(select(func.count()).where(Athlete.clinic_id == clinic.id)) or 0
    sharing = _sharing_runners(session, clinic)
    logged = _sessions_logged(session, clinic, [a.id for a in sharing])
    rows = []
    for athlete in sharing:
        today = runner_today(athlete, now)
        units = athlete.effective_units
        assert athlete.clinic_consent_at is not None
        count, last = logged.get(athlete.id, (0, None))
        week_m = since_m = days = due = None
        if figures:
            totals = ledger.totals(session, athlete, today)
            last = totals.last_massage
            days = (today - ledger.massage_anchor(athlete, last)).days
            settings = runner_settings(athlete, clinic=clinic)
            week_m, since_m = totals.week_m, totals.since_massage_m
            due = session_due(settings, units, totals, days)
        rows.append(
            RosterRow(
                athlete_id=athlete.id,
                name=athlete.clinic_display_name or "",
                units=units,
                week_m=week_m,
                since_session_m=since_m,
                last_session=last,
                since_days=days,
                due=due,
                shared_since=athlete.clinic_consent_at,
                niggle=active_niggle(athlete, today),
                joined=athlete.clinic_joined_at,
                sessions_here=count,
            )
        )
    return Roster(total=total, not_sharing=total - len(rows), sharing=rows, figures=figures)


def _sessions_logged(
    session: Session, clinic: Clinic, athlete_ids: list[int]
) -> dict[int, tuple[int, dt.date | None]]:
    """{runner: (sessions this clinic logged, the runner's last session of any place)}."""
    if not athlete_ids:
        return {}
    here = func.count(MassageSession.id).filter(MassageSession.clinic_id == clinic.id)
    found = session.execute(
        select(MassageSession.athlete_id, here, func.max(MassageSession.on))
        .where(MassageSession.athlete_id.in_(athlete_ids))
        .group_by(MassageSession.athlete_id)
    )
    return {athlete: (count, last) for athlete, count, last in found}


def sharing_runner(session: Session, clinic: Clinic, athlete_id: int) -> Athlete | None:
    """One of the clinic's runners, only if they share their figures; None otherwise."""
    athlete = session.get(Athlete, athlete_id)
    if athlete is None or athlete.clinic_id != clinic.id or athlete.clinic_consent_at is None:
        return None
    return athlete


def log_session(
    session: Session, clinic: Clinic, athlete_id: int, on: dt.date, now: dt.datetime
) -> MassageSession:
    """Staff log a session for a sharing runner (resets their distance since the last one)."""
    athlete = sharing_runner(session, clinic, athlete_id)
    if athlete is None:
        raise InputError("no such runner shares their figures with this clinic")
    today = runner_today(athlete, now)
    if on > today + dt.timedelta(days=1):
        raise InputError("a session can be logged once it has happened")
    if on < today - dt.timedelta(days=365):
        raise InputError("a session more than a year ago does not change the advice")
    row = MassageSession(athlete_id=athlete.id, on=on, place=clinic.name, clinic_id=clinic.id)
    session.add(row)
    return row


# The three "last session" columns are empty for a runner with no session logged.
CSV_HEADER = (
    "name", "units", "this_week", "since_last_session", "last_session", "days_since_last_session",
    "due_for_session", "sharing_since", "sore_area", "sore_since",
)  # fmt: skip
# Without CLINIC_SHARED_FIGURES: no column derived from Strava.
CSV_HEADER_NO_FIGURES = (
    "name", "joined", "sharing_since", "sessions_logged_here", "last_session", "sore_area",
    "sore_since",
)  # fmt: skip


def _cell(value: str) -> str:
    """A spreadsheet cell that can never run as a formula (names are typed by runners)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def roster_csv(rows: Roster | Iterable[RosterRow]) -> str:
    """The sharing runners as CSV, distances in each runner's units with one decimal.

    Given a Roster, its figures setting decides the columns; given rows, the figures are
    written only if every row carries them.
    """
    if isinstance(rows, Roster):
        figures, listed = rows.figures, rows.sharing
    else:
        listed = list(rows)
        figures = bool(listed) and all(_has_figures(r) for r in listed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER if figures else CSV_HEADER_NO_FIGURES)
    for r in listed:
        last = r.last_session.isoformat() if r.last_session else ""
        niggle = [
            NIGGLE_AREAS[r.niggle.area] if r.niggle else "",
            r.niggle.since.isoformat() if r.niggle else "",
        ]
        shared = r.shared_since.date().isoformat()
        if not figures:
            joined = r.joined.date().isoformat() if r.joined else ""
            writer.writerow([_cell(r.name), joined, shared, r.sessions_here, last, *niggle])
            continue
        assert r.week_m is not None
        assert r.since_session_m is not None
        # Without a session the ledger counts from connecting: not "since the last session".
        logged = r.last_session is not None
        writer.writerow(
            [
                _cell(r.name),
                r.units,
                f"{to_units(r.week_m, r.units):.1f}",
                f"{to_units(r.since_session_m, r.units):.1f}" if logged else "",
                last,
                r.since_days if logged else "",
                "yes" if r.due else "no",
                shared,
                *niggle,
            ]
        )
    return out.getvalue()


def _has_figures(row: RosterRow) -> bool:
    """Whether a roster row carries the figures derived from Strava."""
    return row.week_m is not None and row.since_session_m is not None

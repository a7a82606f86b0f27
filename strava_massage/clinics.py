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
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from strava_massage import ledger
from strava_massage.advice import AdviceSettings, Units, to_units
from strava_massage.advice.state import NIGGLE_AREAS, Niggle
from strava_massage.dashboard import runner_today
from strava_massage.models import Athlete, Clinic, ClinicStaff, ConsentChange, MassageSession
from strava_massage.processing import runner_settings
from strava_massage.runner import InputError, active_niggle

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 10
RESET_VALID = dt.timedelta(hours=2)
# After this many wrong passwords in a row a login pauses, so a password can't be guessed online.
MAX_FAILED_LOGINS = 5
LOCK_FOR = dt.timedelta(minutes=15)
# scrypt is werkzeug's default; named so a change of default never silently changes ours.
HASH_METHOD = "scrypt"
MAX_NAME = 80
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
    """An http(s) booking link without spaces, or None for none."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise InputError("the booking link must be a web address starting with https://")
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


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands stored times back naive; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def check_login(
    session: Session, email: str, password: str, now: dt.datetime
) -> ClinicStaff | None:
    """The staff member with this email and password, or None (same cost either way).

    Counts wrong passwords; after MAX_FAILED_LOGINS in a row the login pauses for LOCK_FOR,
    during which even the right password is refused. The caller commits.
    """
    staff = session.scalar(select(ClinicStaff).where(ClinicStaff.email == email.strip().lower()))
    stored = staff.password_hash if staff is not None and staff.password_hash else _DUMMY_HASH
    ok = check_password_hash(stored, password)
    if staff is None or not staff.password_hash:
        return None
    if staff.locked_until is not None and now < _aware(staff.locked_until):
        return None
    if not ok:
        staff.failed_logins = (staff.failed_logins or 0) + 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.locked_until, staff.failed_logins = now + LOCK_FOR, 0
        return None
    staff.failed_logins, staff.locked_until = 0, None
    return staff


def _token_hash(token: str) -> str:
    """Reset tokens are stored as a hash: a leaked table gives no working link."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_reset(staff: ClinicStaff, now: dt.datetime) -> str:
    """A new single-use password-reset token for the staff member (the old one stops working)."""
    token = secrets.token_urlsafe(32)
    staff.reset_hash = _token_hash(token)
    staff.reset_expires_at = now + RESET_VALID
    return token


def staff_for_reset(session: Session, token: str, now: dt.datetime) -> ClinicStaff | None:
    """The staff member a reset token is for, if it is current."""
    if not token or len(token) > 100:
        return None
    staff = session.scalar(select(ClinicStaff).where(ClinicStaff.reset_hash == _token_hash(token)))
    if staff is None or staff.reset_expires_at is None:
        return None
    return staff if now < _aware(staff.reset_expires_at) else None


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
    """One sharing runner as the clinic sees them, distances in metres."""

    athlete_id: int
    name: str
    units: Units
    week_m: float
    since_session_m: float
    last_session: dt.date | None
    since_days: int
    due: bool
    shared_since: dt.datetime
    niggle: Niggle | None = None  # a sore area the runner noted, while it lasts


@dataclass(frozen=True)
class Roster:
    """The clinic's runners: how many, and figures for those who share them."""

    total: int
    not_sharing: int
    sharing: list[RosterRow]


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


def roster(session: Session, clinic: Clinic, now: dt.datetime | None = None) -> Roster:
    """Counts for every runner of the clinic; figures only for those sharing them."""
    now = now or dt.datetime.now(dt.UTC)
    total = session.scalar(select(func.count()).where(Athlete.clinic_id == clinic.id)) or 0
    rows = []
    for athlete in _sharing_runners(session, clinic):
        today = runner_today(athlete, now)
        totals = ledger.totals(session, athlete, today)
        last = totals.last_massage
        days = (today - ledger.massage_anchor(athlete, last)).days
        units = athlete.effective_units
        settings = runner_settings(athlete, clinic=clinic)
        assert athlete.clinic_consent_at is not None
        rows.append(
            RosterRow(
                athlete_id=athlete.id,
                name=athlete.clinic_display_name or "",
                units=units,
                week_m=totals.week_m,
                since_session_m=totals.since_massage_m,
                last_session=last,
                since_days=days,
                due=session_due(settings, units, totals, days),
                shared_since=athlete.clinic_consent_at,
                niggle=active_niggle(athlete, today),
            )
        )
    return Roster(total=total, not_sharing=total - len(rows), sharing=rows)


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


CSV_HEADER = (
    "name", "units", "this_week", "since_last_session", "last_session", "days_since",
    "due_for_session", "sharing_since", "sore_area", "sore_since",
)  # fmt: skip


def _cell(value: str) -> str:
    """A spreadsheet cell that can never run as a formula (names are typed by runners)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def roster_csv(rows: Iterable[RosterRow]) -> str:
    """The sharing runners as CSV, distances in each runner's units with one decimal."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                _cell(r.name),
                r.units,
                f"{to_units(r.week_m, r.units):.1f}",
                f"{to_units(r.since_session_m, r.units):.1f}",
                r.last_session.isoformat() if r.last_session else "",
                r.since_days,
                "yes" if r.due else "no",
                r.shared_since.date().isoformat(),
                NIGGLE_AREAS[r.niggle.area] if r.niggle else "",
                r.niggle.since.isoformat() if r.niggle else "",
            ]
        )
    return out.getvalue()

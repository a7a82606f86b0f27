"""The runner's pages: landing, the Strava connect flow, clinic invites, and what happens next."""

from __future__ import annotations

import functools
import logging
import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import delete
from werkzeug.wrappers import Response

from strava_massage import services, web
from strava_massage.advice import HIGH_VOLUME, Units
from strava_massage.config import STRAVA_SCOPES
from strava_massage.db import get_session
from strava_massage.domain.clinic_notes import sample_advice
from strava_massage.domain.merge import make_block
from strava_massage.domain.notes import render_note
from strava_massage.models import Athlete, Clinic, ClinicStaff, Event, OAuthState, utcnow
from strava_massage.services import capacity, clinics, runner
from strava_massage.services.accounts import disconnect_athlete, internal_event
from strava_massage.strava.client import (
    AthleteInfo,
    AthleteLimitReached,
    StravaError,
    TemporaryFailure,
)
from strava_massage.strava.tokens import store_grant
from strava_massage.web.i18n import browser_territory
from strava_massage.web.runner_pages import login_required

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)

# What each scope is for, in the runner's terms, for the "something is missing" page.
SCOPE_REASONS = {
    "activity:read_all": "read your runs (including private ones) to count your distance",
    "activity:write": "add the note to your run's description",
}


def _callback_url() -> str:
    """The redirect URI registered with Strava."""
    return str(current_app.config["PUBLIC_URL"]) + "/connect/callback"


# Where miles are the everyday unit; everyone else sees the example in kilometres.
MILES_TERRITORIES = frozenset({"US", "GB", "LR", "MM"})


@functools.cache
def example_note(units: Units) -> str:
    """A real note, from the real rules and templates, for a sample runner's big week."""
    return make_block(render_note(sample_advice(HIGH_VOLUME, units)))


@bp.get("/")
def landing() -> str:
    """What the service does, an example note, and the Connect button."""
    # The browser's country, not the page's language: English pages serve km countries too.
    units: Units = "mi" if browser_territory() in MILES_TERRITORIES else "km"
    example = example_note(units)
    return render_template(
        "runner/landing.html", athlete_id=session.get("athlete_id"), example_note=example
    )


def safe_next(target: str | None) -> str | None:
    """A path on this site to return to, or None: never another host (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\\\r\n\t"):
        return None
    return target


@bp.get("/connect")
def connect() -> Response:
    """Send the runner to Strava's approval page with a fresh single-use state."""
    state = secrets.token_urlsafe(24)
    db = get_session()
    db.add(OAuthState(value=state))
    db.commit()
    session["oauth_state"] = state
    # Where to go after connecting; checked again on the way out.
    next_path = safe_next(request.args.get("next"))
    if next_path:
        session["next"] = next_path
    else:
        session.pop("next", None)
    # The clinic of an invite link rides through Strava's approval in the signed session.
    slug = request.args.get("clinic")
    clinic = clinics.find_clinic(db, slug) if slug else None
    athlete = _current_athlete()
    if clinic is not None and athlete is not None and _moving(athlete, clinic):
        # Never moved from one clinic to another by following a link: the invite page asks.
        return redirect(url_for("pages.invite", slug=clinic.slug))
    if clinic is not None:
        session["clinic"] = clinic.slug
    else:
        session.pop("clinic", None)
    strava = services.get().strava
    return redirect(strava.authorize_url(_callback_url(), state, ",".join(STRAVA_SCOPES)))


def _take_state(state: str) -> bool:
    """Accept a state once: it must match this browser's and still be stored."""
    expected = session.pop("oauth_state", None)
    if not state or not expected or not secrets.compare_digest(state, expected):
        return False
    db = get_session()
    taken = db.execute(delete(OAuthState).where(OAuthState.value == state))
    db.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def _problem(problem: str, status: int, **context: object) -> tuple[str, int]:
    """The "not connected yet" page; its Connect button keeps the invite's clinic, if any."""
    page = render_template(
        "runner/connect_problem.html",
        problem=problem,
        clinic_slug=session.get("clinic"),
        **context,
    )
    return page, status


@bp.get("/connect/callback")
def connect_callback() -> Response | tuple[str, int]:
    """Check state and scopes, exchange the code, store the runner, log them in."""
    if not _take_state(request.args.get("state", "")):
        return _problem("state", 400)
    if request.args.get("error"):
        return _problem("denied", 200)
    granted = set(request.args.get("scope", "").split(","))
    missing = [s for s in ("activity:read_all", "activity:write") if s not in granted]
    if missing:
        return _problem("scope", 200, reasons=[SCOPE_REASONS[s] for s in missing])
    code = request.args.get("code", "")
    if not code:
        abort(400)

    svc = services.get()
    try:
        # At once and outside the rate budget: the code expires. The profile read is only for
        # an exchange that did not name the athlete (the one read a connect cannot skip).
        grant = svc.strava.exchange_code(code)
        athlete_info = grant.athlete or svc.strava.get_athlete(grant.access_token, budgeted=False)
    except AthleteLimitReached:
        capacity.refused(current_app.extensions["tasks"], current_app.extensions.get("metrics"))
        return _problem("full", 503)
    except TemporaryFailure:
        return _problem("outage", 503)
    except StravaError as e:
        log.warning("connect failed: %s", type(e).__name__)
        return _problem("rejected", 400)

    db = get_session()
    athlete = db.get(Athlete, athlete_info.id)
    if athlete is None:
        athlete = Athlete(id=athlete_info.id, connected_at=utcnow())
        db.add(athlete)
    athlete.units = athlete_info.units
    athlete.scope = ",".join(sorted(granted))
    store_grant(db, svc.box, athlete_info.id, grant)
    backfill = None
    if athlete.backfill_status in (None, "none", "failed"):
        # Import recent history so the first note's totals are right; the worker does it.
        athlete.backfill_status = "pending"
        backfill = Event(**internal_event("backfill", athlete_info.id, utcnow()))
        db.add(backfill)
    # Joined in the same commit as the connect: an invite never leaves a runner half-linked.
    # A runner with another clinic is asked first (the invite page), never moved by a link.
    slug = session.get("clinic")
    clinic = clinics.find_clinic(db, slug) if slug else None
    ask_move = clinic is not None and _moving(athlete, clinic)
    joined = _join(athlete, clinic) if clinic is not None and not ask_move else None
    db.commit()
    if backfill is not None:
        services.get().enqueue(backfill.id, 0)
    next_path = safe_next(session.get("next"))
    session.clear()
    web.log_in_runner(athlete)
    if joined is not None:
        flash(*joined)  # after clear(): the flash lives in the new session
    if athlete.units_override is None:  # never a silent guess: shown, with a one-click switch
        flash(_units_choice(athlete_info), "units")
    capacity.connected(current_app.extensions["tasks"])
    log.info("athlete connected athlete=%s", athlete_info.id)
    if ask_move and clinic is not None:
        return redirect(url_for("pages.invite", slug=clinic.slug))
    return redirect(next_path or url_for("runner.show_dashboard"))


def _units_choice(info: AthleteInfo) -> str:
    """The "units" flash: units|source|country, shown with a switch (runner/_units_choice.html)."""
    return "|".join((info.units, info.units_source, (info.country or "").replace("|", " ")))


@bp.post("/connect/units")
@login_required
def switch_units(athlete: Athlete) -> Response:
    """The first page's one-click switch of units (CSRFProtect has checked the token)."""
    units = request.form.get("units", "")
    if units not in ("mi", "km"):
        abort(400)
    runner.set_units(athlete, units)
    get_session().commit()
    flash(
        _("Distances are now in miles. You can change this in Settings.")
        if units == "mi"
        else _("Distances are now in kilometres. You can change this in Settings."),
        "success",
    )
    return redirect(safe_next(request.form.get("next")) or url_for("runner.show_dashboard"))


def _moving(athlete: Athlete, clinic: Clinic) -> bool:
    """Whether joining `clinic` would take the runner away from another clinic."""
    return athlete.clinic_id is not None and athlete.clinic_id != clinic.id


def _join(athlete: Athlete, clinic: Clinic) -> tuple[str, str]:
    """Link the runner to the clinic (leaving any other); what to tell them, and its category."""
    db = get_session()
    before = db.get(Clinic, athlete.clinic_id) if athlete.clinic_id is not None else None
    if not clinics.join_clinic(db, athlete, clinic, utcnow()):
        return _("You are already with %(clinic)s.", clinic=clinic.name), "info"
    log.info("athlete joined clinic athlete=%s clinic=%s", athlete.id, clinic.id)
    if before is not None:
        message = _(
            "You left %(old)s and joined %(clinic)s. Your notes now carry %(clinic)s's name. "
            "Sharing starts off: %(clinic)s sees none of your training unless you switch it on "
            "in Settings.",
            old=before.name,
            clinic=clinic.name,
        )
    else:
        message = _(
            "You joined %(clinic)s. Your notes now carry its name. It sees none of your training "
            "unless you switch sharing on in Settings.",
            clinic=clinic.name,
        )
    return message, "success"


def _current_athlete() -> Athlete | None:
    """The logged-in runner, if any (a public page shows more to them, never less)."""
    athlete_id = session.get("athlete_id")
    return get_session().get(Athlete, athlete_id) if athlete_id is not None else None


@bp.get("/c/<slug>")
def invite(slug: str) -> str:
    """A clinic's invite: what joining means, then Connect (a visitor) or Join (a runner)."""
    db = get_session()
    clinic = clinics.find_clinic(db, slug)
    if clinic is None:
        abort(404)
    athlete = _current_athlete()
    current = None
    if athlete is not None and athlete.clinic_id is not None:
        current = db.get(Clinic, athlete.clinic_id)
    return render_template("clinic/invite.html", clinic=clinic, athlete=athlete, current=current)


@bp.post("/c/<slug>/join")
@login_required
def join_clinic(athlete: Athlete, slug: str) -> Response:
    """A logged-in runner joins the clinic of an invite (CSRFProtect has checked the token)."""
    db = get_session()
    clinic = clinics.find_clinic(db, slug)
    if clinic is None:
        abort(404)
    message, category = _join(athlete, clinic)
    db.commit()
    flash(message, category)
    return redirect(url_for("runner.show_dashboard"))


@bp.get("/welcome")
def welcome() -> Response:
    """The address the first version sent runners to after connecting: now the dashboard."""
    return redirect(url_for("runner.show_dashboard"))


@bp.post("/logout")
def logout() -> Response:
    """Log out everywhere: every session of this person ends, copies of the cookie too (the
    connection to Strava stays)."""
    db = get_session()
    athlete = _current_athlete()
    if athlete is not None:
        web.end_runner_sessions(athlete)
    staff_id = session.get("staff_id")
    staff = db.get(ClinicStaff, staff_id) if staff_id is not None else None
    if staff is not None:
        clinics.end_sessions(staff)
    db.commit()
    session.clear()
    return redirect(url_for("pages.landing"))


@bp.post("/disconnect")
def disconnect() -> Response | str:
    """Revoke the app at Strava and delete everything about the runner, then say goodbye."""
    athlete_id = session.get("athlete_id")
    if athlete_id is None:
        return redirect(url_for("pages.landing"))
    revoked = disconnect_athlete(services.get(), athlete_id)
    session.clear()
    log.info("athlete disconnected athlete=%s revoked_at_strava=%s", athlete_id, revoked)
    return render_template("runner/goodbye.html", revoked=revoked)

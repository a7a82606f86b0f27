"""A clinic's staff pages: login, password, the runners' roster, sessions, export, settings.

Every view gets its clinic from the logged-in staff member, never from the address: no URL
names a clinic, so one clinic's staff cannot even ask for another's data.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.wrappers import Response as BaseResponse

from strava_massage import web
from strava_massage.advice.state import NIGGLE_AREAS
from strava_massage.db import get_session
from strava_massage.domain import clinic_notes
from strava_massage.models import Clinic, ClinicStaff, utcnow
from strava_massage.services import clinics
from strava_massage.services.runner import InputError
from strava_massage.web.forms import (
    ClinicSessionForm,
    ClinicSettingsForm,
    NewPasswordForm,
    StaffLoginForm,
    niggle_words,
)
from strava_massage.web.pages import safe_next

bp = Blueprint("clinic", __name__, url_prefix="/clinic")
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def staff_required(view: F) -> F:
    """Hand the view the logged-in staff member's clinic; others go to the login page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        staff_id = session.get("staff_id")
        staff = get_session().get(ClinicStaff, staff_id) if staff_id is not None else None
        if staff is None:
            session.pop("staff_id", None)
            if request.is_json or request.accept_mimetypes.best == "application/json":
                # A script (the live preview) can't follow a redirect to a login page.
                return jsonify(error=_("Your login has ended: log in again.")), 401
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("clinic.login", next=target))
        clinic = get_session().get(Clinic, staff.clinic_id)
        if clinic is None:  # deleted meanwhile
            abort(404)
        return view(clinic, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Staff log in with email and password."""
    form = StaffLoginForm()
    if form.validate_on_submit():
        db = get_session()
        email, password = form.email.data or "", form.password.data or ""
        try:
            # The address as the configured proxies report it (TRUSTED_PROXIES).
            source = request.remote_addr or "unknown"
            staff = clinics.check_login(db, email, password, utcnow(), source)
        except clinics.LoginPaused as e:
            minutes = max(1, math.ceil(e.wait / 60))
            form.password.errors = [
                ngettext(
                    "Too many wrong passwords from here: try again in %(num)s minute.",
                    "Too many wrong passwords from here: try again in %(num)s minutes.",
                    minutes,
                )
            ]
            page = render_template("clinic/login.html", form=form)
            return page, 429, {"Retry-After": str(math.ceil(e.wait))}
        if staff is not None:
            next_path = safe_next(request.args.get("next"))
            # A fresh session: nothing from before the login carries over (no fixation).
            session.clear()
            web.log_in_staff(staff)
            log.info("clinic staff logged in staff=%s clinic=%s", staff.id, staff.clinic_id)
            return redirect(next_path or url_for("clinic.dashboard"))
        form.password.errors = [
            _(
                "That email and password do not match a login. After five wrong passwords a"
                " login from here waits a minute, then twice as long after each wrong one."
            )
        ]
        return render_template("clinic/login.html", form=form), 401
    return render_template("clinic/login.html", form=form)


@bp.post("/logout")
def logout() -> BaseResponse:
    """Log the staff member out everywhere: every session of theirs ends, copied ones too."""
    staff_id = session.get("staff_id")
    db = get_session()
    staff = db.get(ClinicStaff, staff_id) if staff_id is not None else None
    if staff is not None:
        clinics.end_sessions(staff)
        db.commit()
    for key in web.STAFF_KEYS:
        session.pop(key, None)
    return redirect(url_for("clinic.login"))


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> str | BaseResponse | tuple[str, int]:
    """Set a password from a link made by `strava-massage clinic` (once, within two hours)."""
    db = get_session()
    staff = clinics.staff_for_reset(db, token, utcnow())
    if staff is None:
        return render_template("clinic/password.html", form=None, expired=True), 404
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            clinics.set_password(staff, form.password.data or "")
        except InputError as e:
            form.password.errors = [str(e)]
        else:
            db.commit()  # every other session of theirs ends (clinics.set_password)
            session.clear()
            web.log_in_staff(staff)
            flash(_("Password saved: you are logged in."), "info")
            return redirect(url_for("clinic.dashboard"))
    status = 400 if form.errors else 200
    return render_template("clinic/password.html", form=form, expired=False), status


@bp.get("")
@staff_required
def dashboard(clinic: Clinic) -> str:
    """The clinic's runners: counts for all, figures for those who share them."""
    figures = current_app.config["CLINIC_SHARED_FIGURES"]  # the operator's decision
    roster = clinics.roster(get_session(), clinic, figures=figures)
    return render_template(
        "clinic/dashboard.html",
        clinic=clinic,
        roster=roster,
        form=ClinicSessionForm(),
        niggle_areas={area: niggle_words(area) for area in NIGGLE_AREAS},
    )


@bp.post("/runners/<int:athlete_id>/sessions")
@staff_required
def log_session(clinic: Clinic, athlete_id: int) -> BaseResponse | tuple[str, int]:
    """Log a session the clinic gave a sharing runner."""
    db = get_session()
    if clinics.sharing_runner(db, clinic, athlete_id) is None:
        abort(404)  # not this clinic's, or not sharing: the same answer as no such runner
    form = ClinicSessionForm()
    if form.validate_on_submit() and form.on.data is not None:
        try:
            clinics.log_session(db, clinic, athlete_id, form.on.data, utcnow())
        except InputError as e:
            flash(str(e), "error")
        else:
            db.commit()
            flash(_("Session logged."), "info")
    else:
        flash(_("Give the date of the session."), "error")
    return redirect(url_for("clinic.dashboard"))


@bp.get("/export.csv")
@staff_required
def export(clinic: Clinic) -> Response:
    """The sharing runners' figures as a CSV file."""
    figures = current_app.config["CLINIC_SHARED_FIGURES"]  # the operator's decision
    roster = clinics.roster(get_session(), clinic, figures=figures)
    body = clinics.roster_csv(roster)
    day = dt.date.today().isoformat()
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{clinic.slug}-runners-{day}.csv"'},
    )


@bp.route("/settings", methods=["GET", "POST"])
@staff_required
def settings(clinic: Clinic) -> str | BaseResponse | tuple[str, int]:
    """The clinic's name, booking link and logo."""
    form = ClinicSettingsForm(obj=None if request.method == "POST" else clinic)
    if form.validate_on_submit():
        try:
            name = clinics.check_name(form.name.data or "")
            booking = clinics.check_booking_url(form.booking_url.data)
            upload = form.logo.data
            logo = upload.read(clinics.MAX_LOGO_BYTES + 1) if upload else None
            logo_type = clinics.check_logo(logo, upload.mimetype) if logo else None
        except InputError as e:
            form.form_errors.append(str(e))
        else:
            clinic.name, clinic.booking_url = name, booking
            if form.remove_logo.data:
                clinic.logo = clinic.logo_type = None
            elif logo:
                clinic.logo, clinic.logo_type = logo, logo_type
            get_session().commit()
            flash(_("Saved. Notes use the new details from the next run on."), "info")
            broken = clinic_notes.wordings_that_no_longer_fit(clinic)
            if broken:
                flash(
                    ngettext(
                        "With these details, your wording for %(num)s rule no longer fits a note"
                        " with its booking line; those notes would go out without the link."
                        " Shorten it on the Note wording page.",
                        "With these details, your wording for %(num)s rules no longer fits a"
                        " note with its booking line; those notes would go out without the link."
                        " Shorten them on the Note wording page.",
                        len(broken),
                    ),
                    "error",
                )
            return redirect(url_for("clinic.settings"))
    status = 400 if form.errors or form.form_errors else 200
    return render_template("clinic/settings.html", clinic=clinic, form=form), status


@bp.app_template_global()
def clinic_logo_url(clinic: Clinic) -> str | None:
    """Where a clinic's logo is served, if it has one."""
    return url_for("clinic.logo", slug=clinic.slug) if clinic.logo_type else None


@bp.get("/logo/<slug>")
def logo(slug: str) -> Response:
    """A clinic's logo (public: it is shown on its runners' pages and its invite page)."""
    clinic = clinics.find_clinic(get_session(), slug)
    if clinic is None or not clinic.logo or not clinic.logo_type:
        abort(404)
    response = Response(clinic.logo, mimetype=clinic.logo_type)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

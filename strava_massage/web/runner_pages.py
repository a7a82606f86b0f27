"""A logged-in runner's pages: dashboard, settings, sore area, sessions and clinic, account and
export."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
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
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from strava_massage.advice.state import NIGGLE_AREAS, metres_per_unit
from strava_massage.db import get_session
from strava_massage.models import (
    Activity,
    Athlete,
    Clinic,
    ConsentChange,
    MassageSession,
    Note,
    utcnow,
)
from strava_massage.services import clinics, dashboard, runner
from strava_massage.services.advising import clinic_of
from strava_massage.web import id_arg
from strava_massage.web.forms import ClinicSharingForm, MassageForm, NiggleForm, SettingsForm

bp = Blueprint("runner", __name__)
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    """Hand the view the logged-in runner; send a visitor to the start page instead."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        athlete_id = session.get("athlete_id")
        athlete = get_session().get(Athlete, athlete_id) if athlete_id is not None else None
        if athlete is None:
            # A runner deleted meanwhile (deauthorized at Strava) is logged out too.
            session.pop("athlete_id", None)
            flash(_("Connect with Strava to see your page."), "info")
            return redirect(url_for("pages.landing"))
        return view(athlete, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


@bp.get("/dashboard")
@login_required
def show_dashboard(athlete: Athlete) -> str:
    """Totals, the 16-week chart, the notes written so far, and the runner's clinic."""
    # A note id to page from; anything else (a huge number, a word) is the first page.
    before = request.args.get("before", type=id_arg)
    data = dashboard.load(get_session(), athlete, dashboard.runner_today(athlete), before)
    units = athlete.effective_units
    return render_template(
        "runner/dashboard.html",
        athlete=athlete,
        data=data,
        chart=dashboard.chart(data.weeks, data.threshold_m, metres_per_unit(units)),
        units=units,
        clinic=clinic_of(get_session(), athlete),
    )


@bp.get("/dashboard/import.json")
@login_required
def import_progress(athlete: Athlete) -> Response:
    """How far the history import is, for the dashboard's progress line."""
    runs = athlete.backfill_runs
    return jsonify(
        status=athlete.backfill_status,
        runs=runs,
        runs_text=ngettext("%(num)s run so far.", "%(num)s runs so far.", runs),
    )


def _settings_form(athlete: Athlete) -> SettingsForm:
    """The settings form, filled from the runner's row on GET and from the request on POST."""
    # The race distance in the units the page showed, even when this post changes them.
    form = SettingsForm(units=athlete.effective_units)
    if request.method == "GET":
        _fill_from(athlete, form)
    return form


def _sharing_form(athlete: Athlete, clinic: Clinic, formdata: bool = False) -> ClinicSharingForm:
    """The sharing form, from the request when it was posted, else from the runner's row."""
    if formdata:
        form = ClinicSharingForm()
    else:
        form = ClinicSharingForm(
            formdata=None,
            share=athlete.clinic_consent_at is not None,
            display_name=athlete.clinic_display_name or "",
        )
    if current_app.config["CLINIC_SHARED_FIGURES"]:
        label = _(
            "Share my weekly distance and massage sessions with %(clinic)s", clinic=clinic.name
        )
    else:
        label = _(
            "Share my massage sessions and a sore area I note with %(clinic)s", clinic=clinic.name
        )
    form.share.label.text = label
    return form


def _niggle_form(athlete: Athlete, today: dt.date) -> NiggleForm:
    """The sore-area form: the current area if one is active, and today's date."""
    niggle = runner.active_niggle(athlete, today)
    return NiggleForm(formdata=None, niggle_area=niggle.area if niggle else None, niggle_on=today)


def _render_settings(
    athlete: Athlete,
    form: SettingsForm,
    massage_form: MassageForm,
    sharing_form: ClinicSharingForm | None = None,
    niggle_form: NiggleForm | None = None,
) -> str:
    """The settings page with its forms, the sessions list and the runner's clinic."""
    clinic = clinic_of(get_session(), athlete)
    if clinic is not None and sharing_form is None:
        sharing_form = _sharing_form(athlete, clinic)
    today = dashboard.runner_today(athlete)
    niggle = runner.active_niggle(athlete, today)
    return render_template(
        "runner/settings.html",
        athlete=athlete,
        form=form,
        massage_form=massage_form,
        sessions=runner.massages(get_session(), athlete.id),
        today=today,
        clinic=clinic,
        sharing_form=sharing_form,
        niggle_form=niggle_form or _niggle_form(athlete, today),
        niggle=niggle,
        niggle_words=NIGGLE_AREAS[niggle.area] if niggle else None,
        niggle_until=runner.niggle_last_day(niggle) if niggle else None,
    )


def _saved_settings_form(athlete: Athlete) -> SettingsForm:
    """The settings form as saved, for a page answering another of its forms."""
    form = SettingsForm(formdata=None, units=athlete.effective_units)
    _fill_from(athlete, form)
    return form


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings(athlete: Athlete) -> str | BaseResponse | tuple[str, int]:
    """Show and change units, notes, target, disclaimer and next race."""
    form = _settings_form(athlete)
    if request.method == "POST":
        valid = form.validate_on_submit()
        # The rules run even when a field failed, so every problem shows at once.
        if _apply_settings(athlete, form) and valid:
            get_session().commit()
            flash(_("Saved. Your next note follows these settings."), "success")
            return redirect(url_for("runner.settings"))
        get_session().rollback()
        return _render_settings(athlete, form, MassageForm(formdata=None)), 400
    return _render_settings(athlete, form, MassageForm(formdata=None))


def _apply_settings(athlete: Athlete, form: SettingsForm) -> bool:
    """Apply the form through the runner rules; put each refusal next to its field."""
    units = None if form.units.data == "strava" else form.units.data
    typed = form.race_distance.data
    distance = float(typed) if typed is not None and not form.race_distance.errors else None
    today = dashboard.runner_today(athlete)
    race = (athlete, form.race_on.data, distance, today, form.distance_units)
    # The form checked types and ranges; the rules check what needs the runner (a past race).
    steps: list[tuple[Any, Callable[..., None], tuple[Any, ...]]] = [
        (form.units, runner.set_units, (athlete, units)),
        (form.target, runner.set_note_target, (athlete, form.target.data)),
        (form.disclaimer, runner.set_disclaimer, (athlete, form.disclaimer.data)),
        (form.race_on, runner.set_race, race),
    ]
    ok = True
    for field, apply, args in steps:
        try:
            apply(*args)
        except runner.InputError as e:
            field.errors = [*field.errors, str(e)]
            ok = False
    if distance is not None and form.race_on.data is None and not form.race_on.errors:
        form.race_on.errors = [*form.race_on.errors, _("Give the race's date too.")]
        ok = False
    athlete.notes_enabled = form.notes.data == "on"
    return ok


@bp.post("/settings/sessions")
@login_required
def add_session(athlete: Athlete) -> str | BaseResponse | tuple[str, int]:
    """Log a massage session; 'since your last massage' starts again from it."""
    massage_form = MassageForm()
    db = get_session()
    on = massage_form.on.data if massage_form.validate_on_submit() else None
    if on is not None:
        try:
            today = dashboard.runner_today(athlete)
            runner.log_massage(db, athlete, on, massage_form.place.data, today)
        except runner.InputError as e:
            massage_form.on.errors = [*massage_form.on.errors, str(e)]
        else:
            db.commit()
            flash(_("Session logged."), "success")
            return redirect(url_for("runner.settings") + "#sessions")
    # Show the saved settings, not the posted session fields, beside the session's error.
    return _render_settings(athlete, _saved_settings_form(athlete), massage_form), 400


@bp.post("/settings/niggle")
@login_required
def set_niggle(athlete: Athlete) -> str | BaseResponse | tuple[str, int]:
    """Note a sore area: the tips favour it for three weeks, or until the runner clears it."""
    niggle_form = NiggleForm()
    on = niggle_form.niggle_on.data if niggle_form.validate_on_submit() else None
    if on is not None:
        area = niggle_form.niggle_area.data or ""
        try:
            runner.set_niggle(athlete, area, on, dashboard.runner_today(athlete))
        except runner.InputError as e:
            niggle_form.niggle_on.errors = [*niggle_form.niggle_on.errors, str(e)]
        else:
            get_session().commit()
            flash(
                _("Saved. Your next tips favour your %(area)s.", area=NIGGLE_AREAS[area]), "success"
            )
            return redirect(url_for("runner.settings") + "#niggle")
    get_session().rollback()
    page = _render_settings(
        athlete, _saved_settings_form(athlete), MassageForm(formdata=None), None, niggle_form
    )
    return page, 400


@bp.post("/settings/niggle/clear")
@login_required
def clear_niggle(athlete: Athlete) -> BaseResponse:
    """Forget the sore area at once (CSRFProtect has checked the form's token)."""
    runner.clear_niggle(athlete)
    get_session().commit()
    flash(_("Cleared. Your tips no longer favour one area."), "success")
    return redirect(url_for("runner.settings") + "#niggle")


def _fill_from(athlete: Athlete, form: SettingsForm) -> None:
    """Fill the settings form from the row (when the request carried another form)."""
    form.units.data = athlete.units_override or "strava"
    form.notes.data = "on" if athlete.notes_enabled else "paused"
    form.target.data = athlete.note_target
    form.disclaimer.data = athlete.disclaimer or ""
    form.race_on.data = athlete.next_race_on
    distance = runner.race_distance(athlete, form.distance_units)
    form.race_distance.data = Decimal(f"{distance:.1f}") if distance is not None else None


@bp.post("/settings/sessions/<int:session_id>/remove")
@login_required
def remove_session(athlete: Athlete, session_id: int) -> BaseResponse:
    """Remove one of the runner's own sessions (another runner's id is simply not found).

    CSRFProtect has checked the form's token before this runs, as for every POST.
    """
    try:
        runner.remove_massage(get_session(), athlete.id, session_id)
    except runner.InputError:
        flash(_("That session was already gone."), "info")
    else:
        get_session().commit()
        flash(_("Session removed."), "success")
    return redirect(url_for("runner.settings") + "#sessions")


@bp.post("/settings/clinic/sharing")
@login_required
def clinic_sharing(athlete: Athlete) -> str | BaseResponse | tuple[str, int]:
    """Turn sharing with the runner's clinic on (with their name for it) or off, at once."""
    db = get_session()
    clinic = clinic_of(get_session(), athlete)
    if clinic is None:
        flash(_("You are not with a clinic, so there is nothing to share."), "info")
        return redirect(url_for("runner.settings"))
    form = _sharing_form(athlete, clinic, formdata=True)
    if form.validate_on_submit():
        share = bool(form.share.data)
        try:
            clinics.set_sharing(db, athlete, share, form.display_name.data, utcnow())
        except runner.InputError as e:
            form.display_name.errors = [*form.display_name.errors, str(e)]
        else:
            db.commit()
            log.info("clinic sharing athlete=%s clinic=%s shared=%s", athlete.id, clinic.id, share)
            if share:
                message = (
                    _("%(clinic)s now sees your weekly distance and sessions.", clinic=clinic.name)
                    if current_app.config["CLINIC_SHARED_FIGURES"]
                    else _(
                        "%(clinic)s now sees your sessions and a sore area you note.",
                        clinic=clinic.name,
                    )
                )
            else:
                message = _(
                    "Sharing is off: %(clinic)s no longer sees what you shared.",
                    clinic=clinic.name,
                )
            flash(message, "success")
            return redirect(url_for("runner.settings") + "#clinic")
    db.rollback()
    page = _render_settings(
        athlete, _saved_settings_form(athlete), MassageForm(formdata=None), form
    )
    return page, 400


@bp.route("/settings/clinic/leave", methods=["GET", "POST"])
@login_required
def leave_clinic(athlete: Athlete) -> str | BaseResponse:
    """Ask first, then unlink the runner from their clinic; sharing ends with it."""
    db = get_session()
    clinic = clinic_of(get_session(), athlete)
    if clinic is None:
        flash(_("You are not with a clinic."), "info")
        return redirect(url_for("runner.settings"))
    if request.method == "GET":
        return render_template("runner/confirm_leave_clinic.html", athlete=athlete, clinic=clinic)
    # CSRFProtect has checked the form's token before this runs, as for every POST.
    clinics.leave_clinic(db, athlete, utcnow())
    db.commit()
    log.info("athlete left clinic athlete=%s clinic=%s", athlete.id, clinic.id)
    flash(
        _(
            "You left %(clinic)s. It no longer sees anything of yours, and your notes no longer "
            "carry its name.",
            clinic=clinic.name,
        ),
        "success",
    )
    return redirect(url_for("runner.settings"))


@bp.get("/account")
@login_required
def account(athlete: Athlete) -> str:
    """Log out, export, and the way to disconnect."""
    return render_template("runner/account.html", athlete=athlete)


@bp.get("/account/delete")
@login_required
def confirm_delete(athlete: Athlete) -> str:
    """The confirmation step before disconnecting and deleting."""
    return render_template("runner/confirm_delete.html", athlete=athlete)


@bp.get("/account/export.json")
@login_required
def export(athlete: Athlete) -> Response:
    """Everything stored about the runner, as one JSON download (tokens only as a fact)."""
    db = get_session()

    def rows(model: Any, *order: Any) -> list[dict[str, Any]]:
        """The runner's rows of one table as plain dicts."""
        columns = [c.key for c in model.__table__.columns]
        query = select(model).where(model.athlete_id == athlete.id).order_by(*order)
        return [{c: getattr(r, c) for c in columns} for r in db.scalars(query)]

    profile = {c.key: getattr(athlete, c.key) for c in Athlete.__table__.columns}
    clinic = clinic_of(get_session(), athlete)
    body = {
        "exported_at": dt.datetime.now(dt.UTC),
        "runner": profile,
        "tokens": "stored encrypted for Strava access; not included in exports",
        "runs": rows(Activity, Activity.local_date, Activity.id),
        "notes": rows(Note, Note.id),
        "massage_sessions": rows(MassageSession, MassageSession.on, MassageSession.id),
        "clinic": None
        if clinic is None
        else {
            "name": clinic.name,
            "invite": clinic.slug,
            "joined_at": athlete.clinic_joined_at,
            "sharing_since": athlete.clinic_consent_at,
            "name_shown_to_clinic": athlete.clinic_display_name,
        },
        "consent_changes": _consent_history(athlete),
    }
    text = json.dumps(body, default=_json_value, indent=1, ensure_ascii=False)
    return Response(
        text,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="legwork-{athlete.id}.json"'},
    )


def _consent_history(athlete: Athlete) -> list[dict[str, Any]]:
    """Each time the runner turned sharing on or off, oldest first, with the clinic's name."""
    query = (
        select(ConsentChange, Clinic.name)
        .join(Clinic, Clinic.id == ConsentChange.clinic_id)
        .where(ConsentChange.athlete_id == athlete.id)
        .order_by(ConsentChange.at, ConsentChange.id)
    )
    return [
        {"clinic": name, "clinic_id": change.clinic_id, "shared": change.shared, "at": change.at}
        for change, name in get_session().execute(query)
    ]


def _json_value(value: Any) -> Any:
    """Dates and times as ISO 8601 strings."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")

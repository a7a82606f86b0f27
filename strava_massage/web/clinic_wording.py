"""A clinic's note wording: per-rule templates and thresholds, with a live preview.

Every view gets its clinic from `staff_required` (the logged-in staff member's), never from the
address; the checks themselves are plain functions in `clinic_notes` and `note_templates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from strava_massage.advice import KINDS, AdviceSettings, Units
from strava_massage.db import get_session
from strava_massage.domain.clinic_notes import (
    THRESHOLD_NAMES,
    THRESHOLDS,
    Threshold,
    check_template,
    check_thresholds,
    clinic_settings,
    normalise_source,
)
from strava_massage.domain.merge import make_block
from strava_massage.domain.note_templates import (
    DEFAULT_TEMPLATE,
    FILTERS,
    MAX_LINES,
    MAX_SOURCE_CHARS,
    VARIABLES,
    TemplateRefused,
)
from strava_massage.models import Clinic
from strava_massage.web.clinic_pages import staff_required

bp = Blueprint("clinic_wording", __name__, url_prefix="/clinic/wording")

# Each rule as the editor names it, and what it is for, in a clinic's terms.
RULE_TEXT: dict[str, tuple[Any, Any]] = {
    "post_race": (
        _l("After a race"),
        _l("The run was a race: the note suggests a recovery session within the next few days."),
    ),
    "pre_race": (
        _l("Race coming up"),
        _l("The runner's next race is a few days away: a light session now, nothing deep late."),
    ),
    "load_spike": (
        _l("Sudden jump in training"),
        _l(
            "This week is well above the last, or the last seven days well above the weeks "
            "before: overuse risk, so a preventive session (a warning only, for beginners)."
        ),
    ),
    "comeback": (
        _l("Back after a break"),
        _l(
            "The runner is back from ten or more days off and below their old volume: a "
            "welcome back and a tip for building up gradually, never a load alarm."
        ),
    ),
    "long_run": (
        _l("Long run"),
        _l(
            "A real long run (not a cutback one): a recovery session, and which muscles to ask for."
        ),
    ),
    "high_volume": (
        _l("Big week"),
        _l(
            "The last seven days are past the high-mileage mark and among the runner's "
            "biggest weeks: regular sessions pay off most."
        ),
    ),
    "monthly_checkin": (
        _l("Monthly check-in"),
        _l("A month and a good distance since the last session: a reminder to book the next."),
    ),
    "recovery_tip": (
        _l("Recovery tip"),
        _l(
            "No session is due: a self-care tip that fits the run (after a race or a long run, "
            "a workout, race week, an easy day)."
        ),
    ),
}
# What each variable holds and what each filter does, for the page's reference list.
VARIABLE_TEXT: dict[str, Any] = {
    "headline": _l("the rule's headline, for example “Big week: past 48 km”"),
    "body": _l("the advice itself, one or two sentences"),
    "reason": _l("the figures that made the rule fire, in the runner's units"),
    "clinic": _l("your clinic's name, as in your clinic details"),
    "kind": _l("the rule's short name, for example high_volume"),
}
FILTER_TEXT: dict[str, Any] = {
    "upper": _l("ALL CAPITALS"),
    "lower": _l("all small letters"),
    "title": _l("Each Word Capitalised"),
    "capitalize": _l("First letter capital, the rest small"),
    "trim": _l("spaces at either end removed"),
}
# How each threshold is labelled, and the unit shown after its box.
THRESHOLD_TEXT: dict[str, tuple[Any, str]] = {
    "high_volume_week_km": (_l("Big week, for runners in kilometres"), "km"),
    "high_volume_week_mi": (_l("Big week, for runners in miles"), "mi"),
    "long_run_factor": (_l("Long run: times the runner's average run"), _l("times")),
    "long_run_min_km": (_l("Long run: at least, in kilometres"), "km"),
    "long_run_min_mi": (_l("Long run: at least, in miles"), "mi"),
    "acwr_spike": (_l("Sudden jump: last 7 days over the usual week, times"), _l("times")),
    "checkin_days": (_l("Monthly check-in: days since the last session"), _l("days")),
    "checkin_km": (_l("Monthly check-in: distance since the last session, in kilometres"), "km"),
    "checkin_mi": (_l("Monthly check-in: distance since the last session, in miles"), "mi"),
    "week_jump": (_l("Sudden jump: this week over last week, times"), _l("times")),
    "session_gap_days": (_l("Days between two session suggestions, at least"), _l("days")),
    "peak_session_gap_days": (
        _l("Days between two session suggestions in the runner's peak weeks, at least"),
        _l("days"),
    ),
}


@dataclass(frozen=True)
class RuleView:
    """One rule's part of the page: its wording as shown, and the preview or why not."""

    kind: str
    title: Any
    purpose: Any
    source: str
    custom: bool  # the clinic has its own wording saved for this rule
    draft: bool  # the text shown is not what is saved (a refused save or a preview)
    preview: str | None  # the note block, when the wording can be used
    problem: str | None  # why it cannot, when it cannot
    error: bool  # the problem came from a save or preview: mark the field invalid


@dataclass(frozen=True)
class ThresholdView:
    """One threshold's field: the value in the box, the default and any refusal."""

    name: str
    label: Any
    unit: Any
    value: str
    default: str
    error: str | None


def _units(asked: object = None) -> Units:
    """The sample runner's units: kilometres unless miles are asked for (by the caller, else by
    the form or the address)."""
    asked = request.values.get("units") if asked is None else asked
    return "mi" if asked == "mi" else "km"


def _number(value: float) -> str:
    """A threshold as typed: no trailing .0."""
    return f"{value:g}"


def _preview(clinic: Clinic, kind: str, source: str, settings: AdviceSettings, units: Units) -> str:
    """The sample runner's note block with this wording; TemplateRefused if it cannot be used."""
    note = check_template(kind, source, clinic.name, clinic.booking_url, settings, units)
    return make_block(note)


def _rule_views(
    clinic: Clinic, drafts: dict[str, str], previews: dict[str, str], refusals: dict[str, str]
) -> list[RuleView]:
    """Every rule's section: drafts and their previews or refusals win over what is saved."""
    settings = clinic_settings(clinic.advice_overrides)
    saved = clinic.note_templates or {}
    views = []
    for kind in KINDS:
        title, purpose = RULE_TEXT[kind]
        source = drafts.get(kind, saved.get(kind, DEFAULT_TEMPLATE))
        preview, problem = previews.get(kind), refusals.get(kind)
        if preview is None and problem is None:
            # A saved wording passed this check, but the clinic's name, link or thresholds may
            # have changed since: say so here rather than let notes quietly lose the link.
            try:
                preview = _preview(clinic, kind, source, settings, _units())
            except TemplateRefused as e:
                problem = _refusal(e)
        views.append(
            RuleView(
                kind=kind,
                title=title,
                purpose=purpose,
                source=source,
                custom=kind in saved,
                draft=kind in drafts,
                preview=preview,
                problem=problem,
                error=kind in refusals,
            )
        )
    return views


def _threshold_views(
    clinic: Clinic, typed: dict[str, str] | None, refused: dict[str, Threshold]
) -> list[ThresholdView]:
    """The thresholds' fields, with what was typed (after a refusal) or what is saved."""
    saved = clinic.advice_overrides or {}
    views = []
    for t in THRESHOLDS:
        label, unit = THRESHOLD_TEXT[t.name]
        if typed is not None:
            value = typed.get(t.name, "")
        else:
            value = _number(float(saved[t.name])) if t.name in saved else ""
        error = None
        if t.name in refused:
            low, high = _number(t.low), _number(t.high)
            if t.whole:
                error = _("Give a whole number from %(low)s to %(high)s.", low=low, high=high)
            else:
                error = _("Give a number from %(low)s to %(high)s.", low=low, high=high)
        views.append(ThresholdView(t.name, label, unit, value, _number(t.default), error))
    return views


def _page(
    clinic: Clinic,
    *,
    drafts: dict[str, str] | None = None,
    previews: dict[str, str] | None = None,
    refusals: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    refused: dict[str, Threshold] | None = None,
) -> str:
    """The editor page, with any draft, preview or refusal from the request in place."""
    # After a refusal, a line at the top says so and leads to the field: the page is long.
    summary = None
    if refusals:
        kind = next(iter(refusals))
        text = _("See why the “%(rule)s” wording was refused.", rule=RULE_TEXT[kind][0])
        summary = (f"source-{kind}", text)
    elif refused:
        summary = (f"t-{next(iter(refused))}", _("See the numbers marked below."))
    return render_template(
        "clinic/wording.html",
        clinic=clinic,
        rules=_rule_views(clinic, drafts or {}, previews or {}, refusals or {}),
        thresholds=_threshold_views(clinic, typed, refused or {}),
        summary=summary,
        variables=[(name, VARIABLE_TEXT[name]) for name in VARIABLES],
        filters=[(name, FILTER_TEXT[name]) for name in sorted(FILTERS)],
        max_lines=MAX_LINES,
        max_chars=MAX_SOURCE_CHARS,
        units=_units(),
    )


def _refusal(e: TemplateRefused) -> str:
    """A refusal as the page says it (some reasons come with their own full stop)."""
    return str(_("This wording cannot be used: %(reason)s.", reason=str(e).rstrip(".")))


def _back(kind: str | None = None) -> BaseResponse:
    """To the editor, in the same units, at the rule's section (or the thresholds)."""
    units = _units()
    target = url_for("clinic_wording.edit", units=units if units == "mi" else None)
    return redirect(target + (f"#rule-{kind}" if kind else "#thresholds"))


@bp.get("")
@staff_required
def edit(clinic: Clinic) -> str:
    """The wording editor: every rule's wording with its preview, the reference, thresholds."""
    return _page(clinic)


@bp.post("/rules/<kind>")
@staff_required
def save(clinic: Clinic, kind: str) -> str | BaseResponse | tuple[str, int]:
    """Save a rule's wording once it passes the check; or, for the Preview button, show it."""
    if kind not in KINDS:
        abort(404)
    source = normalise_source(request.form.get("source", ""))
    settings = clinic_settings(clinic.advice_overrides)
    try:
        preview = _preview(clinic, kind, source, settings, _units())
    except TemplateRefused as e:
        return _page(clinic, drafts={kind: source}, refusals={kind: _refusal(e)}), 400
    if request.form.get("action") == "preview":
        return _page(clinic, drafts={kind: source}, previews={kind: preview})
    # A new dict, so the JSON column is seen as changed.
    clinic.note_templates = {**(clinic.note_templates or {}), kind: source}
    get_session().commit()
    rule = RULE_TEXT[kind][0]
    flash(_("Saved: %(rule)s notes use this wording from the next run on.", rule=rule), "info")
    return _back(kind)


@bp.post("/rules/<kind>/reset")
@staff_required
def reset(clinic: Clinic, kind: str) -> BaseResponse:
    """Go back to the service's own wording for one rule."""
    if kind not in KINDS:
        abort(404)
    templates = dict(clinic.note_templates or {})
    if templates.pop(kind, None) is not None:
        clinic.note_templates = templates
        get_session().commit()
    flash(_("%(rule)s notes use the default wording again.", rule=RULE_TEXT[kind][0]), "info")
    return _back(kind)


@bp.post("/preview")
@staff_required
def preview(clinic: Clinic) -> tuple[Response, int]:
    """The live preview: the note for the sample runner as JSON, or why it would be refused.

    CSRFProtect checks the X-CSRFToken header before this runs, as for any POST.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="send a JSON object with kind and source"), 400
    kind, source = body.get("kind"), body.get("source")
    if kind not in KINDS or not isinstance(source, str):
        return jsonify(error="unknown rule kind, or source is not text"), 400
    settings = clinic_settings(clinic.advice_overrides)
    try:
        note = _preview(clinic, kind, normalise_source(source), settings, _units(body.get("units")))
    except TemplateRefused as e:
        return jsonify(refused=_refusal(e)), 422
    return jsonify(note=note), 200


@bp.post("/thresholds")
@staff_required
def thresholds(clinic: Clinic) -> str | BaseResponse | tuple[str, int]:
    """Save the clinic's thresholds; an empty box is the default. All or nothing."""
    typed = {t.name: request.form.get(t.name, "").strip() for t in THRESHOLDS}
    overrides, refused = check_thresholds(typed)
    if refused:
        return _page(clinic, typed=typed, refused=refused), 400
    # Only the numbers this form shows are replaced; anything else set for the clinic stays.
    kept = {k: v for k, v in (clinic.advice_overrides or {}).items() if k not in THRESHOLD_NAMES}
    clinic.advice_overrides = {**kept, **overrides}
    get_session().commit()
    flash(_("Thresholds saved: your runners' next notes follow them."), "info")
    return _back()

"""A clinic's note wording: per-rule templates and thresholds, with a live preview.

(Being built: see issue 7.)
"""

from __future__ import annotations

from flask import Blueprint, render_template

from strava_massage.clinic_pages import staff_required
from strava_massage.models import Clinic

bp = Blueprint("clinic_wording", __name__, url_prefix="/clinic/wording")


@bp.get("")
@staff_required
def edit(clinic: Clinic) -> str:
    """The wording editor."""
    return render_template("clinic/wording.html", clinic=clinic)

"""The runner's forms: field types and CSRF here, the rules themselves in `runner`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, RadioField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs predate 3.3
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from strava_massage.runner import MAX_DISCLAIMER


class SettingsForm(FlaskForm):  # type: ignore[misc]
    """Units, notes on or paused, where notes go, the disclaimer and the next race."""

    units = RadioField(
        _l("Units"),
        choices=[
            SelectChoice("strava", _l("As in my Strava settings")),
            SelectChoice("mi", _l("Miles")),
            SelectChoice("km", _l("Kilometres")),
        ],
        default="strava",
    )
    notes = RadioField(
        _l("Notes on my runs"),
        choices=[SelectChoice("on", _l("On")), SelectChoice("paused", _l("Paused"))],
        default="on",
    )
    target = RadioField(
        _l("Where the note goes"),
        choices=[
            SelectChoice("description", _l("In the description (whoever can see the run)")),
            SelectChoice("private_note", _l("In the run's private notes (only you)")),
        ],
        default="description",
    )
    disclaimer = StringField(
        _l("A line added under every note (optional)"),
        validators=[Optional(), Length(max=MAX_DISCLAIMER)],
    )
    race_on = DateField(_l("Next race: date"), validators=[Optional()])
    race_km = DecimalField(
        _l("Next race: distance in km (42.2 for a marathon)"),
        places=1,
        validators=[Optional(), NumberRange(min=0.1, max=400)],
    )


class MassageForm(FlaskForm):  # type: ignore[misc]
    """A massage or physio session that happened."""

    on = DateField(_l("Date of the session"), validators=[InputRequired()])
    place = StringField(_l("Where (optional)"), validators=[Optional(), Length(max=120)])

"""The forms: field types and CSRF here, the rules themselves in `runner` and `clinics`."""

from __future__ import annotations

from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs predate 3.3
from wtforms.validators import (
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from strava_massage.advice import Units
from strava_massage.advice.state import NIGGLE_AREAS
from strava_massage.services.clinics import MAX_NAME
from strava_massage.services.runner import MAX_DISCLAIMER, MAX_RACE


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
    # In the runner's units: __init__ sets the label and the range for them.
    race_distance = DecimalField(
        _l("Next race: distance in km (42.2 for a marathon)"),
        places=1,
        validators=[Optional(), NumberRange(min=0.1, max=MAX_RACE["km"])],
    )

    def __init__(self, *args: Any, units: Units = "km", **kwargs: Any) -> None:
        """The form for a runner reading distances in `units` (mi or km)."""
        super().__init__(*args, **kwargs)
        self.distance_units: Units = units
        field = self.race_distance
        field.label.text = RACE_LABELS[units]
        top = MAX_RACE[units]
        field.validators = [Optional(), NumberRange(min=0.1, max=top)]
        field.flags.max = top  # the input's max attribute, rendered from the flags


# The race distance's label, in the unit the runner reads distances in.
RACE_LABELS: dict[Units, LazyString] = {
    "km": _l("Next race: distance in km (42.2 for a marathon)"),
    "mi": _l("Next race: distance in miles (26.2 for a marathon)"),
}


class MassageForm(FlaskForm):  # type: ignore[misc]
    """A massage or physio session that happened."""

    on = DateField(_l("Date of the session"), validators=[InputRequired()])
    place = StringField(_l("Where (optional)"), validators=[Optional(), Length(max=120)])


def niggle_words(area: str) -> str:
    """A sore area as the settings page names it: the notes' words, capitalised."""
    words = NIGGLE_AREAS[area]
    return words[:1].upper() + words[1:]


class NiggleForm(FlaskForm):  # type: ignore[misc]
    """A sore area and the day it started; the view sets the date to the runner's today."""

    # Named apart from the session form's `on`: both are on the settings page, ids must differ.
    niggle_area = SelectField(
        _l("Where"),
        choices=[SelectChoice(key, niggle_words(key)) for key in NIGGLE_AREAS],
        validators=[InputRequired()],
    )
    niggle_on = DateField(_l("Sore since"), validators=[InputRequired()])


class StaffLoginForm(FlaskForm):  # type: ignore[misc]
    """A clinic staff member's email and password."""

    email = StringField(_l("Email"), validators=[InputRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=200)])


class NewPasswordForm(FlaskForm):  # type: ignore[misc]
    """A new password, typed twice."""

    password = PasswordField(
        _l("New password (at least 10 characters)"),
        validators=[InputRequired(), Length(min=10, max=200)],
    )
    confirm = PasswordField(
        _l("The same password again"),
        validators=[InputRequired(), EqualTo("password", _l("The two passwords differ."))],
    )


class ClinicSessionForm(FlaskForm):  # type: ignore[misc]
    """A session the clinic gave a runner."""

    on = DateField(_l("Date of the session"), validators=[InputRequired()])


class ClinicSettingsForm(FlaskForm):  # type: ignore[misc]
    """The clinic's name, booking link and logo as runners see them."""

    name = StringField(_l("Clinic name"), validators=[InputRequired(), Length(max=80)])
    booking_url = StringField(
        _l("Booking link (optional)"), validators=[Optional(), Length(max=300)]
    )
    logo = FileField(_l("Logo (optional; PNG or JPEG, at most 200 KB)"))
    remove_logo = BooleanField(_l("Remove the logo"))


class ClinicSharingForm(FlaskForm):  # type: ignore[misc]
    """Sharing with the runner's clinic on or off, and the name the clinic knows them by."""

    # The view puts the clinic's name into this label; the text here is the fallback.
    share = BooleanField(_l("Share with my clinic"))
    display_name = StringField(
        _l("Your name as the clinic knows you"), validators=[Length(max=MAX_NAME)]
    )

    def validate_display_name(self, field: StringField) -> None:
        """A name is needed to share: it is all the clinic has to tell its runners apart."""
        if self.share.data and not (field.data or "").strip():
            raise ValidationError(_l("Give the name your clinic knows you by to share with it."))

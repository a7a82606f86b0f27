"""Advice engine: plain functions that turn one run's training state into one note (stdlib only)."""

from strava_massage.advice.rules import (
    HIGH_VOLUME,
    KINDS,
    LOAD_SPIKE,
    LONG_RUN,
    MONTHLY_CHECKIN,
    POST_RACE,
    PRE_RACE,
    RECOVERY_TIP,
    SESSION_KINDS,
    SESSION_RULES,
    acwr,
    advise,
    is_long_run,
    situation_tags,
)
from strava_massage.advice.settings import DEFAULTS, AdviceSettings
from strava_massage.advice.state import (
    METRES_PER_MILE,
    Advice,
    PastNote,
    TrainingState,
    Units,
    format_distance,
    to_units,
)
from strava_massage.advice.tips import TIPS, TIPS_BY_ID, Tip, pick_tip

__all__ = [
    "DEFAULTS",
    "HIGH_VOLUME",
    "KINDS",
    "LOAD_SPIKE",
    "LONG_RUN",
    "METRES_PER_MILE",
    "MONTHLY_CHECKIN",
    "POST_RACE",
    "PRE_RACE",
    "RECOVERY_TIP",
    "SESSION_KINDS",
    "SESSION_RULES",
    "TIPS",
    "TIPS_BY_ID",
    "Advice",
    "AdviceSettings",
    "PastNote",
    "Tip",
    "TrainingState",
    "Units",
    "acwr",
    "advise",
    "format_distance",
    "is_long_run",
    "pick_tip",
    "situation_tags",
    "to_units",
]

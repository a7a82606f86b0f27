"""Every number the advice rules use, in one place (override with dataclasses.replace)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from strava_massage.advice.state import METRES_PER_KM, METRES_PER_MILE, RUN_TYPES, Units


@dataclass(frozen=True)
class AdviceSettings:
    """Thresholds, windows and cadence of the advice rules (recovery-knowledge.md, 2nd version)."""

    # F3: massage pays off most above about 30 mi / 48 km a week. Rule 5 also needs the 7-day
    # distance in the top quarter of the runner's own weeks of the last peak_weeks weeks.
    high_volume_week_mi: float = 30.0
    high_volume_week_km: float = 48.0
    peak_weeks: int = 12
    peak_share: float = 0.25  # the top quarter
    peak_min_weeks: int = 4  # fewer complete weeks than this: no peak can be told apart
    # Long run: tagged, or at least long_run_factor times the average run of the last 4 weeks and
    # at least this far; and at least long_run_of_longest of the longest run of the last 6 weeks
    # (a cutback long run is not one).
    long_run_factor: float = 1.5
    long_run_min_mi: float = 10.0
    long_run_min_km: float = 16.0
    long_run_of_longest: float = 0.9
    long_run_lookback_days: int = 42
    # L2: this week so far over week_jump x the last complete week. L1: the 7-day distance over
    # acwr_spike x the weekly average of the four weeks before. Both need 3 weeks of history.
    week_jump: float = 1.3
    acwr_spike: float = 1.5
    baseline_weeks: int = 4  # "the four weeks before", and a runner's usual week
    acwr_min_history_days: int = 21
    load_alarm_gap_days: int = 7  # one load alarm a week is enough
    # A layoff: this many days or more without a run. Its weeks are left out of the load
    # baselines, and a runner back from one within comeback_days is in a comeback until their
    # 7-day distance is back at their weekly average from before the break.
    layoff_days: int = 10
    comeback_days: int = 28
    # T1/L3: a light session 3-7 days before a race; nothing deep in the last 48 hours, when no
    # other rule suggests a session either.
    pre_race_min_days: int = 3
    pre_race_max_days: int = 7
    pre_race_no_deep_hours: int = 48
    # T2/L3: after a half marathon or longer, a light session in 2-3 days. Races under
    # half_race_min_km are short; from long_race_min_km on, marathon and longer.
    post_race_session_min_days: int = 2
    post_race_session_max_days: int = 3
    half_race_min_km: float = 18.0
    long_race_min_km: float = 38.0
    after_race_days: int = 7  # tips fit "after a race" this long
    # An untagged run on a race date the runner set is the race when it is the day's longest and,
    # if they gave the race's distance, at least this share of it (not the warm-up).
    race_day_min_share: float = 0.75
    # F1: at least one session a month for serious runners.
    checkin_days: int = 30
    checkin_mi: float = 100.0
    checkin_km: float = 160.0
    # Cadence: at most one session suggestion every session_gap_days, every peak_session_gap_days
    # in a peak week (F2); none within after_massage_days of a logged massage (post-race aside).
    session_gap_days: int = 14
    peak_session_gap_days: int = 7
    after_massage_days: int = 3
    # The long-run and big-week notes each wait this long before coming again, so a runner's
    # suggestions vary (and a peak block is not the same note every week).
    same_rule_gap_days: int = 14
    # In the days before a race the runner set, only the race notes suggest a session: the
    # pre-race one (3-7 days out) is the session to book, and nothing deep in the last 48 hours.
    race_hold_days: int = 10
    # Beginners (under this weekly average) get session suggestions for races and the monthly
    # check-in only.
    beginner_week_km: float = 30.0
    # No tip repeats within this many of the runner's most recent notes; the rules look at this
    # many notes back for the cadence and the last wording of each rule.
    no_repeat_notes: int = 10
    notes_looked_back: int = 40
    # A sore area the runner reported shapes their tips for this long.
    niggle_days: int = 21
    # Strava sport types counted as running.
    sport_types: tuple[str, ...] = RUN_TYPES

    def high_volume_m(self, units: Units) -> float:
        """Weekly high-volume threshold in metres for a runner using these units."""
        return _metres(self.high_volume_week_mi, self.high_volume_week_km, units)

    def long_run_min_m(self, units: Units) -> float:
        """Minimum untagged long-run distance in metres."""
        return _metres(self.long_run_min_mi, self.long_run_min_km, units)

    def checkin_m(self, units: Units) -> float:
        """Distance since the last massage, in metres, that makes a monthly check-in due."""
        return _metres(self.checkin_mi, self.checkin_km, units)

    def history_days(self) -> int:
        """How many days before a run the rules look back at runs (TrainingState.past_runs)."""
        # The peak weeks before this run's week; a comeback's break and the weeks before it.
        return max(7 * (self.peak_weeks + 1), 2 * self.comeback_days, self.long_run_lookback_days)

    def counts(self, sport_type: str) -> bool:
        """Whether an activity of this Strava sport type counts as running."""
        return sport_type in self.sport_types


def _metres(miles: float, km: float, units: Units) -> float:
    """Pick the threshold written for the runner's units and convert it to metres."""
    # Thresholds are set per unit (30 mi vs 48 km) so runners see round numbers in their notes.
    return miles * METRES_PER_MILE if units == "mi" else km * METRES_PER_KM


def threshold_text(miles: float, km: float, units: Units) -> str:
    """Format a threshold as the runner sees it, e.g. "30 mi" or "48 km"."""
    return f"{miles if units == 'mi' else km:g} {units}"


DEFAULTS = AdviceSettings()
SETTING_NAMES = frozenset(f.name for f in fields(AdviceSettings))


def with_overrides(base: AdviceSettings, overrides: Mapping[str, Any]) -> AdviceSettings:
    """`base` with the stored overrides it knows; a name it does not know (a setting since
    renamed or removed) is passed over rather than stopping the runner's notes."""
    known = {k: v for k, v in overrides.items() if k in SETTING_NAMES}
    return replace(base, **known) if known else base

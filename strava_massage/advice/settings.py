"""Every number the advice rules use, in one place (override with dataclasses.replace)."""

from __future__ import annotations

from dataclasses import dataclass

from strava_massage.advice.state import METRES_PER_KM, METRES_PER_MILE, Units


@dataclass(frozen=True)
class AdviceSettings:
    """Thresholds and windows for the advice rules; defaults follow recovery-knowledge.md."""

    # F3: massage pays off most above about 30 mi / 48 km a week.
    high_volume_week_mi: float = 30.0
    high_volume_week_km: float = 48.0
    # Long run: at least this many times the average recent run, and at least this far.
    long_run_factor: float = 1.5
    long_run_min_mi: float = 10.0
    long_run_min_km: float = 16.0
    # L1: acute:chronic ratio above 1.5 raises injury risk; needs 3 weeks of history to mean much.
    acwr_spike: float = 1.5
    acwr_min_history_days: int = 21
    # T1/L3: a light session 2-7 days before a race; nothing deep in the last 48 h.
    pre_race_min_days: int = 2
    pre_race_max_days: int = 7
    pre_race_no_deep_hours: int = 48
    # T2/L3: after a race, a recovery session within 1-3 days.
    post_race_session_min_days: int = 1
    post_race_session_max_days: int = 3
    # F1: at least one session a month for serious runners.
    checkin_days: int = 30
    checkin_mi: float = 100.0
    checkin_km: float = 160.0
    # At most one session suggestion per runner every cooldown_days days.
    cooldown_days: int = 5
    # Rule kinds allowed to suggest a session even inside the cooldown (none, per the rules table;
    # a clinic may add "post_race").
    cooldown_exempt: frozenset[str] = frozenset()
    # No tip repeats within this many of the runner's most recent notes.
    no_repeat_notes: int = 10
    # Strava sport types counted as running.
    sport_types: tuple[str, ...] = ("Run", "TrailRun", "VirtualRun")

    def high_volume_m(self, units: Units) -> float:
        """Weekly high-volume threshold in metres for a runner using these units."""
        return _metres(self.high_volume_week_mi, self.high_volume_week_km, units)

    def long_run_min_m(self, units: Units) -> float:
        """Minimum untagged long-run distance in metres."""
        return _metres(self.long_run_min_mi, self.long_run_min_km, units)

    def checkin_m(self, units: Units) -> float:
        """Distance since the last massage, in metres, that makes a monthly check-in due."""
        return _metres(self.checkin_mi, self.checkin_km, units)

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

"""The seven advice rules from recovery-knowledge.md, and advise() which picks one note per run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from strava_massage.advice.settings import DEFAULTS, AdviceSettings, threshold_text
from strava_massage.advice.state import (
    Advice,
    PastNote,
    TrainingState,
    format_distance,
)
from strava_massage.advice.tips import pick_tip

POST_RACE = "post_race"
PRE_RACE = "pre_race"
LOAD_SPIKE = "load_spike"
LONG_RUN = "long_run"
HIGH_VOLUME = "high_volume"
MONTHLY_CHECKIN = "monthly_checkin"
RECOVERY_TIP = "recovery_tip"

# Priority order: the first rule that fires wins.
KINDS: tuple[str, ...] = (
    POST_RACE,
    PRE_RACE,
    LOAD_SPIKE,
    LONG_RUN,
    HIGH_VOLUME,
    MONTHLY_CHECKIN,
    RECOVERY_TIP,
)
SESSION_KINDS = frozenset(KINDS) - {RECOVERY_TIP}

# Strava workout_type values for runs.
WORKOUT_RACE = 1
WORKOUT_LONG_RUN = 2
WORKOUT_WORKOUT = 3

Rule = Callable[[TrainingState, AdviceSettings], Advice | None]


# --- small helpers ---------------------------------------------------------------------------


def _dist(state: TrainingState, metres: float) -> str:
    """A distance in this runner's units."""
    return format_distance(metres, state.units)


def _duration(seconds: int) -> str:
    """Format a moving time as h:mm:ss (or m:ss under an hour)."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _days(n: int) -> str:
    """'1 day' / 'n days'."""
    return f"{n} day" if n == 1 else f"{n} days"


def _other_notes(state: TrainingState) -> tuple[PastNote, ...]:
    """Earlier notes, minus any written for this very activity (a repeated job must not see it)."""
    return tuple(n for n in state.recent_notes if n.activity_id != state.activity_id)


def days_to_race(state: TrainingState) -> int | None:
    """Days from this run to the runner's next race, or None if no race is set."""
    if state.next_race_date is None:
        return None
    return (state.next_race_date - state.local_date).days


def acwr(state: TrainingState, settings: AdviceSettings) -> float | None:
    """Acute:chronic workload ratio (L1), or None without enough history to trust it."""
    # L1 (Gabbett 2016): 7-day load over the 28-day weekly average. With under three weeks of
    # history the chronic side is mostly empty and every run would look like a spike.
    if state.history_days < settings.acwr_min_history_days:
        return None
    chronic = state.rolling28_m / 4
    if chronic <= 0:
        return None
    return state.rolling7_m / chronic


def recent_average_m(state: TrainingState) -> float | None:
    """Average distance of the runs in the 28 days before this one, or None if there were none."""
    runs = state.recent_runs_m
    return sum(runs) / len(runs) if runs else None


def is_long_run(state: TrainingState, settings: AdviceSettings) -> bool:
    """Tagged as a long run, or clearly longer than usual and long in absolute terms."""
    if state.workout_type == WORKOUT_LONG_RUN:
        return True
    average = recent_average_m(state)
    if average is None or average <= 0:
        return False
    return (
        state.distance_m >= settings.long_run_factor * average
        and state.distance_m >= settings.long_run_min_m(state.units)
    )


def situation_tags(state: TrainingState, settings: AdviceSettings) -> frozenset[str]:
    """The situations this run is in, used to pick a fitting tip."""
    tags: set[str] = set()
    if state.workout_type == WORKOUT_RACE:
        tags.add("post_race")
    if state.workout_type == WORKOUT_WORKOUT:
        tags.add("workout")
    race_in = days_to_race(state)
    if race_in is not None and 0 <= race_in <= settings.pre_race_max_days:
        tags.add("pre_race")
    if is_long_run(state, settings):
        tags.add("long_run")
    ratio = acwr(state, settings)
    if state.week_m >= settings.high_volume_m(state.units) or (
        ratio is not None and ratio > settings.acwr_spike
    ):
        tags.add("heavy_week")
    return frozenset(tags or {"easy_day"})


def _last_session_in_cooldown(
    state: TrainingState, settings: AdviceSettings
) -> tuple[PastNote, int] | None:
    """The most recent session suggestion less than cooldown_days before this run, if any."""
    for note in _other_notes(state):
        if not note.is_session:
            continue
        ago = (state.local_date - note.local_date).days
        # Notes dated after this run (an old run processed late) don't hold it back.
        if 0 <= ago < settings.cooldown_days:
            return note, ago
    return None


def _same_iso_week(a: date, b: date) -> bool:
    """Whether two local dates fall in the same ISO (Monday-Sunday) week."""
    return a.isocalendar()[:2] == b.isocalendar()[:2]


# --- the rules, in priority order --------------------------------------------------------------


def post_race(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 1: a race was run; suggest a recovery session in the next 1-3 days (T2, L3)."""
    if state.workout_type != WORKOUT_RACE:
        return None
    window = f"{settings.post_race_session_min_days}-{settings.post_race_session_max_days} days"
    return Advice(
        kind=POST_RACE,
        is_session=True,
        headline="Race done: time to recover",
        reason=f"race, {_dist(state, state.distance_m)} in {_duration(state.moving_time_s)}",
        body=(
            f"Well raced. Book a recovery-focused massage in the next {window} to ease tight "
            "spots and fatigue, and keep any running gentle until then."
        ),
        fact_ids=("T2", "L3"),
        tip_id=None,
    )


def pre_race(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 2: a race is 2-7 days away; a light session now, nothing deep late (T1, L3)."""
    race_date = state.next_race_date
    if race_date is None:
        return None
    race_in = (race_date - state.local_date).days
    if not settings.pre_race_min_days <= race_in <= settings.pre_race_max_days:
        return None
    window_start = race_date.toordinal() - settings.pre_race_max_days
    # Once per race: a pre-race note already written inside this race's window is enough.
    if any(
        n.kind == PRE_RACE and n.local_date.toordinal() >= window_start for n in _other_notes(state)
    ):
        return None
    return Advice(
        kind=PRE_RACE,
        is_session=True,
        headline=f"Race in {_days(race_in)}: book a light massage",
        reason=f"your race on {race_date.isoformat()} is {_days(race_in)} away",
        body=(
            "A light massage this week can ease tension and free up your stride for race day. "
            f"Nothing deep in the last {settings.pre_race_no_deep_hours} hours before the start."
        ),
        fact_ids=("T1", "L3"),
        tip_id=None,
    )


def load_spike(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 3: acute:chronic ratio above 1.5 with 3+ weeks of history (L1, L2, M3)."""
    ratio = acwr(state, settings)
    if ratio is None or ratio <= settings.acwr_spike:
        return None
    return Advice(
        kind=LOAD_SPIKE,
        is_session=True,
        headline="Load spike: look after your legs",
        reason=(
            f"last 7 days {_dist(state, state.rolling7_m)}, {ratio:.2f}x your 28-day weekly "
            f"average of {_dist(state, state.rolling28_m / 4)}"
        ),
        body=(
            "A jump this big raises the risk of overuse injuries such as shin splints, Achilles "
            "or IT band trouble. Ease off a little; a preventive massage can catch tight spots."
        ),
        fact_ids=("L1", "L2", "M3"),
        tip_id=None,
    )


def long_run(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 4: a tagged or clearly long run; recovery session for the big muscles (T2, M6)."""
    if not is_long_run(state, settings):
        return None
    average = recent_average_m(state)
    if state.workout_type == WORKOUT_LONG_RUN or average is None:
        reason = f"long run, {_dist(state, state.distance_m)}"
    else:
        reason = (
            f"{_dist(state, state.distance_m)}, {state.distance_m / average:.1f}x your "
            f"average run of {_dist(state, average)} over the last 28 days"
        )
    return Advice(
        kind=LONG_RUN,
        is_session=True,
        headline="Long run done: treat your legs",
        reason=reason,
        body=(
            "A recovery-focused massage in the next day or two helps tired legs bounce back. "
            "Ask for calves, hamstrings, quads, glutes and hip flexors."
        ),
        fact_ids=("T2", "M6"),
        tip_id=None,
    )


def high_volume(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 5: this run takes the week over 30 mi / 48 km, once per ISO week (F3, F2)."""
    threshold = settings.high_volume_m(state.units)
    # Fires only on the run that crosses the line, so later runs that week stay quiet.
    if not state.week_m - state.distance_m < threshold <= state.week_m:
        return None
    # An edited or re-uploaded run can cross again; one high-volume note per week is enough.
    if any(
        n.kind == HIGH_VOLUME and _same_iso_week(n.local_date, state.local_date)
        for n in _other_notes(state)
    ):
        return None
    mark = threshold_text(settings.high_volume_week_mi, settings.high_volume_week_km, state.units)
    return Advice(
        kind=HIGH_VOLUME,
        is_session=True,
        headline=f"Big week: past {mark}",
        reason=f"this week {_dist(state, state.week_m)}, past the {mark} mark with this run",
        body=(
            "At this mileage regular massage pays off most. In peak weeks, aim for a session "
            "every week or two to keep tightness from building up."
        ),
        fact_ids=("F3", "F2"),
        tip_id=None,
    )


def monthly_checkin(state: TrainingState, settings: AdviceSettings) -> Advice | None:
    """Priority 6: 30+ days and 100 mi / 160 km since the last logged session (F1)."""
    if state.since_massage_days < settings.checkin_days:
        return None
    if state.since_massage_m < settings.checkin_m(state.units):
        return None
    # Monthly means monthly: a runner who has not logged the session yet is reminded again only
    # after another full period, not at every run once the cooldown ends.
    last = state.last_checkin_date
    if last is not None and (state.local_date - last).days < settings.checkin_days:
        return None
    since = "your last massage" if state.last_massage_date else "you connected"
    return Advice(
        kind=MONTHLY_CHECKIN,
        is_session=True,
        headline="Time for your monthly massage",
        reason=(
            f"{_dist(state, state.since_massage_m)} over {_days(state.since_massage_days)} "
            f"since {since}"
        ),
        body=(
            "A session a month keeps everyday tightness from growing into an injury and helps "
            "your legs feel fresh again. Time to book one."
        ),
        fact_ids=("F1", "M1", "M3"),
        tip_id=None,
    )


SESSION_RULES: tuple[Rule, ...] = (
    post_race,
    pre_race,
    load_spike,
    long_run,
    high_volume,
    monthly_checkin,
)


def _tip_headline(tags: frozenset[str]) -> str:
    """A headline for a recovery tip that names the run's situation."""
    for tag, headline in (
        ("post_race", "Recovery tip after your race"),
        ("pre_race", "Recovery tip for race week"),
        ("long_run", "Recovery tip after a long run"),
        ("heavy_week", "Recovery tip for a big week"),
        ("workout", "Recovery tip after a hard session"),
    ):
        if tag in tags:
            return headline
    return "Recovery tip"


def recovery_tip(
    state: TrainingState,
    settings: AdviceSettings,
    held_back: Advice | None = None,
    days_since_session: int | None = None,
) -> Advice:
    """Priority 7: a rotating tip that fits the run (M1-M7, T3); also the cooldown fallback."""
    tags = situation_tags(state, settings)
    tip = pick_tip(state, settings, tags)
    if held_back is not None and days_since_session is not None:
        when = {0: "earlier today", 1: "yesterday"}.get(
            days_since_session, f"{days_since_session} days ago"
        )
        reason = f"{held_back.reason}; a session was suggested {when}, so a tip instead"
    else:
        reason = (
            f"this week {_dist(state, state.week_m)}, "
            f"last 28 days {_dist(state, state.rolling28_m)}"
        )
    return Advice(
        kind=RECOVERY_TIP,
        is_session=False,
        headline=_tip_headline(tags),
        reason=reason,
        body=tip.text,
        fact_ids=tip.fact_ids,
        tip_id=tip.id,
    )


def advise(state: TrainingState, settings: AdviceSettings = DEFAULTS) -> Advice:
    """The one note for this run: the highest-priority rule that fires, within the cooldown."""
    cooldown = _last_session_in_cooldown(state, settings)
    for rule in SESSION_RULES:
        advice = rule(state, settings)
        if advice is None:
            continue
        # At most one session suggestion per cooldown_days; inside it, fall back to a tip
        # that still fits the situation (the rules table says a tip, not the next rule).
        if cooldown is not None and advice.kind not in settings.cooldown_exempt:
            _, ago = cooldown
            return recovery_tip(state, settings, held_back=advice, days_since_session=ago)
        return advice
    return recovery_tip(state, settings)

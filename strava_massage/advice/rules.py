"""The advice rules (second version, recovery-knowledge.md) and advise(), which picks one note."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from strava_massage.advice import history, tips
from strava_massage.advice.settings import DEFAULTS, AdviceSettings, threshold_text
from strava_massage.advice.state import (
    COMEBACK,
    HIGH_VOLUME,
    LOAD_SPIKE,
    LONG_RUN,
    MONTHLY_CHECKIN,
    NIGGLE_AREAS,
    POST_RACE,
    PRE_RACE,
    RECOVERY_TIP,
    WORKOUT_LONG_RUN,
    WORKOUT_RACE,
    WORKOUT_WORKOUT,
    Advice,
    PastNote,
    TrainingState,
    format_distance,
)
from strava_massage.advice.tip_library import TIPS
from strava_massage.advice.wordings import WORDINGS, Wording

# Priority order: the first rule that fires wins.
KINDS: tuple[str, ...] = (
    POST_RACE,
    PRE_RACE,
    LOAD_SPIKE,
    COMEBACK,
    LONG_RUN,
    HIGH_VOLUME,
    MONTHLY_CHECKIN,
    RECOVERY_TIP,
)
# The rules that (can) suggest booking a session; race notes keep to their own cadence.
SESSION_KINDS = frozenset({POST_RACE, PRE_RACE, LOAD_SPIKE, LONG_RUN, HIGH_VOLUME, MONTHLY_CHECKIN})
RACE_KINDS = frozenset({POST_RACE, PRE_RACE})

__all__ = [
    "KINDS",
    "SESSION_KINDS",
    "WORKOUT_LONG_RUN",
    "WORKOUT_RACE",
    "WORKOUT_WORKOUT",
    "Run",
    "advise",
]


def _dist(state: TrainingState, metres: float) -> str:
    """A distance in this runner's units."""
    return format_distance(metres, state.units)


def _duration(seconds: int) -> str:
    """Format a moving time as h:mm:ss (or m:ss under an hour)."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# Numbers said with a vowel first: eight, eighty..., eleven, eighteen.
_SPOKEN_WITH_A_VOWEL = re.compile(r"8|1[18]\D")


def _a(words: str) -> str:
    """Words with their indefinite article: "a 6.5 km", "an 8.5 km", "an 11.0 km"."""
    article = "an" if _SPOKEN_WITH_A_VOWEL.match(words) else "a"
    return f"{article} {words}"


def _days(n: int) -> str:
    """'1 day' / 'n days'."""
    return f"{n} day" if n == 1 else f"{n} days"


@dataclass(frozen=True)
class Run:
    """One run as the rules see it: its state, settings, and what they derive (worked out once)."""

    state: TrainingState
    settings: AdviceSettings

    @cached_property
    def notes(self) -> tuple[PastNote, ...]:
        """Earlier notes, minus any written for this very activity (a repeated job must not see
        it) and any dated after this run (an old run processed late)."""
        s = self.state
        return tuple(
            n
            for n in s.recent_notes
            if n.activity_id != s.activity_id and n.local_date <= s.local_date
        )

    @cached_property
    def breaks(self) -> list[history.Span]:
        """Layoffs in the runner's recent history."""
        return history.layoffs(self.state, self.settings)

    @cached_property
    def enough_history(self) -> bool:
        """Three weeks of history: before that every run would look like a jump (L1)."""
        return self.state.history_days >= self.settings.acwr_min_history_days

    @cached_property
    def comeback(self) -> history.Comeback | None:
        """The comeback this run is part of, if any."""
        return history.comeback(self.state, self.settings, self.breaks)

    @cached_property
    def peak(self) -> bool:
        """A peak week: the last 7 days in the top quarter of the runner's recent weeks."""
        return history.peak_week(self.state, self.settings, self.breaks)

    @cached_property
    def usual_week(self) -> float | None:
        """The average of the last baseline_weeks usable complete weeks; None with under two."""
        weeks = history.complete_weeks(
            self.state, self.settings, self.settings.baseline_weeks, self.breaks
        )
        return sum(weeks) / len(weeks) if len(weeks) >= 2 else None

    @cached_property
    def beginner(self) -> bool:
        """Under beginner_week_km a week on average."""
        week = self.usual_week
        return week is not None and week < self.settings.beginner_week_km * 1000

    @cached_property
    def race_in(self) -> int | None:
        """Days to the runner's next race, or None if none is set or it has passed."""
        race = self.state.next_race_date
        days = (race - self.state.local_date).days if race is not None else None
        return days if days is not None and days >= 0 else None

    @cached_property
    def since_massage(self) -> int | None:
        """Days since the last logged massage, or None if none is logged."""
        last = self.state.last_massage_date
        return (self.state.local_date - last).days if last is not None else None

    @cached_property
    def niggle(self) -> str | None:
        """The sore area the runner reported, while it still shapes the advice."""
        n = self.state.niggle
        if n is None or not 0 <= (self.state.local_date - n.since).days < self.settings.niggle_days:
            return None
        return n.area

    @cached_property
    def massaged_lately(self) -> bool:
        """A massage logged in the last after_massage_days days."""
        days = self.since_massage
        return days is not None and 0 <= days <= self.settings.after_massage_days

    def may_suggest_session(self, kind: str) -> bool:
        """The cadence: whether a session may be suggested by rule `kind` on this run."""
        if kind == POST_RACE:
            return True
        if self.massaged_lately:
            return False
        if kind == PRE_RACE:
            return True
        cfg = self.settings
        if self.race_in is not None and self.race_in <= cfg.race_hold_days:
            return False
        if self.beginner and kind != MONTHLY_CHECKIN:
            return False
        if kind in (LONG_RUN, HIGH_VOLUME) and self.days_since(kind) < cfg.same_rule_gap_days:
            return False
        gap = cfg.peak_session_gap_days if self.peak else cfg.session_gap_days
        return self.days_since(None) >= gap

    def days_since(self, kind: str | None) -> float:
        """Days since the last session suggestion (of `kind`, if given); infinite if none."""
        last = next(
            (n.local_date for n in self.notes if n.is_session and kind in (None, n.kind)), None
        )
        return (self.state.local_date - last).days if last is not None else float("inf")

    def wording(self, key: str) -> Wording:
        """One of the key's wordings, never the one its rule used last time (stable per run)."""
        kind = key.split(".")[0]
        last = next((n.wording_id for n in self.notes if n.wording_id and n.kind == kind), None)
        last = last or self.state.last_wordings.get(kind)
        options = [w for w in WORDINGS[key] if w.id != last] or list(WORDINGS[key])
        return options[tips.stable_index(self.state.activity_id, len(options))]

    def niggle_words(self) -> str | None:
        """The runner's sore area in a note's words, while it counts."""
        return NIGGLE_AREAS.get(self.niggle) if self.niggle else None


Rule = Callable[[Run], Advice | None]
# Tips about booking or having a massage: not in the days after one was logged.
MASSAGE_TIPS = frozenset(t.id for t in TIPS if "massage" in t.text.lower())
# Added to a tip for the sore area a runner reported: when to stop and have it looked at.
NIGGLE_ADVICE = "If the soreness lasts a week or worsens as you run, see a physio."


def _session(
    run: Run,
    kind: str,
    key: str,
    reason: str,
    facts: str,
    *,
    is_session: bool = True,
    **values: str,
) -> Advice:
    """A session rule's note in one of its wordings; with a niggle, what to ask the therapist."""
    wording = run.wording(key)
    body = wording.body.format(**values)
    area = run.niggle_words()
    if area is not None and is_session:
        who = run.state.clinic or "your therapist"
        body = f"{body} Ask {who} to look at your {area} too."
    return Advice(
        kind=kind,
        is_session=is_session,
        headline=wording.headline.format(**values),
        reason=reason,
        body=body,
        fact_ids=tuple(facts.split()),
        tip_id=None,
        wording_id=wording.id,
    )


# --- the rules, in priority order --------------------------------------------------------------


def post_race(run: Run) -> Advice | None:
    """1: a race; advice by its distance, whatever the cadence (T2, L3, M5)."""
    s, cfg = run.state, run.settings
    if not history.is_race(s, cfg):
        return None
    km = s.distance_m / 1000
    size = "short" if km < cfg.half_race_min_km else "half" if km < cfg.long_race_min_km else "long"
    window = f"{cfg.post_race_session_min_days}-{cfg.post_race_session_max_days}"
    return _session(
        run, POST_RACE, f"post_race.{size}",
        reason=f"race, {_dist(s, s.distance_m)} in {_duration(s.moving_time_s)}",
        facts="T2 L3" if size == "short" else "T2 L3 M5",
        distance=_dist(s, s.distance_m), time=_duration(s.moving_time_s), window=window,
    )  # fmt: skip


def pre_race(run: Run) -> Advice | None:
    """2: a race the runner set is 3-7 days away, once per race: a light session now (T1, L3)."""
    s, cfg = run.state, run.settings
    race_in = run.race_in
    if race_in is None or not cfg.pre_race_min_days <= race_in <= cfg.pre_race_max_days:
        return None
    assert s.next_race_date is not None
    window_start = s.next_race_date - timedelta(days=cfg.pre_race_max_days)
    if any(n.kind == PRE_RACE and n.local_date >= window_start for n in run.notes):
        return None
    book = run.may_suggest_session(PRE_RACE)
    return _session(
        run, PRE_RACE, "pre_race" if book else "pre_race.recent_massage",
        reason=f"your race on {s.next_race_date:%d %b} is {_days(race_in)} away",
        facts="T1 L3", is_session=book,
        race_in=_days(race_in), hours=str(cfg.pre_race_no_deep_hours),
    )  # fmt: skip


def load_spike(run: Run) -> Advice | None:
    """3: a jump in load with 3+ weeks of history, layoffs left out, never in a comeback
    (L1, L2, M3). Warns even when the cadence holds back the session."""
    s, cfg = run.state, run.settings
    if not run.enough_history or run.comeback is not None:
        return None
    if any(
        n.kind == LOAD_SPIKE and (s.local_date - n.local_date).days < cfg.load_alarm_gap_days
        for n in run.notes
    ):
        return None
    jump = history.week_jump(s, cfg, run.breaks)
    if jump is not None:
        now, before = jump
        reason = (
            f"this week {_dist(s, now)} so far, {now / before:.2f}x last week's {_dist(s, before)}"
        )
    else:
        spike = history.acute_chronic(s, cfg, run.breaks)
        if spike is None:
            return None
        acute, chronic = spike
        reason = (
            f"last 7 days {_dist(s, acute)}, {acute / chronic:.2f}x your weekly "
            f"{_dist(s, chronic)} of the four weeks before"
        )
    book = run.may_suggest_session(LOAD_SPIKE)
    return _session(
        run, LOAD_SPIKE, "load_spike" if book else "load_spike.warning",
        reason=reason, facts="L1 L2 M3", is_session=book,
    )  # fmt: skip


def comeback(run: Run) -> Advice | None:
    """3b: back from a layoff, below the old volume: welcome back, rebuild gradually (L2)."""
    back = run.comeback
    if back is None:
        return None
    s = run.state
    context = (
        f"{_days(back.days_off)} off, {_dist(s, s.rolling7_m)} in the last 7 days, "
        f"{_dist(s, back.weekly_before_m)} a week before"
    )
    return recovery_tip(run, kind=COMEBACK, wording=run.wording("comeback"), context=context)


def long_run(run: Run) -> Advice | None:
    """4: a real long run, not a cutback one: a recovery-focused session (T2, M6)."""
    s, cfg = run.state, run.settings
    if not history.looks_long(s, cfg):
        return None
    longest = history.longest_recent(s, cfg)
    if s.distance_m < cfg.long_run_of_longest * longest or not run.may_suggest_session(LONG_RUN):
        return None
    average = history.average_run(s, cfg)
    if s.workout_type == WORKOUT_LONG_RUN or not average:
        reason = f"long run, {_dist(s, s.distance_m)}"
    else:
        reason = (
            f"{_dist(s, s.distance_m)}, {s.distance_m / average:.1f}x your "
            f"average run of {_dist(s, average)} over the last 4 weeks"
        )
    if longest and s.distance_m >= longest:
        reason += ", your longest in 6 weeks"
    return _session(run, LONG_RUN, "long_run", reason=reason, facts="T2 M6")


def high_volume(run: Run) -> Advice | None:
    """5: a peak week past 30 mi / 48 km, judged on the week, not on one run (F3, F2)."""
    s, cfg = run.state, run.settings
    if s.rolling7_m < cfg.high_volume_m(s.units) or not run.peak:
        return None
    if not run.may_suggest_session(HIGH_VOLUME):
        return None
    mark = threshold_text(cfg.high_volume_week_mi, cfg.high_volume_week_km, s.units)
    reason = (
        f"last 7 days {_dist(s, s.rolling7_m)}, among your biggest weeks "
        f"of the last {cfg.peak_weeks}"
    )
    return _session(run, HIGH_VOLUME, "high_volume", reason=reason, facts="F3 F2", mark=mark)


def monthly_checkin(run: Run) -> Advice | None:
    """6: 30+ days and 100 mi / 160 km since the last logged session or connecting (F1)."""
    s, cfg = run.state, run.settings
    if s.since_massage_days < cfg.checkin_days or s.since_massage_m < cfg.checkin_m(s.units):
        return None
    # Monthly means monthly: a runner who has not logged the session yet is reminded again only
    # after another full period.
    last = s.last_checkin_date
    if last is not None and (s.local_date - last).days < cfg.checkin_days:
        return None
    if not run.may_suggest_session(MONTHLY_CHECKIN):
        return None
    since = "your last massage" if s.last_massage_date else "you connected"
    reason = f"{_dist(s, s.since_massage_m)} over {_days(s.since_massage_days)} since {since}"
    return _session(
        run, MONTHLY_CHECKIN, "monthly_checkin", reason=reason, facts="F1 M1 M3",
        distance=_dist(s, s.since_massage_m), days=str(s.since_massage_days),
    )  # fmt: skip


RULES: tuple[Rule, ...] = (
    post_race,
    pre_race,
    load_spike,
    comeback,
    long_run,
    high_volume,
    monthly_checkin,
)


# --- the recovery tip --------------------------------------------------------------------------


def contexts(run: Run) -> list[tuple[str, str]]:
    """The run's tip contexts, most specific first, each with the words that explain it."""
    s, cfg = run.state, run.settings
    found: list[tuple[str, str]] = []
    if run.race_in is not None and run.race_in <= cfg.pre_race_max_days:
        when = {0: "race day", 1: "your race is tomorrow"}
        found.append(
            (tips.RACE_WEEK, when.get(run.race_in, f"your race is {_days(run.race_in)} away"))
        )
    raced = history.last_race(s)
    if raced is not None and (s.local_date - raced).days <= cfg.after_race_days:
        ago = (s.local_date - raced).days
        found.append(
            (
                tips.AFTER_RACE,
                "the day after your race" if ago == 1 else f"{ago} days after your race",
            )
        )
    if run.comeback is not None:
        found.append((tips.COMEBACK, f"back after {_days(run.comeback.days_off)} off"))
    if history.looks_long(s, cfg):
        found.append((tips.AFTER_LONG_RUN, f"{_dist(s, s.distance_m)} today, a long run"))
    if s.workout_type == WORKOUT_WORKOUT:
        found.append((tips.AFTER_WORKOUT, f"{_a(_dist(s, s.distance_m))} workout today"))
    if s.rolling7_m >= cfg.high_volume_m(s.units):
        found.append((tips.HIGH_VOLUME, f"{_dist(s, s.rolling7_m)} in the last 7 days"))
    if run.beginner and run.usual_week is not None:
        found.append((tips.BEGINNER, f"building up at about {_dist(s, run.usual_week)} a week"))
    found.append((tips.EASY_DAY, f"{_dist(s, s.distance_m)} today, {_dist(s, s.week_m)} this week"))
    return found


_TIP_HEADLINES = {
    tips.RACE_WEEK: "Race week",
    tips.AFTER_RACE: "Recovering from your race",
    tips.COMEBACK: "Back to running",
    tips.AFTER_LONG_RUN: "After your long run",
    tips.AFTER_WORKOUT: "After a hard session",
    tips.HIGH_VOLUME: "Big-week recovery",
    tips.BEGINNER: "Building up",
    tips.EASY_DAY: "Recovery tip",
}


def recent_tip_ids(run: Run) -> frozenset[str]:
    """Tip ids shown in the runner's last no_repeat_notes notes."""
    return frozenset(n.tip_id for n in run.notes[: run.settings.no_repeat_notes] if n.tip_id)


def recovery_tip(
    run: Run,
    *,
    kind: str = RECOVERY_TIP,
    wording: Wording | None = None,
    context: str | None = None,
) -> Advice:
    """7: the tip that fits the run best and was not shown lately (M1-M7, T3).

    The Why line says why this tip today: the run's context, then the tip's own reason.
    """
    s = run.state
    found = contexts(run)
    avoid = recent_tip_ids(run)
    if run.massaged_lately:  # a tip about booking or having one would contradict the session
        avoid |= MASSAGE_TIPS
    tip = tips.pick_tip(TIPS, s.activity_id, [c for c, _ in found], avoid, area=run.niggle)
    first, words = next(((c, w) for c, w in found if c in tip.contexts), found[0])
    body = tip.text
    area = run.niggle_words()
    if area is not None and run.niggle in tip.areas:
        assert s.niggle is not None
        words = f"you noted sore {area} on {s.niggle.since:%d %b}"
        if "physio" not in body:  # when to have it looked at, unless the tip says so already
            body = f"{body} {NIGGLE_ADVICE}"
    return Advice(
        kind=kind,
        is_session=False,
        headline=wording.headline if wording else _TIP_HEADLINES[first],
        reason=f"{context or words}; {tip.why}",
        body=body,
        fact_ids=tip.fact_ids,
        tip_id=tip.id,
        wording_id=wording.id if wording else None,
    )


def advise(state: TrainingState, settings: AdviceSettings = DEFAULTS) -> Advice:
    """The one note for this run: the highest-priority rule that fires, else a fitting tip."""
    run = Run(state, settings)
    for rule in RULES:
        advice = rule(run)
        if advice is not None:
            return advice
    return recovery_tip(run)


def rule_named(kind: str) -> Rule:
    """The rule that decides notes of `kind` (KeyError for the recovery tip or an unknown kind)."""
    return {rule.__name__: rule for rule in RULES}[kind]

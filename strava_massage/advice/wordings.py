"""The session rules' wordings: several per rule, never the same one twice running.

Each key is a rule (or a rule's variant) and holds at least three wordings. A wording's headline
and body are format strings; the placeholders each key may use are listed in PLACEHOLDERS.
Written for this product in plain words; each wording rests on the facts its rule cites.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """One way to say a session rule's note: a headline and a body (format strings)."""

    id: str
    headline: str
    body: str


# key -> the placeholders its wordings may use (str.format names).
PLACEHOLDERS: dict[str, frozenset[str]] = {
    # after a race under the half-marathon mark (5 km, 10 km, ...): an easy day, optional light
    # session
    "post_race.short": frozenset({"distance", "time"}),
    # after a half marathon up to the marathon: light recovery session (not deep) in {window} days,
    # easy running until the legs feel normal, sleep, a mental break
    "post_race.half": frozenset({"distance", "time", "window"}),
    # after a marathon or longer: the same, longer, and mental recovery
    "post_race.long": frozenset({"distance", "time", "window"}),
    # a race the runner set is {race_in} away (3-7 days): a light session now, nothing deep in
    # the last {hours} hours
    "pre_race": frozenset({"race_in", "hours"}),
    # the same week, but the runner logged a massage in the last few days: no booking, keep it light
    "pre_race.recent_massage": frozenset({"race_in", "hours"}),
    # a jump in load: warn, name the overuse injuries, suggest a preventive session
    "load_spike": frozenset(),
    # the same warning without a session (a beginner, or a session was suggested lately)
    "load_spike.warning": frozenset(),
    # a real long run: a recovery-focused session; which muscles to ask for
    "long_run": frozenset(),
    # a peak week past {mark}: regular massage pays off most at this volume
    "high_volume": frozenset({"mark"}),
    # 30+ days and {distance} since the last session: time for the monthly one
    "monthly_checkin": frozenset({"distance", "days"}),
    # back from a break, below the old volume: a headline only; the body is a tip
    "comeback": frozenset(),
}

# Facts behind each key (recovery-knowledge.md): post_race T2 L3 M5, pre_race T1 L3, load_spike
# L1 L2 M3, long_run T2 M6, high_volume F3 F2, monthly_checkin F1 M1 M3, comeback L2.
WORDINGS: dict[str, tuple[Wording, ...]] = {
    "post_race.short": (
        Wording(
            "post_race.short.1",
            "Well run: {distance} in {time}",
            "Take it easy today: a gentle jog, a walk or a full rest day all count. If your legs "
            "still feel tight in a few days, a light massage can help them settle.",
        ),
        Wording(
            "post_race.short.2",
            "Nice racing. Now an easy day",
            "{time} for {distance}: well done. Keep the next run or two short and relaxed, or "
            "rest. A light massage in the next few days is an option if the legs feel tight.",
        ),
        Wording(
            "post_race.short.3",
            "Race done, and well earned",
            "Short races still ask a lot, so give your legs a calm day or a rest. If tightness "
            "hangs around over the next few days, a gentle massage is a good way to ease it.",
        ),
    ),
    "post_race.half": (
        Wording(
            "post_race.half.1",
            "Great race: {distance} in {time}",
            "Book a light, recovery-focused massage in {window} days; nothing deep yet. Run only "
            "easy until your legs feel normal, and make sleep a priority this week.",
        ),
        Wording(
            "post_race.half.2",
            "Well raced. Time to recover",
            "{distance} at race effort takes a few days to absorb. A gentle recovery massage in "
            "{window} days eases tight spots; keep to short, easy runs until your legs feel like "
            "yours again, and sleep well.",
        ),
        Wording(
            "post_race.half.3",
            "Strong run. Recovery starts now",
            "Plan a light massage aimed at recovery in {window} days, not a deep one. Until the "
            "legs feel normal, stick to easy running or rest, and give yourself some early "
            "nights.",
        ),
        Wording(
            "post_race.half.4",
            "{distance} raced: rest comes first",
            "Finished in {time}: well done. Easy running or rest until your legs feel normal, "
            "good sleep, and a light recovery massage in {window} days all help you bounce "
            "back.",
        ),
    ),
    "post_race.long": (
        Wording(
            "post_race.long.1",
            "Huge effort: {distance} in {time}",
            "Rest is the plan now: a few days off or short walks, and a break from training "
            "plans. Easy running only once your legs feel normal; a light, not deep, recovery "
            "massage in {window} days helps too.",
        ),
        Wording(
            "post_race.long.2",
            "Well done. Now rest and recover",
            "After {distance} your body and your head both need time. Sleep well, take a mental "
            "break from training, and book a gentle, recovery-focused massage in {window} days; "
            "save deep work for later.",
        ),
        Wording(
            "post_race.long.3",
            "{distance} done: time to rest properly",
            "Take several easy or rest days and let the race settle, in your legs and in your "
            "head. A light recovery massage in {window} days eases tight spots; easy running only "
            "until the legs feel normal.",
        ),
        Wording(
            "post_race.long.4",
            "Finished in {time}: enjoy it",
            "Proper rest now, and a break from plans and paces. In {window} days a light, "
            "recovery-focused massage can ease tight spots; nothing deep. Run only easy until "
            "your legs feel themselves again.",
        ),
    ),
    "pre_race": (
        Wording(
            "pre_race.1",
            "Race in {race_in}: a light massage now",
            "A light session in the next day or two can ease tension and loosen you up for race "
            "day. Keep it "
            "gentle, with nothing deep in the last {hours} hours before the start.",
        ),
        Wording(
            "pre_race.2",
            "{race_in} to go: stay loose",
            "Now is a good time for a light massage to ease tight spots before the race. Ask for "
            "gentle work, and keep anything deep out of the final {hours} hours.",
        ),
        Wording(
            "pre_race.3",
            "Race coming up in {race_in}",
            "Book a light, relaxing massage in the next day or two so you arrive loose and "
            "ready. No deep tissue work in the {hours} hours before the race: fresh legs come "
            "first.",
        ),
    ),
    "pre_race.recent_massage": (
        Wording(
            "pre_race.recent_massage.1",
            "Race in {race_in}: keep it light",
            "Your recent massage has you covered, so there is no need for another. From here "
            "keep everything gentle: easy runs, light stretching, and nothing deep in the last "
            "{hours} hours.",
        ),
        Wording(
            "pre_race.recent_massage.2",
            "{race_in} to go: stay fresh",
            "With a massage just behind you, the groundwork is done. Stick to easy running and "
            "light mobility, and keep any deep pressure away from the final {hours} hours.",
        ),
        Wording(
            "pre_race.recent_massage.3",
            "Nearly race day: easy does it",
            "You have had a massage lately, and that is plenty for this race. Keep the rest of "
            "the week light and relaxed, and skip anything deep in the last {hours} hours.",
        ),
    ),
    "load_spike": (
        Wording(
            "load_spike.1",
            "Big jump in your running",
            "Sudden jumps in distance are when shin splints, Achilles and IT band trouble tend "
            "to start. Ease off for a few days, and think about a massage to catch tight spots "
            "early.",
        ),
        Wording(
            "load_spike.2",
            "Your load jumped: ease off a little",
            "A fast rise in running is a common road to overuse trouble such as shin splints or "
            "a sore Achilles. Keep the next few runs easy; a preventive massage can find tight "
            "spots early.",
        ),
        Wording(
            "load_spike.3",
            "Mileage is climbing fast",
            "Build up in smaller steps: big jumps invite shin splints and Achilles or IT band "
            "problems. Go easy for a few days; a massage now can catch tight or uneven muscles "
            "before they cause trouble.",
        ),
    ),
    "load_spike.warning": (
        Wording(
            "load_spike.warning.1",
            "Running has jumped: take a few easy days",
            "A quick rise in distance is when shin splints, Achilles and IT band trouble tend to "
            "start. Keep the next few runs short and easy, then build back up in smaller steps.",
        ),
        Wording(
            "load_spike.warning.2",
            "Your running jumped: ease back",
            "Overuse injuries such as shin splints or Achilles trouble often follow a sudden "
            "rise in running. Give your legs a few easy days and add distance more gradually.",
        ),
        Wording(
            "load_spike.warning.3",
            "Quick rise in load: go gently",
            "Big steps up can bring on shin splints, or Achilles and IT band problems. Ease off "
            "for a few days, keep the pace relaxed, and let your body catch up with the work.",
        ),
    ),
    "long_run": (
        Wording(
            "long_run.1",
            "Long run done: look after your legs",
            "A recovery-focused massage in the next day or two can ease the tight spots a long "
            "run leaves. Ask for calves, hamstrings, quads, glutes and hip flexors: they did most "
            "of the work.",
        ),
        Wording(
            "long_run.2",
            "Big run in the bank",
            "Plan a recovery massage for the next day or two. Ask the therapist to focus on your "
            "calves, quads and hamstrings, plus the glutes and hip flexors that carried you "
            "through.",
        ),
        Wording(
            "long_run.3",
            "Long run: time to recover well",
            "Long runs load the calves, hamstrings, quads, glutes and hip flexors most. A "
            "recovery-focused session aimed at those muscles within a day or two helps them "
            "bounce back.",
        ),
        Wording(
            "long_run.4",
            "Well done on the long one",
            "Your legs have earned some care: a recovery-focused massage within a day or two "
            "eases fatigue and tight spots. Calves, hamstrings and quads first, then glutes and "
            "hip flexors.",
        ),
    ),
    "high_volume": (
        Wording(
            "high_volume.1",
            "A big week: past {mark}",
            "At this kind of mileage, regular massage pays off most. In peak weeks like this "
            "one, a session every week or two helps keep tightness from building up.",
        ),
        Wording(
            "high_volume.2",
            "Peak week: keep recovery regular",
            "Runners past {mark} a week get the most from regular massage. While your training "
            "is at its peak, a session every week or two is worth fitting in.",
        ),
        Wording(
            "high_volume.3",
            "High mileage: recovery earns its keep",
            "The more you run, the more massage gives back, especially beyond {mark} a week. "
            "During peak training, aim for a session weekly or every other week.",
        ),
        Wording(
            "high_volume.4",
            "Past {mark} this week: well done",
            "Weeks this big are when regular massage does the most good. Through your peak "
            "training, a session weekly or fortnightly helps keep everyday tightness in check.",
        ),
    ),
    "monthly_checkin": (
        Wording(
            "monthly_checkin.1",
            "Time for your monthly massage",
            "It has been {days} days and {distance} since your last session. A monthly massage "
            "keeps everyday tightness in check and can catch tight spots early.",
        ),
        Wording(
            "monthly_checkin.2",
            "{days} days since your last massage",
            "You have covered {distance} since then. A session each month is a good rhythm for "
            "regular runners: it eases the tension that builds up and helps catch trouble early.",
        ),
        Wording(
            "monthly_checkin.3",
            "Monthly check-in: {distance} run",
            "That is {days} days of running since your last massage. A regular monthly session "
            "keeps muscle tension down and lets a therapist find tight or uneven spots before "
            "they cause trouble.",
        ),
        Wording(
            "monthly_checkin.4",
            "Due a check-in massage",
            "{distance} over {days} days is a good stretch of training. A monthly session helps "
            "keep soreness and tightness under control before small niggles grow.",
        ),
    ),
    "comeback": (
        Wording("comeback.1", "Welcome back: build up gently", ""),
        Wording("comeback.2", "Back running: ease in step by step", ""),
        Wording("comeback.3", "Good to see you back: small steps first", ""),
    ),
}

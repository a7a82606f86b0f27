"""The recovery tip library and the deterministic, no-repeat tip picker."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from strava_massage.advice.settings import AdviceSettings
from strava_massage.advice.state import TrainingState

# Situations a run can be in; the rules derive these from the TrainingState.
SITUATION_TAGS = frozenset(
    {"long_run", "heavy_week", "easy_day", "workout", "pre_race", "post_race"}
)
# What a tip is about.
TOPIC_TAGS = frozenset(
    {
        "calves",
        "hamstrings",
        "quads",
        "glutes",
        "hip_flexors",
        "feet",
        "shins",
        "knees",
        "it_band",
        "upper_body",
        "lower_back",
        "core",
        "strength",
        "stretching",
        "mobility",
        "sleep",
        "hydration",
        "nutrition",
        "mental",
        "massage",
        "load",
    }
)
KNOWN_TAGS = SITUATION_TAGS | TOPIC_TAGS


@dataclass(frozen=True)
class Tip:
    """One recovery tip, with the facts it rests on and the situations it suits."""

    id: str
    text: str
    fact_ids: tuple[str, ...]
    tags: frozenset[str]


def _tip(tip_id: str, text: str, fact_ids: str, tags: str) -> Tip:
    """Build a Tip from space-separated fact ids and tags (keeps the table below readable)."""
    return Tip(tip_id, text, tuple(fact_ids.split()), frozenset(tags.split()))


# Written for this product in plain words. Each cites the recovery-knowledge.md facts behind it.
# Never claim massage "flushes lactic acid" or "toxins": the knowledge file rules that out.
TIPS: tuple[Tip, ...] = (
    # Calves, feet and shins (M6: the most loaded muscles; M3: Achilles, plantar, shin trouble).
    _tip(
        "calves-roll",
        "Calves work on every stride. Roll them slowly on a foam roller tonight and pause on "
        "tight spots for 20-30 seconds instead of rushing over them.",
        "M1 M6",
        "calves easy_day long_run heavy_week",
    ),
    _tip(
        "calves-wall-stretch",
        "Do a wall calf stretch twice: once with the back knee straight, once with it bent. "
        "The bent version reaches the deeper calf muscle that tightens on hills.",
        "M2 M6",
        "calves stretching easy_day long_run",
    ),
    _tip(
        "calves-raises",
        "Slow calf raises off a step, 3 sets of 12, build calves and Achilles tendons that "
        "cope better with hills and longer runs.",
        "T3 M3",
        "calves strength easy_day workout",
    ),
    _tip(
        "achilles-stiff",
        "Achilles feeling stiff? Keep today's running easy and flat, and give your calves some "
        "gentle massage: tight calves pull on that tendon.",
        "M3 M6",
        "calves easy_day heavy_week",
    ),
    _tip(
        "feet-ball-roll",
        "Roll the sole of each foot over a tennis ball for a minute. Supple feet and calves "
        "help keep plantar fascia trouble away.",
        "M3",
        "feet calves easy_day post_race long_run",
    ),
    _tip(
        "shins-ramp",
        "Sore shins after more running than usual? Keep the next few runs easy and on soft "
        "ground. Shin splints tend to follow sudden jumps in mileage.",
        "M3 L2",
        "shins calves load heavy_week",
    ),
    # Hamstrings (M6, M2: tightness shortens the stride; M3: tight hamstrings named).
    _tip(
        "hamstrings-strap",
        "Lie on your back and lift one straight leg with a strap around the foot. Hold gently "
        "for 30 seconds a side: tight hamstrings shorten your stride.",
        "M2 M6",
        "hamstrings stretching easy_day long_run",
    ),
    _tip(
        "hamstrings-bridge",
        "Single-leg bridges, 2 sets of 10 per side, build hamstrings and glutes that handle "
        "extra distance without knotting up.",
        "T3 M6",
        "hamstrings glutes strength easy_day heavy_week",
    ),
    _tip(
        "hamstrings-swings",
        "Tight hamstrings tug on the knee and lower back. Loosen them with leg swings before "
        "you run and stretch them gently afterwards.",
        "M3 M6",
        "hamstrings mobility workout pre_race",
    ),
    # Quads and knees.
    _tip(
        "quads-stretch",
        "Your quads do the braking on downhills. A gentle standing quad stretch, 30 seconds a "
        "leg, eases the tension before it settles in.",
        "M2 M6",
        "quads stretching long_run post_race",
    ),
    _tip(
        "quads-roll",
        "Foam-roll the front and outside of your thighs slowly. Firm pressure is fine; back off "
        "anything sharp or stabbing.",
        "M1 M6",
        "quads long_run heavy_week",
    ),
    _tip(
        "knees-step-down",
        "Knee niggles often start with tired quads and hips. Slow step-downs from a low step, "
        "8 per leg, build the control that protects the knee.",
        "M3 T3",
        "knees quads glutes strength heavy_week easy_day",
    ),
    # Glutes, hips and IT band.
    _tip(
        "glutes-figure-four",
        "Lie on your back, cross one ankle over the other knee and draw the legs in. This "
        "figure-four stretch loosens glutes that stiffen after long efforts.",
        "M2 M6",
        "glutes stretching long_run easy_day",
    ),
    _tip(
        "glutes-clamshell",
        "Side-lying clamshells wake up the glutes that keep your knees tracking straight. Ten "
        "slow reps per side on an easy day is plenty.",
        "T3 M3",
        "glutes strength easy_day",
    ),
    _tip(
        "it-band-hips",
        "Tightness on the outside of the knee often starts higher up. Work on the glutes and "
        "the side of the hip, not only the IT band itself.",
        "M3 M6",
        "it_band glutes heavy_week long_run",
    ),
    _tip(
        "hip-flexors-lunge",
        "Long days at a desk shorten the hip flexors. A kneeling lunge stretch, hips pressed "
        "forward, 30 seconds a side, lets your stride open up again.",
        "M2 M6",
        "hip_flexors stretching easy_day heavy_week",
    ),
    _tip(
        "hip-flexors-march",
        "Slow standing knee raises, 10 per leg, keep the hip flexors strong and mobile so they "
        "don't cut your stride short.",
        "M2 T3",
        "hip_flexors strength easy_day pre_race",
    ),
    _tip(
        "hips-calves-gait",
        "Tight hips or calves quietly change how you run. If your stride feels short or "
        "uneven, loosen those areas before adding more speed work.",
        "M2",
        "hip_flexors calves mobility workout easy_day",
    ),
    # Core, back and upper body (M6: trunk steadies the pelvis; arms tense on long efforts).
    _tip(
        "core-side-plank",
        "Two side planks of 30 seconds per side train the trunk muscles that hold your pelvis "
        "steady when you tire late in a run.",
        "M6 T3",
        "core strength easy_day heavy_week",
    ),
    _tip(
        "core-dead-bug",
        "Dead bugs, 2 sets of 8 slow reps, train the deep stomach muscles that keep your "
        "pelvis level and your stride efficient.",
        "T3 M6",
        "core strength easy_day",
    ),
    _tip(
        "lower-back-cat-cow",
        "A long run can leave the lower back stiff once the core tires. Ten slow cat-cow "
        "stretches on hands and knees help it loosen.",
        "M6 T3",
        "lower_back core mobility long_run",
    ),
    _tip(
        "upper-body-shoulders",
        "Roll your shoulders and shrug a few times. Long efforts tense the upper back and arms, "
        "and a tight upper body stiffens your arm swing.",
        "M6",
        "upper_body long_run post_race",
    ),
    _tip(
        "upper-body-doorway",
        "A doorway chest stretch for 30 seconds undoes the hunch that creeps in late in a "
        "long run.",
        "M2 M6",
        "upper_body stretching long_run easy_day",
    ),
    _tip(
        "upper-body-loose-hands",
        "On your next run, check your hands and jaw now and then. Loose hands and a relaxed "
        "face keep tension out of your shoulders.",
        "M6 M5",
        "upper_body mental easy_day pre_race",
    ),
    # Stretching and mobility (M2).
    _tip(
        "stretch-when-warm",
        "Stretch after the run while you are warm, holding each position gently for 20-30 "
        "seconds. Forcing a stretch only makes the muscle guard itself.",
        "M2",
        "stretching easy_day workout",
    ),
    _tip(
        "mobility-before",
        "Before you run, swap long static holds for leg swings and walking lunges. Moving "
        "through your range warms the muscles up for the effort.",
        "M2",
        "mobility pre_race workout",
    ),
    _tip(
        "walk-it-off",
        "Walk for a few minutes after you stop running instead of sitting straight down. It "
        "lets breathing and legs settle before you stretch.",
        "T3",
        "mobility easy_day long_run",
    ),
    _tip(
        "legs-up-wall",
        "After a long run, lie with your legs up a wall for five minutes. It is a calm, "
        "restful way to end the day's effort.",
        "M5",
        "mental long_run post_race",
    ),
    # Sleep and the mental side (M5).
    _tip(
        "sleep-big-week",
        "Big weeks are built in bed as much as on the road. Aim for an extra 30-60 minutes of "
        "sleep while your mileage is high.",
        "M5 T3",
        "sleep heavy_week",
    ),
    _tip(
        "sleep-screens",
        "Put screens away for the last half hour before bed tonight. Good sleep is one of the "
        "cheapest recovery tools there is.",
        "M5",
        "sleep easy_day post_race",
    ),
    _tip(
        "sleep-before-race",
        "Nerves often cut sleep short the night before a race, so bank good sleep in the "
        "nights leading up to it.",
        "M5",
        "sleep pre_race",
    ),
    _tip(
        "mental-unwind",
        "Recovery is mental too. A quiet walk, a massage or ten minutes of slow breathing "
        "lowers stress and keeps you keen to run.",
        "M5",
        "mental easy_day heavy_week",
    ),
    # Hydration and food (T3: part of the plan alongside massage and strength).
    _tip(
        "hydration-steady",
        "Drink steadily over the next few hours rather than all at once, with a little salt if "
        "you sweated heavily.",
        "T3",
        "hydration long_run post_race heavy_week",
    ),
    _tip(
        "hydration-daily",
        "Top up with water through the day, not only at meals. Pale yellow urine usually "
        "means you are on track.",
        "T3",
        "hydration easy_day pre_race",
    ),
    _tip(
        "refuel-after",
        "Within a couple of hours of a long or hard run, eat a meal with both carbohydrate and "
        "protein so tired muscles have what they need to rebuild.",
        "T3",
        "nutrition long_run post_race workout",
    ),
    # Load management (L1-L3).
    _tip(
        "easy-means-easy",
        "Keep easy days truly easy: a pace where you could hold a conversation. That is what "
        "lets the hard days count.",
        "L3",
        "load easy_day",
    ),
    _tip(
        "after-hard-session",
        "After a hard session, give your legs 24-72 hours of easier running before the next "
        "big effort.",
        "L3",
        "load workout heavy_week",
    ),
    _tip(
        "ramp-gradually",
        "Adding mileage? Build the week up gradually: big jumps from one week to the next are "
        "linked to running injuries.",
        "L2",
        "load heavy_week",
    ),
    _tip(
        "big-week-mostly-easy",
        "In a big week, keep most runs easy and save hard efforts for one or two sessions, so "
        "the extra distance doesn't pile up into overload.",
        "L1 L2",
        "load heavy_week",
    ),
    _tip(
        "soreness-vs-pain",
        "Some soreness a day or two after a long or hard run is normal. Sharp pain, or pain "
        "that grows as you run, is a reason to stop and get it checked.",
        "M3 L3",
        "load long_run workout post_race",
    ),
    _tip(
        "strength-twice-weekly",
        "Two short strength sessions a week (squats, lunges, calf raises) make your legs more "
        "resilient to the pounding of higher mileage.",
        "T3",
        "strength heavy_week easy_day",
    ),
    # Races (T1, T2, L3).
    _tip(
        "post-race-easy-days",
        "After a race, keep the next few runs short and gentle, or rest. Give your legs a few "
        "easy days before hard training starts again.",
        "T2 L3",
        "load post_race",
    ),
    _tip(
        "post-race-move-gently",
        "Gentle movement the day after a race, like a walk or an easy spin on a bike, often "
        "eases stiffness better than sitting still all day.",
        "L3 M1",
        "mobility post_race",
    ),
    _tip(
        "race-week-fresh",
        "Race week is for staying fresh: shorter runs, a few relaxed strides, plenty of sleep. "
        "The fitness is already in your legs.",
        "L3 M5",
        "load sleep pre_race",
    ),
    _tip(
        "race-week-nothing-new",
        "Nothing new before race day: no new shoes, no new foods, and no deep-tissue massage "
        "in the last two days.",
        "L3 T1",
        "massage pre_race",
    ),
    # Massage itself.
    _tip(
        "massage-ask-for",
        "When you book a massage after a long run, ask for calves, hamstrings, quads, glutes "
        "and hip flexors: the muscles running loads most.",
        "M6 T2",
        "massage long_run",
    ),
    _tip(
        "massage-techniques",
        "Massage comes in many styles: deep tissue, myofascial release, trigger point work, "
        "assisted stretching. Ask your therapist which suits your legs now.",
        "M7",
        "massage easy_day",
    ),
    _tip(
        "massage-rhythm",
        "One massage a month is a sensible baseline for regular runners. In your biggest "
        "training blocks, every week or two pays off.",
        "F1 F2",
        "massage heavy_week easy_day",
    ),
    _tip(
        "massage-blood-flow",
        "A massage after hard running boosts blood flow to tired muscles, bringing them oxygen "
        "and nutrients, and eases soreness in the days after.",
        "M4 M1",
        "massage post_race long_run",
    ),
    _tip(
        "massage-early-warning",
        "A therapist can find tight or unbalanced muscles before they turn into an injury. "
        "Mention any spot that keeps niggling.",
        "M3",
        "massage heavy_week easy_day",
    ),
)

TIPS_BY_ID: dict[str, Tip] = {tip.id: tip for tip in TIPS}


def _stable_index(activity_id: int, size: int) -> int:
    """Map an activity id to an index in [0, size) that is the same in every process."""
    # hash() of an int is stable too, but consecutive ids would walk the list in order; a digest
    # spreads neighbouring runs across the library.
    digest = hashlib.sha256(str(activity_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def recent_tip_ids(state: TrainingState, settings: AdviceSettings) -> frozenset[str]:
    """Tip ids shown in the runner's last no_repeat_notes notes (other than this activity's)."""
    notes = [n for n in state.recent_notes if n.activity_id != state.activity_id]
    return frozenset(n.tip_id for n in notes[: settings.no_repeat_notes] if n.tip_id)


def pick_tip(state: TrainingState, settings: AdviceSettings, situation_tags: Iterable[str]) -> Tip:
    """Choose a tip that fits the run, is not recently used, and is the same on every call."""
    wanted = frozenset(situation_tags)
    seen = recent_tip_ids(state, settings)
    fresh = [tip for tip in TIPS if tip.id not in seen] or list(TIPS)
    fitting = [tip for tip in fresh if tip.tags & wanted] or fresh
    # Sorted by id so editing the library's order never changes which tip a run gets.
    fitting.sort(key=lambda tip: tip.id)
    return fitting[_stable_index(state.activity_id, len(fitting))]

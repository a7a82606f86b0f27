"""The recovery tip library: plain-words tips, the facts behind each and the runs they suit."""

from strava_massage.advice.tips import Tip, tip

# Written for this product; every tip cites the recovery-knowledge.md facts it rests on. A tip's
# `why` finishes the note's "Why: <the run's context>; <why>" line, so it must hold in every
# context the tip carries. Strength work stays out of race week; deep work out of race week and
# the days after a race (L3). Any tip naming pain or an injury says when to see a professional.
TIPS: tuple[Tip, ...] = (
    # --- Calves and Achilles (M6: calves are among the most loaded muscles; M2 gait; M3) ---
    tip(
        "calves-roll",
        "Roll your calves slowly on a foam roller this evening, pausing on any tight spot for a "
        "few slow breaths rather than rushing over it.",
        why="calves take a big share of every stride",
        facts="M1 M6",
        contexts="easy_day after_long_run after_workout high_volume",
        areas="calves",
    ),
    tip(
        "calves-wall-stretch",
        "Stretch your calves against a wall, first with the back knee straight, then slightly "
        "bent. Hold each gently for about 30 seconds; bending the knee reaches the deeper calf "
        "muscle.",
        why="supple calves help keep your stride long and even",
        facts="M2 M6",
        contexts="easy_day after_long_run beginner comeback",
        areas="calves achilles",
    ),
    tip(
        "calves-raises",
        "Do slow calf raises on the edge of a step: rise on both feet, lower slowly below the "
        "step, two sets of twelve. Strong calves give your Achilles an easier time.",
        why="calves and Achilles carry you off the ground on every step",
        facts="T3 M6",
        contexts="easy_day comeback high_volume beginner",
        areas="calves achilles",
    ),
    tip(
        "calves-after-hard-running",
        "Fast running and hills lean hard on the calves. Give them a gentle stretch and a slow "
        "roll tonight, and keep your next run easy.",
        why="hard efforts ask a lot of the calves",
        facts="M6 M2 L3",
        contexts="after_workout",
        areas="calves",
    ),
    tip(
        "achilles-if-stiff",
        "If your Achilles feels stiff, keep your runs easy and flat for a few days and look after "
        "your calves. If it hurts more as you run, or lasts beyond a week, see a physio.",
        why="the Achilles takes the pull of the calf on every push-off",
        facts="M3 M6 L3",
        contexts="easy_day after_workout high_volume comeback",
        areas="achilles calves",
    ),
    tip(
        "achilles-calf-care",
        "Your Achilles is where the calf ends. Keeping the calves supple with a gentle stretch or "
        "a light roll is the kindest thing you can do for it.",
        why="the calves and Achilles share the work of every push-off",
        facts="M2 M6",
        contexts="easy_day after_long_run beginner race_week",
        areas="achilles calves",
    ),
    tip(
        "achilles-ease-into-hills",
        "Go easy on steep hills and fast running for the first few weeks back. Let the calves and "
        "Achilles get used to regular running again before you ask more of them.",
        why="hills and speed load the calves and Achilles most",
        facts="L2 M6",
        contexts="comeback",
        areas="achilles calves",
    ),
    # --- Shins and feet (M3 names shin splints and plantar fasciitis; L2 gradual increases) ---
    tip(
        "shins-build-gradually",
        "Shins are often the first to complain when running climbs quickly. Add distance a "
        "little at a time, and run on soft, even ground when you can.",
        why="shins cope best with steady, gradual increases",
        facts="L2 M3",
        contexts="easy_day beginner comeback high_volume",
        areas="shins",
    ),
    tip(
        "shins-if-sore",
        "If your shins feel sore, keep the next few runs short, easy and on soft ground. If it "
        "hurts more as you run or lasts beyond a week, stop and see a physio.",
        why="shin trouble is easier to settle when caught early",
        facts="M3 L2",
        contexts="easy_day beginner comeback high_volume",
        areas="shins",
    ),
    tip(
        "shins-heel-toe-walks",
        "Walk on your heels with the toes lifted for 30 seconds, then on tiptoe for 30. Two "
        "rounds gently strengthen the muscles around your shins and calves.",
        why="a little strength work keeps shins and calves robust",
        facts="T3",
        contexts="easy_day beginner comeback",
        areas="shins calves",
    ),
    tip(
        "foot-ball-roll",
        "Roll the sole of each foot slowly over a tennis ball for a minute. It is an easy way to "
        "keep your arches supple.",
        why="your feet take the landing on every step",
        facts="M2",
        contexts="easy_day after_long_run after_race beginner race_week",
        areas="foot",
    ),
    tip(
        "foot-if-sore",
        "If your heel or arch feels sore first thing in the morning, roll it gently and keep runs "
        "easy. If it lasts beyond a week or hurts more as you run, see a physio.",
        why="heel and arch trouble is easier to settle when caught early",
        facts="M3",
        contexts="easy_day high_volume comeback",
        areas="foot",
    ),
    tip(
        "foot-toe-strength",
        "Spread and lift your toes, then scrunch a towel towards you with them, a minute per "
        "foot. Small foot muscles help support the arch.",
        why="strong feet give the rest of the leg a steady base",
        facts="T3",
        contexts="easy_day beginner comeback",
        areas="foot",
    ),
    # --- Hamstrings (M6; M2: tightness shortens the stride; M3 names tight hamstrings) ---
    tip(
        "hamstrings-strap",
        "Lie on your back and raise one straight leg with a towel round the foot. Ease into the "
        "stretch without bouncing and hold about 30 seconds a side.",
        why="loose hamstrings let your stride open up",
        facts="M2 M6",
        contexts="easy_day after_long_run beginner",
        areas="hamstrings",
    ),
    tip(
        "hamstrings-bridge",
        "Single-leg bridges, two sets of ten a side, build the hamstrings and glutes that keep "
        "you moving well as runs get longer.",
        why="hamstrings and glutes do much of the work of running",
        facts="T3 M6",
        contexts="easy_day high_volume comeback",
        areas="hamstrings hips",
    ),
    tip(
        "hamstrings-after-hard-effort",
        "Hard running asks a lot of your hamstrings. Walk or jog gently for a few minutes, then "
        "stretch them lightly rather than pulling hard.",
        why="hard efforts lean heavily on the hamstrings",
        facts="M6 M2",
        contexts="after_workout after_race",
        areas="hamstrings",
    ),
    tip(
        "hamstrings-leg-swings",
        "Before you run, swing each leg forward and back ten times, then side to side. It loosens "
        "the hamstrings and hips without tiring them.",
        why="loose hips and hamstrings make the first steps easier",
        facts="M2 M6",
        contexts="easy_day race_week comeback",
        areas="hamstrings hips",
    ),
    # --- Hips, glutes and the IT band (M6: glutes and hip flexors; M2; M3 names IT band) ---
    tip(
        "hips-figure-four",
        "Lie on your back, cross one ankle over the other knee and draw both legs gently towards "
        "you. Hold about 30 seconds a side to ease the glutes.",
        why="the glutes work hard to keep your pelvis steady",
        facts="M2 M6",
        contexts="easy_day after_long_run after_race",
        areas="hips",
    ),
    tip(
        "hip-flexors-lunge",
        "Kneel in a lunge and ease your hips forward until you feel a stretch at the front of the "
        "back hip. Hold about 30 seconds a side, keeping it gentle.",
        why="open hip flexors help your stride reach forward",
        facts="M2 M6",
        contexts="easy_day after_long_run beginner comeback",
        areas="hips",
    ),
    tip(
        "glutes-clamshell",
        "Side-lying clamshells, two slow sets of twelve a side, wake up the glutes that keep your "
        "hips and knees in line.",
        why="a good base for the muscles that steady your hips",
        facts="T3 M6",
        contexts="easy_day beginner comeback",
        areas="hips it_band",
    ),
    tip(
        "hips-after-hard-running",
        "Hills and fast running work the glutes and hip flexors hard. A gentle figure-four "
        "stretch and a kneeling lunge stretch this evening help them settle.",
        why="speed and hills load the hips as much as the legs",
        facts="M6 M2",
        contexts="after_workout",
        areas="hips",
    ),
    tip(
        "it-band-start-higher",
        "Looking after the outer knee starts at the hip. Give your glutes and the side of your "
        "hip a slow roll, not only the outer thigh.",
        why="the IT band runs from the hip down to the knee",
        facts="M6 M2",
        contexts="easy_day after_long_run high_volume",
        areas="it_band hips",
    ),
    tip(
        "it-band-side-steps",
        "Side-lying leg raises or side steps with a band, two sets of twelve a side, build the "
        "hip muscles that help keep your knee tracking straight.",
        why="strong hips help the knees track straight",
        facts="T3 M6",
        contexts="easy_day high_volume comeback",
        areas="it_band hips",
    ),
    tip(
        "it-band-if-sore",
        "If the outside of your knee gets sore, keep runs shorter, flatter and easy for a few "
        "days. If it hurts more as you run or lasts beyond a week, stop and see a physio.",
        why="outer-knee trouble is easier to settle when caught early",
        facts="M3 L2",
        contexts="easy_day after_long_run high_volume beginner",
        areas="it_band",
    ),
    # --- Quads (M6) ---
    tip(
        "quads-stretch",
        "Your quads do the braking on every downhill and at the end of every stride. A gentle "
        "standing quad stretch, about 30 seconds a leg, helps them settle.",
        why="the quads take a heavy share of hard running",
        facts="M6 M2",
        contexts="after_workout after_long_run after_race",
    ),
    # --- Core, lower back and upper body (M6: trunk steadies the pelvis; arms tense; T3) ---
    tip(
        "lower-back-cat-cow",
        "On hands and knees, slowly arch and round your back ten times. It gently loosens the "
        "lower back after time on your feet.",
        why="the lower back helps steady your pelvis on every stride",
        facts="M6 M2",
        contexts="easy_day after_long_run after_race race_week",
        areas="lower_back",
    ),
    tip(
        "core-dead-bug",
        "Dead bugs, two slow sets of eight, train the deep trunk muscles that keep your pelvis "
        "level and your stride smooth.",
        why="a strong core steadies the pelvis and lower back",
        facts="T3 M6",
        contexts="easy_day beginner comeback high_volume",
        areas="lower_back",
    ),
    tip(
        "core-side-plank",
        "Side planks, two holds of 20 to 30 seconds a side, train the trunk and hip muscles that "
        "keep your form tidy when you tire.",
        why="core strength helps you hold good form",
        facts="T3 M6",
        contexts="easy_day high_volume",
        areas="lower_back hips",
    ),
    tip(
        "lower-back-if-stiff",
        "If your lower back feels stiff after a long effort, a slow walk and a few gentle "
        "knee-to-chest hugs usually help. If pain spreads or lingers, see a physio.",
        why="the back helps hold you upright as the legs tire",
        facts="M6",
        contexts="after_long_run high_volume",
        areas="lower_back",
    ),
    tip(
        "upper-body-shoulders",
        "Roll your shoulders back and shrug a few times. The arms and upper back tense up on long "
        "efforts, and a stiff upper body tightens your arm swing.",
        why="long efforts tense the shoulders and arms too",
        facts="M6",
        contexts="after_long_run",
    ),
    tip(
        "upper-body-doorway",
        "Stand in a doorway with your forearms on the frame and lean gently forward for 30 "
        "seconds. It opens the chest and shoulders, which tend to round as you tire.",
        why="a relaxed upper body keeps your arm swing easy",
        facts="M6 M2",
        contexts="easy_day after_long_run race_week",
    ),
    tip(
        "upper-body-loose-hands",
        "On your next run, check your hands and jaw now and then. Loose hands and a soft face "
        "keep tension from creeping into your shoulders.",
        why="upper-body tension tends to build without you noticing",
        facts="M6",
        contexts="easy_day race_week beginner",
    ),
    # --- Stretching, mobility and cooling down (M2) ---
    tip(
        "stretch-when-warm",
        "Stretch after the run while you are still warm, easing into each position and holding "
        "it for 20 to 30 seconds. Never force it.",
        why="warm muscles take a stretch more comfortably",
        facts="M2 T3",
        contexts="easy_day beginner after_long_run",
    ),
    tip(
        "mobility-before",
        "Before you run, swap long static holds for leg swings, heel flicks and easy skips. "
        "Moving through your range gets the legs ready.",
        why="moving warm-ups suit the start of a run",
        facts="M2",
        contexts="easy_day race_week beginner",
    ),
    tip(
        "walk-it-off",
        "Walk for a few minutes after you stop running, before you sit down. It lets your "
        "breathing and your legs settle gently.",
        why="a gentle walk eases the change from running to rest",
        facts="L3",
        contexts="after_long_run after_race after_workout",
    ),
    # --- Sleep and the mental side (M5) ---
    tip(
        "sleep-big-week",
        "Big weeks are built in bed as much as on the road. Protect your bedtime on the nights "
        "after your hardest runs.",
        why="sleep matters more as the running grows",
        facts="M5",
        contexts="high_volume",
    ),
    tip(
        "sleep-screens",
        "Put screens away for the last half hour before bed tonight. A calm wind-down is one of "
        "the simplest recovery habits there is.",
        why="good sleep does a lot of quiet recovery work",
        facts="M5",
        contexts="easy_day after_race beginner high_volume",
    ),
    tip(
        "sleep-before-race",
        "Nerves often cut the last night before a race short, so keep to regular, unhurried "
        "bedtimes on the nights leading up to it.",
        why="sleep in the nights before a race counts too",
        facts="M5",
        contexts="race_week",
    ),
    tip(
        "mental-unwind",
        "Recovery is mental too. A quiet walk, a massage or ten minutes of slow breathing can "
        "lower stress and keep you keen to run.",
        why="the head needs rest as well as the legs",
        facts="M5",
        contexts="easy_day high_volume after_race",
    ),
    tip(
        "legs-up-rest",
        "Lie on your back with your legs up a wall for five minutes and breathe slowly. It is a "
        "calm, restful way to close a big effort.",
        why="slowing right down helps you switch off after a big effort",
        facts="M5",
        contexts="after_long_run after_race",
    ),
    # --- Food and drink (T3: part of the plan alongside massage and strength work) ---
    tip(
        "hydration-steady",
        "Drink steadily over the next few hours rather than all at once, with a little salt if "
        "you sweated heavily.",
        why="fluid lost over a big effort takes a while to replace",
        facts="T3",
        contexts="after_long_run after_race",
    ),
    tip(
        "hydration-daily",
        "Keep a water bottle within reach and sip through the day, not only at meals and around "
        "your runs.",
        why="steady drinking is an easy everyday habit",
        facts="T3",
        contexts="easy_day beginner high_volume race_week",
    ),
    tip(
        "refuel-after",
        "Eat a proper meal with carbohydrate and protein in the couple of hours after you finish. "
        "It refills the tank for the days ahead.",
        why="hard efforts use up a lot of fuel",
        facts="T3",
        contexts="after_long_run after_workout after_race",
    ),
    tip(
        "refuel-big-week",
        "Eat enough to match the running: regular meals with carbohydrate and protein stop a big "
        "week from leaving you running on empty.",
        why="more running needs more fuel",
        facts="T3",
        contexts="high_volume",
    ),
    # --- Load: easy days, gradual build-ups, rest (L1, L2, L3) ---
    tip(
        "easy-means-easy",
        "Keep easy runs truly easy, at a pace where you could chat in full sentences. That is "
        "what lets your harder days count.",
        why="easy days are where the body catches up",
        facts="L3",
        contexts="easy_day beginner high_volume",
    ),
    tip(
        "after-hard-session",
        "Give your legs a day or two of easy running or rest before the next hard effort. That "
        "is when the session turns into fitness.",
        why="hard efforts need a day or two of easier running",
        facts="L3",
        contexts="after_workout",
    ),
    tip(
        "ramp-gradually",
        "When you add distance, do it a step at a time. Small, steady increases from week to week "
        "are far easier on the body than big jumps.",
        why="big jumps in weekly distance raise the risk of trouble",
        facts="L2",
        contexts="easy_day beginner high_volume comeback",
    ),
    tip(
        "big-week-mostly-easy",
        "Keep most of this week's runs easy and save hard efforts for one or two sessions, so the "
        "extra distance does not pile up.",
        why="most of a big week's running should feel easy",
        facts="L1 L2 L3",
        contexts="high_volume",
    ),
    tip(
        "soreness-vs-pain",
        "Some muscle soreness a day or two after a hard run is normal. Sharp pain, or pain that "
        "grows as you run, means stop and get it checked by a physio.",
        why="knowing normal soreness from pain keeps you safe",
        facts="L3 M3",
        contexts="beginner after_workout after_long_run comeback after_race",
    ),
    tip(
        "strength-twice-weekly",
        "Two short strength sessions a week, with squats, lunges and calf raises, help your legs "
        "handle more running.",
        why="strength work belongs in the plan alongside running",
        facts="T3",
        contexts="easy_day high_volume",
    ),
    tip(
        "strength-basics",
        "Start strength work with body-weight squats and lunges, two sets of ten, twice a week. "
        "Simple moves done well are plenty at first.",
        why="a little strength work goes a long way early on",
        facts="T3",
        contexts="easy_day beginner comeback",
    ),
    tip(
        "rest-days",
        "Plan a rest day or two into every week. Rest is when your body adapts to the running "
        "you have done.",
        why="rest days are part of training, not a break from it",
        facts="L2 L3",
        contexts="beginner comeback",
    ),
    tip(
        "run-walk",
        "Mixing running with short walking breaks is a perfectly good way to build up. It lets "
        "you go further while your legs adapt.",
        why="legs need time to get used to running",
        facts="L2",
        contexts="beginner comeback",
    ),
    tip(
        "little-and-often",
        "Three or four short runs a week do more for you than one big one. Regular, gentle "
        "running is how the legs adapt.",
        why="steady, regular running builds up safely",
        facts="L2",
        contexts="beginner comeback",
    ),
    # --- Coming back after time off (L2) ---
    tip(
        "comeback-old-paces",
        "Leave your old paces and weekly distance alone for now. Run by feel, and let the numbers "
        "come back over a few weeks.",
        why="the body needs time to rebuild after a break",
        facts="L2",
        contexts="comeback",
    ),
    tip(
        "comeback-step-by-step",
        "Build back up a step at a time: a few short, easy runs this week, and a little more next "
        "week if everything feels good.",
        why="a gradual return is easier on muscles and tendons",
        facts="L2",
        contexts="comeback",
    ),
    tip(
        "comeback-listen",
        "Notice any spot that niggles as you build up, and ease back for a day or two if one "
        "does. If it hurts more as you run, stop and see a physio.",
        why="small niggles are easiest to settle early",
        facts="M3 L2",
        contexts="comeback beginner high_volume easy_day",
    ),
    # --- Race week (L3, T1, M5): stay fresh, nothing new, nothing deep in the last two days ---
    tip(
        "race-week-fresh",
        "Race week is for staying fresh: shorter runs, a few relaxed strides and early nights. "
        "The fitness is already in your legs.",
        why="the training is done, so arriving fresh is what counts",
        facts="L3 M5",
        contexts="race_week",
    ),
    tip(
        "race-week-nothing-new",
        "Nothing new before race day: no new shoes, no new foods, and no deep-tissue massage in "
        "the last two days.",
        why="surprises are the last thing you want before a race",
        facts="L3 T1",
        contexts="race_week",
    ),
    tip(
        "race-week-light-massage",
        "If you fancy a massage before the race, ask for a light one and have it well before the "
        "last two days. Save deep work for afterwards.",
        why="a light session eases tension without tiring the legs",
        facts="T1 L3",
        contexts="race_week",
    ),
    tip(
        "race-week-mobility",
        "Keep moving gently between runs: a short walk and a few minutes of easy mobility keep "
        "the legs loose without tiring them.",
        why="light movement keeps you loose close to a race",
        facts="M2 L3",
        contexts="race_week",
    ),
    tip(
        "race-week-no-strength",
        "Skip hard strength work and new exercises until after the race. A few familiar, light "
        "moves are fine if they are part of your routine.",
        why="the legs need to be fresh, not rebuilding",
        facts="L3",
        contexts="race_week",
    ),
    tip(
        "race-week-calm",
        "Lay out your kit early and plan the journey to the start. A settled routine gives "
        "pre-race nerves less to feed on.",
        why="a calm race week helps you sleep and stay fresh",
        facts="M5",
        contexts="race_week",
    ),
    tip(
        "race-week-food",
        "Stick to meals you know until the race is done. Familiar food is one less thing to "
        "think about on the day.",
        why="race week is no time for anything new",
        facts="T3",
        contexts="race_week",
    ),
    # --- After a race (T2, L3, M5): easy or rest, light not deep, refuel, sleep, a break ---
    tip(
        "post-race-easy-days",
        "Keep the next few runs short and gentle, or take a rest day or two. Hard training can "
        "wait until your legs feel normal again.",
        why="a race takes more out of you than it seems",
        facts="L3 T2",
        contexts="after_race",
    ),
    tip(
        "post-race-move-gently",
        "A walk or an easy spin on a bike the day after a race keeps you moving gently while the "
        "legs settle.",
        why="gentle movement suits legs that have just raced",
        facts="L3",
        contexts="after_race",
    ),
    tip(
        "post-race-light-massage",
        "If you book a massage after the race, ask for a light, recovery-focused one. Save deep "
        "work until your legs have settled.",
        why="a light session suits legs that have just raced",
        facts="T2 L3",
        contexts="after_race",
    ),
    tip(
        "post-race-mental-break",
        "Give yourself a few days off from plans and paces. Run for fun, or not at all, until you "
        "feel keen to train again.",
        why="a break for the head is part of race recovery",
        facts="M5 L3",
        contexts="after_race",
    ),
    tip(
        "post-race-reflect",
        "Jot down what went well and what you would change while the race is fresh. Then let it "
        "go and enjoy a few easy days.",
        why="a little reflection helps the head recover too",
        facts="M5",
        contexts="after_race",
    ),
    tip(
        "post-race-sleep",
        "Head to bed a little earlier for the next few nights. Racing tires the head as much as "
        "the legs.",
        why="good sleep is a big part of bouncing back",
        facts="M5",
        contexts="after_race",
    ),
    # --- Massage itself: what to ask for (M6), techniques (M7), rhythm (F1-F3), its place (T3) ---
    tip(
        "massage-ask-for",
        "When you next book a massage, ask for calves, hamstrings, quads, glutes and hip "
        "flexors: the muscles running loads most.",
        why="these muscles carry most of the work of running",
        facts="M6 T2",
        contexts="after_long_run high_volume easy_day",
    ),
    tip(
        "massage-techniques",
        "Sports massage covers several techniques: deep tissue, myofascial release, trigger point "
        "work and assisted stretching. Ask which suits your legs right now.",
        why="knowing the options helps you ask for the right one",
        facts="M7",
        contexts="easy_day",
    ),
    tip(
        "massage-rhythm",
        "A massage about once a month suits most regular runners. In your biggest training "
        "blocks, every week or two pays off.",
        why="regular sessions pay off more as the distance grows",
        facts="F1 F2 F3",
        contexts="high_volume easy_day",
    ),
    tip(
        "massage-early-warning",
        "A good therapist can spot tight or uneven muscles before they cause trouble, so mention "
        "any spot that keeps niggling.",
        why="tight spots are easier to settle before they build up",
        facts="M3",
        contexts="high_volume easy_day comeback",
    ),
    tip(
        "massage-feel-fresher",
        "A sports massage eases the soreness and tension running leaves behind, and many runners "
        "feel fresher after one.",
        why="regular care keeps everyday tightness in check",
        facts="M1 M4",
        contexts="easy_day high_volume after_long_run",
    ),
    tip(
        "massage-sleep",
        "A relaxing massage can help you switch off and sleep better, which counts as much as the "
        "legs in a big training block.",
        why="a calmer mind sleeps better in heavy training",
        facts="M5",
        contexts="high_volume",
    ),
    tip(
        "massage-in-the-plan",
        "Think of massage as one part of the plan, alongside strength work, stretching, good "
        "food and enough water.",
        why="recovery works best when the pieces fit together",
        facts="T3",
        contexts="easy_day high_volume",
    ),
)

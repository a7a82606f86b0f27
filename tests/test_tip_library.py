"""The recovery tip library and the session rules' wordings: checks on every line a runner reads."""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter

import pytest

from strava_massage.advice.state import NIGGLE_AREAS
from strava_massage.advice.tip_library import TIPS
from strava_massage.advice.tips import CONTEXTS, Tip
from strava_massage.advice.wordings import PLACEHOLDERS, WORDINGS, Wording

KNOWN_FACTS = frozenset(
    [f"M{n}" for n in range(1, 8)] + [f"F{n}" for n in range(1, 4)]
    + [f"T{n}" for n in range(1, 4)] + [f"L{n}" for n in range(1, 4)]
)  # fmt: skip

MIN_TIPS = 64
MIN_PER_CONTEXT = {
    "race_week": 8,
    "after_race": 8,
    "comeback": 7,
    "after_long_run": 10,
    "after_workout": 8,
    "high_volume": 8,
    "beginner": 8,
    "easy_day": 20,
}
MIN_TIPS_PER_AREA = 3
MIN_CONTEXTS_PER_AREA = 3
MAX_TEXT = 200
MAX_WHY = 70
MAX_BOOKING_TIPS = 5

# Claims the research does not back, or that go beyond the facts (recovery-knowledge.md).
BANNED = [
    r"blood flow",
    r"circulat",
    r"oxygen",
    r"nutrient",
    r"lactic",
    r"toxin",
    r"detox",
    r"flush",
    r"metabolic waste",
    r"urine",
    r"\bdesk",
    r"\d+\s*-\s*\d+ minutes (of|more) sleep",
    r"\bextra \d+",
    r"\?",
    r"supplement",
    r"ice bath",
    r"painkiller",
    r"ibuprofen",
    r"\bcures?\b",
    r"prevents? injur",
    r"will prevent",
    r"guarantee",
    r"\d+\s*%|per ?cent",
    r"\bstud(y|ies)\b|research",
]
# Mentions of pain, injury or a named condition, and the "when to stop, who to see" they need.
PAIN = re.compile(
    r"\b(pain\w*|hurts?|hurting|injur\w*|it band syndrome|plantar fasciitis|tendinitis|"
    r"tendinopathy|shin splints|runner's knee)\b",
    re.IGNORECASE,
)
STOP = re.compile(r"\b(stop|see|get it checked)\b", re.IGNORECASE)
PROFESSIONAL = re.compile(r"\b(physio|physiotherapist|doctor|professional)\b", re.IGNORECASE)
# A `why` finishes "Why: <the run's context>; <why>", so one naming a situation fits only there.
WHY_SITUATIONS = {
    r"\blong run": {"after_long_run"},
    r"\brac(e|ed|ing)\b": {"race_week", "after_race"},
    r"\b(workout|intervals?|tempo)\b": {"after_workout"},
    r"\b(big|this) week|\bmileage\b": {"high_volume"},
    r"\b(comeback|layoff|time off|back from)\b": {"comeback"},
    r"\b(beginner|new to running)\b": {"beginner"},
    r"\b(today|easy day)\b": {"easy_day"},
}
# New strength work has no place in race week or the days right after a race (L3).
STRENGTH = re.compile(
    r"\b(squats?|bridges?|planks?|clamshells?|calf raises|dead bugs?|sets of|leg raises)\b",
    re.IGNORECASE,
)
NEGATED_DEEP = re.compile(r"\b(no|not|nothing|save|skip|without)\b[^.]*\bdeep", re.IGNORECASE)
BOOKING = re.compile(r"\b(book\w*|appointment|schedule)\b", re.IGNORECASE)

SAMPLE_VALUES = {
    "distance": "42.2 km",
    "time": "3:41:07",
    "window": "2-3",
    "race_in": "5 days",
    "hours": "48",
    "mark": "48 km",
    "days": "34",
}
MAX_HEADLINE = 48
MAX_BODY = 230
MIN_WORDINGS = 3
MIN_WORDINGS_FOR = {
    "post_race.half": 4,
    "post_race.long": 4,
    "long_run": 4,
    "high_volume": 4,
    "monthly_checkin": 4,
}
INTERNAL = re.compile(r"\b(cooldown|cool-down period|fallback|instead|rule|threshold)\b", re.I)
ALL_WORDINGS = [w for key in sorted(WORDINGS) for w in WORDINGS[key]]


def _tips_ids(tips: list[Tip]) -> list[str]:
    """Readable parametrize ids for tips."""
    return [t.id for t in tips]


def _banned_in(text: str) -> list[str]:
    """The banned patterns found in a text."""
    return [p for p in BANNED if re.search(p, text, re.IGNORECASE)]


def _fields(template: str) -> set[str]:
    """The str.format field names a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


# --- the tips ----------------------------------------------------------------------------------


def test_library_size() -> None:
    """The library holds enough tips for variety."""
    assert len(TIPS) >= MIN_TIPS


def test_ids_and_texts_unique() -> None:
    """No two tips share an id or a text."""
    assert len({t.id for t in TIPS}) == len(TIPS)
    assert len({t.text for t in TIPS}) == len(TIPS)


@pytest.mark.parametrize(("context", "minimum"), sorted(MIN_PER_CONTEXT.items()))
def test_context_has_enough_tips(context: str, minimum: int) -> None:
    """Each context has at least its minimum number of tips."""
    assert set(MIN_PER_CONTEXT) == set(CONTEXTS)
    assert sum(context in t.contexts for t in TIPS) >= minimum


@pytest.mark.parametrize("area", sorted(NIGGLE_AREAS))
def test_area_has_enough_tips_across_contexts(area: str) -> None:
    """Each niggle area has 3+ tips spanning 3+ contexts, easy_day among them."""
    tips = [t for t in TIPS if area in t.areas]
    assert len(tips) >= MIN_TIPS_PER_AREA
    contexts = set().union(*(t.contexts for t in tips))
    assert len(contexts) >= MIN_CONTEXTS_PER_AREA
    assert "easy_day" in contexts


def test_booking_mentioned_in_few_tips() -> None:
    """Session suggestions are the rules' job: only a handful of tips mention booking."""
    assert sum(bool(BOOKING.search(t.text)) for t in TIPS) <= MAX_BOOKING_TIPS


@pytest.mark.parametrize("tip", TIPS, ids=_tips_ids(list(TIPS)))
class TestTip:
    """Checks that hold for every tip."""

    def test_id_is_kebab_case(self, tip: Tip) -> None:
        """Ids are lowercase words joined by single hyphens."""
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", tip.id)

    def test_text_shape(self, tip: Tip) -> None:
        """One or two sentences on one line, at most 200 characters, ending with a full stop."""
        assert len(tip.text) <= MAX_TEXT
        assert "\n" not in tip.text and "\r" not in tip.text
        assert tip.text == tip.text.strip() and "  " not in tip.text
        assert tip.text[0].isupper()
        assert tip.text.endswith(".")
        assert 1 <= len(re.findall(r"[.!](?:\s|$)", tip.text)) <= 2

    def test_why_shape(self, tip: Tip) -> None:
        """`why` starts lowercase, has no final full stop and fits the Why line."""
        assert tip.why and len(tip.why) <= MAX_WHY
        assert tip.why[0].islower()
        assert not tip.why.endswith((".", "!", "?", ";", ":", ","))
        assert ";" not in tip.why, "the Why line already has one"
        assert "\n" not in tip.why and tip.why == tip.why.strip()

    def test_why_fits_every_context(self, tip: Tip) -> None:
        """A `why` naming a situation is only used where the run is in that situation."""
        for pattern, allowed in WHY_SITUATIONS.items():
            if re.search(pattern, tip.why, re.IGNORECASE):
                assert tip.contexts <= allowed, pattern

    def test_metadata_known(self, tip: Tip) -> None:
        """Facts, contexts and areas come from the known sets, and each tip has some."""
        assert tip.fact_ids and set(tip.fact_ids) <= KNOWN_FACTS
        assert len(set(tip.fact_ids)) == len(tip.fact_ids)
        assert tip.contexts and tip.contexts <= set(CONTEXTS)
        assert tip.areas <= set(NIGGLE_AREAS)

    def test_no_banned_claims(self, tip: Tip) -> None:
        """No unsupported or out-of-scope claim, and no question, in the text or the why."""
        assert not _banned_in(tip.text) and not _banned_in(tip.why)

    def test_no_run_numbers(self, tip: Tip) -> None:
        """Distances belong to the Why line, not the tip."""
        text = f"{tip.text} {tip.why}"
        assert not re.search(r"\b(km|mi|miles?|kilomet\w*|k)\b", text, re.IGNORECASE)

    def test_pain_tips_say_when_to_see_someone(self, tip: Tip) -> None:
        """A tip naming pain, injury or a condition says when to stop and who to see."""
        if PAIN.search(tip.text) or PAIN.search(tip.why):
            assert STOP.search(tip.text) and PROFESSIONAL.search(tip.text)

    def test_no_new_strength_around_races(self, tip: Tip) -> None:
        """Strength exercises are never tagged race_week or after_race."""
        if STRENGTH.search(tip.text):
            assert not tip.contexts & {"race_week", "after_race"}

    def test_no_deep_work_around_races(self, tip: Tip) -> None:
        """Around a race, deep work is only ever mentioned to rule it out."""
        if tip.contexts & {"race_week", "after_race"} and "deep" in tip.text.lower():
            assert NEGATED_DEEP.search(tip.text)

    def test_facts_only_cited_as_allowed(self, tip: Tip) -> None:
        """M4 is cited only with its allowed wording: runners may feel fresher."""
        if "M4" in tip.fact_ids:
            assert "feel fresher" in tip.text


# --- the wordings ------------------------------------------------------------------------------


def test_every_key_has_wordings() -> None:
    """Every PLACEHOLDERS key has enough wordings, and WORDINGS has no unknown key."""
    assert set(WORDINGS) == set(PLACEHOLDERS)
    for key, wordings in WORDINGS.items():
        assert len(wordings) >= MIN_WORDINGS_FOR.get(key, MIN_WORDINGS), key


def test_wording_ids_unique_and_prefixed() -> None:
    """Wording ids are unique and read "<key>.<n>"."""
    ids = [w.id for w in ALL_WORDINGS]
    assert not [i for i, n in Counter(ids).items() if n > 1]
    for key, wordings in WORDINGS.items():
        for wording in wordings:
            assert re.fullmatch(re.escape(key) + r"\.[1-9][0-9]*", wording.id), wording.id


@pytest.mark.parametrize("key", sorted(WORDINGS))
def test_wordings_of_a_key_differ(key: str) -> None:
    """The wordings of one key are clearly different, not one word apart."""
    texts = [f"{w.headline} {w.body}".lower() for w in WORDINGS[key]]
    for i, first in enumerate(texts):
        for second in texts[i + 1 :]:
            assert difflib.SequenceMatcher(None, first, second).ratio() < 0.75


def _key_of(wording: Wording) -> str:
    """The WORDINGS key a wording belongs to."""
    return next(key for key, wordings in WORDINGS.items() if wording in wordings)


@pytest.mark.parametrize("wording", ALL_WORDINGS, ids=[w.id for w in ALL_WORDINGS])
class TestWording:
    """Checks that hold for every wording."""

    def test_only_allowed_placeholders(self, wording: Wording) -> None:
        """Headline and body use only their key's placeholders, as plain str.format fields."""
        allowed = PLACEHOLDERS[_key_of(wording)]
        for template in (wording.headline, wording.body):
            assert _fields(template) <= allowed
            for _, name, spec, conversion in string.Formatter().parse(template):
                assert name is None or (name.isidentifier() and not spec and not conversion)

    def test_formatted_lengths(self, wording: Wording) -> None:
        """Formatted with realistic values, the headline and body fit their limits."""
        headline = wording.headline.format(**SAMPLE_VALUES)
        body = wording.body.format(**SAMPLE_VALUES)
        assert headline and len(headline) <= MAX_HEADLINE
        assert len(body) <= MAX_BODY
        assert "\n" not in headline + body
        assert "{" not in headline + body and "}" not in headline + body

    def test_plain_text_only(self, wording: Wording) -> None:
        """No numbers but placeholders, no "Why", no internal logic, no banned claim."""
        for template in (wording.headline, wording.body):
            literal = "".join(text for text, _, _, _ in string.Formatter().parse(template))
            assert not re.search(r"\d", literal)
            assert not re.search(r"\bwhy\b", literal, re.IGNORECASE)
            assert not INTERNAL.search(literal)
            assert not _banned_in(literal)

    def test_body_shape(self, wording: Wording) -> None:
        """Comeback wordings are headline-only; every other body is full sentences."""
        if _key_of(wording) == "comeback":
            assert wording.body == ""
        else:
            assert wording.body and wording.body.endswith(".")

    def test_no_booking_where_not_wanted(self, wording: Wording) -> None:
        """The warning-only and recent-massage wordings never suggest booking anything."""
        if _key_of(wording) in {"load_spike.warning", "pre_race.recent_massage"}:
            assert not BOOKING.search(wording.body) and not BOOKING.search(wording.headline)
        if _key_of(wording) == "load_spike.warning":
            assert "massage" not in (wording.headline + wording.body).lower()

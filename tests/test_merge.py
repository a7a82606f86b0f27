"""The runner's text is sacred: the note block merges in without changing a byte around it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from strava_massage.domain.merge import BLOCK_END, BLOCK_START, make_block, merge_note, runner_text
from strava_massage.models import Note

from .conftest import Stack

TRICKY = (
    "Tempo 🏃‍♀️🔥 with Zoë & 大家\r\n"
    "line two\n\n\n"
    f"{BLOCK_START[:-1]}\n"  # a look-alike start marker
    f"  {BLOCK_END}\n"  # an indented look-alike end marker
    "— Legwork note\n"
    "tabs\tand trailing spaces   \n"
    "\u200b zero width, \u202e right-to-left override\n"
    "last line without newline"
)


def test_first_note_appends_after_the_runners_text() -> None:
    merged = merge_note(TRICKY, "note one")
    assert merged.startswith(TRICKY)
    assert merged.count(make_block("note one")) == 1
    assert runner_text(merged, make_block("note one")) == TRICKY


def test_second_note_replaces_the_block_and_keeps_text_on_both_sides() -> None:
    first = merge_note(TRICKY, "note one")
    edited = first + "\nadded by the runner after the note ✅"
    second = merge_note(edited, "note two", make_block("note one"))
    assert second.count(BLOCK_START + "\n") == 1
    assert "note one" not in second and "note two" in second
    assert (
        runner_text(second, make_block("note two"))
        == TRICKY + "\nadded by the runner after the note ✅"
    )


def test_empty_description_gets_just_the_block() -> None:
    assert merge_note("", "hello") == make_block("hello")


def test_runner_edit_inside_the_block_is_still_recognised_as_ours() -> None:
    first = merge_note("mine", "note one")
    tampered = first.replace("note one", "note one (edited)")
    second = merge_note(tampered, "note two", make_block("note one"))
    assert second == "mine\n\n" + make_block("note two")


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300).filter(
    lambda t: BLOCK_START not in t and BLOCK_END not in t
)


@settings(max_examples=300, deadline=None)
@given(
    before=_text,
    after=_text,
    n1=st.text(min_size=1, max_size=80),
    n2=st.text(min_size=1, max_size=80),
)
def test_merge_preserves_any_runner_text(before: str, after: str, n1: str, n2: str) -> None:
    n1, n2 = n1.replace(BLOCK_START, "").strip() or "a", n2.replace(BLOCK_END, "").strip() or "b"
    first = merge_note(before, n1)
    assert runner_text(first, make_block(n1)) == before
    # The runner adds text after the note; the next note replaces the block in place.
    edited = first + after
    second = merge_note(edited, n2, make_block(n1))
    assert runner_text(second, make_block(n2)) == before + after
    assert second.count(make_block(n2)) == 1
    assert merge_note(second, n2, make_block(n2)) == second  # idempotent


def test_two_notes_on_strava_keep_the_description_byte_for_byte(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    run = stack.sim.create_activity(athlete["id"], description=TRICKY)
    stack.wait_idle()
    first = stack.sim.activity(run["id"])["description"]
    assert first.startswith(TRICKY) and first.count(BLOCK_START + "\n") == 1
    # The runner writes more below the note; then the note is decided afresh and rewritten.
    stack.sim.update_activity(run["id"], fire=False, description=first + "\nPS: new shoes 👟")
    with stack.db.session() as session:
        session.execute(delete(Note))
        session.commit()
    stack.sim.fire_event("activity", run["id"], "create", athlete["id"], event_time=1)
    stack.wait_idle()
    second = stack.sim.activity(run["id"])["description"]
    assert second.count(BLOCK_START + "\n") == 1 and second.count("\n" + BLOCK_END) == 1
    assert runner_text(second) == TRICKY + "\nPS: new shoes 👟"

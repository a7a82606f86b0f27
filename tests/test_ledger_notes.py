"""The ledger's reads of past notes: the wording each rule used last and the last note of a kind,
on both databases, and each one index lookup per kind whatever the runner's history."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import insert

from strava_massage.advice import KINDS, MONTHLY_CHECKIN, RECOVERY_TIP
from strava_massage.advice.wordings import WORDINGS
from strava_massage.db import Database
from strava_massage.domain import ledger
from strava_massage.models import Athlete, Note

RUNNER, OTHER = 7, 8
DAY = dt.date(2026, 11, 30)
WORDING_KINDS = sorted({key.split(".")[0] for key in WORDINGS})


def _note(
    activity_id: int, day: dt.date, kind: str, wording: str | None, athlete: int = RUNNER
) -> dict[str, Any]:
    return {"activity_id": activity_id, "athlete_id": athlete, "local_date": day, "kind": kind,
            "is_session": kind != RECOVERY_TIP, "tip_id": None, "wording_id": wording,
            "reason": "r", "fact_ids": "", "text": "t", "target": "description",
            "status": "written"}  # fmt: skip


def _store(db: Database, notes: list[dict[str, Any]]) -> None:
    with db.session() as session:
        session.add_all([Athlete(id=RUNNER), Athlete(id=OTHER)])
        session.flush()
        if notes:
            session.execute(insert(Note), notes)
        session.commit()


def _wordings(db: Database, day: dt.date = DAY, exclude: int = -1) -> dict[str, str]:
    with db.session() as session:
        rows = session.execute(*ledger.last_wordings_query(RUNNER, day, exclude)).all()
    assert len(rows) == len({r.kind for r in rows}), rows  # one row per kind at most
    return {r.kind: r.wording_id for r in rows}


def _last_of(db: Database, kind: str, day: dt.date = DAY, exclude: int = -1) -> dt.date | None:
    with db.session() as session:
        athlete = session.get(Athlete, RUNNER)
        assert athlete is not None
        row = session.execute(*ledger.history_query(athlete, day, kind, exclude)).one()
        return ledger.history_of(row).last_note_of_kind


def test_each_rule_s_last_wording_however_long_ago(db: Database) -> None:
    long_ago = DAY - dt.timedelta(days=3000)
    _store(db, [
        _note(1, long_ago, "long_run", "long_run.a"),
        _note(2, long_ago, "comeback", "comeback.b"),
        _note(3, DAY - dt.timedelta(days=70), "long_run", "long_run.b"),
        *(_note(10 + n, DAY - dt.timedelta(days=n), RECOVERY_TIP, None) for n in range(60)),
        _note(100, DAY, "load_spike", "load_spike.warning.a", athlete=OTHER),  # another runner's
    ])  # fmt: skip
    assert _wordings(db) == {"long_run": "long_run.b", "comeback": "comeback.b"}


def test_the_latest_by_day_then_by_id(db: Database) -> None:
    _store(db, [
        _note(1, DAY - dt.timedelta(days=2), "high_volume", "high_volume.a"),
        _note(2, DAY - dt.timedelta(days=9), "high_volume", "high_volume.b"),  # older, stored later
        _note(3, DAY - dt.timedelta(days=1), "post_race", "post_race.short.a"),
        _note(4, DAY - dt.timedelta(days=1), "post_race", "post_race.half.b"),  # same day, later
    ])  # fmt: skip
    assert _wordings(db) == {"high_volume": "high_volume.a", "post_race": "post_race.half.b"}


def test_the_run_itself_and_later_days_are_left_out(db: Database) -> None:
    _store(db, [
        _note(1, DAY - dt.timedelta(days=30), "pre_race", "pre_race.a"),
        _note(2, DAY - dt.timedelta(days=3), "pre_race", "pre_race.b"),
        _note(3, DAY + dt.timedelta(days=1), "monthly_checkin", "monthly_checkin.a"),
    ])  # fmt: skip
    assert _wordings(db) == {"pre_race": "pre_race.b"}
    assert _wordings(db, exclude=2) == {"pre_race": "pre_race.a"}
    assert _wordings(db, day=DAY - dt.timedelta(days=4)) == {"pre_race": "pre_race.a"}
    assert _wordings(db, day=DAY + dt.timedelta(days=1))["monthly_checkin"] == "monthly_checkin.a"
    assert _wordings(db, day=DAY - dt.timedelta(days=31)) == {}


def test_notes_from_before_wordings_give_none(db: Database) -> None:
    # Notes stored before wordings existed carry none: the rule may then use any of its wordings.
    old = [_note(n, DAY - dt.timedelta(days=900 + n), kind, None) for n, kind in enumerate(KINDS)]
    _store(db, [*old, _note(100, DAY, RECOVERY_TIP, None)])
    assert _wordings(db) == {}


def test_random_histories_match_the_newest_note_of_each_kind(db: Database) -> None:
    rng = random.Random(5)
    kinds = [*WORDING_KINDS, RECOVERY_TIP, RECOVERY_TIP, RECOVERY_TIP]
    notes = []
    for activity_id in range(1, 400):
        kind = rng.choice(kinds)
        day = DAY - dt.timedelta(days=rng.randint(-10, 800))
        wording = None if kind == RECOVERY_TIP else f"{kind}.{rng.choice('abc')}{activity_id}"
        notes.append(
            _note(activity_id, day, kind, wording, athlete=rng.choice([RUNNER, RUNNER, OTHER]))
        )
    _store(db, notes)
    for day, exclude in [
        (DAY, -1),
        (DAY - dt.timedelta(days=200), 17),
        (DAY, notes[-1]["activity_id"]),
    ]:
        mine = [
            (n["local_date"], n["activity_id"], n)
            for n in notes
            if n["athlete_id"] == RUNNER and n["local_date"] <= day and n["activity_id"] != exclude
        ]
        expected: dict[str, str] = {}
        latest: dict[str, dt.date] = {}
        for _, _, n in sorted(mine, key=lambda t: (t[0], t[1])):  # ids grow with activity ids here
            if n["wording_id"]:
                expected[n["kind"]] = n["wording_id"]
            latest[n["kind"]] = n["local_date"]
        assert _wordings(db, day, exclude) == expected
        for kind in WORDING_KINDS:
            assert _last_of(db, kind, day, exclude) == latest.get(kind), kind


def test_the_last_note_of_a_kind_never_given_is_none(db: Database) -> None:
    tips = [_note(n, DAY - dt.timedelta(days=n), RECOVERY_TIP, None) for n in range(1, 50)]
    checkins = [
        _note(100, DAY - dt.timedelta(days=400), MONTHLY_CHECKIN, "monthly_checkin.a"),
        _note(101, DAY - dt.timedelta(days=3), MONTHLY_CHECKIN, "monthly_checkin.b"),
    ]
    _store(db, [*tips, *checkins])
    assert _last_of(db, "load_spike") is None
    assert _last_of(db, MONTHLY_CHECKIN) == DAY - dt.timedelta(days=3)
    assert _last_of(db, MONTHLY_CHECKIN, exclude=101) == DAY - dt.timedelta(days=400)
    assert _last_of(db, MONTHLY_CHECKIN, day=DAY - dt.timedelta(days=401)) is None


def test_past_notes_are_read_along_the_kind_index(db: Database) -> None:
    """Each read of a kind's notes is a search of (athlete, kind, date), never a walk of the
    runner's notes: its cost does not grow with the history (SQLite's plan, which is stable)."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL's plan depends on its statistics; the benchmark measures it")
    _store(db, [])
    with db.session() as session:
        athlete = session.get(Athlete, RUNNER)
        assert athlete is not None
        queries = [ledger.last_wordings_query(RUNNER, DAY, -1),
                   ledger.history_query(athlete, DAY, "load_spike", -1)]  # fmt: skip
        for stmt, params in queries:
            compiled = stmt.compile(session.get_bind())
            values = compiled.construct_params(params)
            assert compiled.positiontup is not None
            plan = session.connection().exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(values[k] for k in compiled.positiontup)
            )
            notes = [row[3] for row in plan if " notes " in f"{row[3]} "]
            assert notes, "the statement reads the notes"
            for step in notes:
                assert "ix_notes_athlete_kind_date (athlete_id=? AND kind=?" in step, step

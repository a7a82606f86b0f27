"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from sqlalchemy import create_engine, inspect, text

from strava_massage.db import Database, alembic_config

from .conftest import Backend


def test_migrations_match_the_models(backend: Backend) -> None:
    db = Database(backend.database_url)
    db.upgrade()
    # Raises if autogenerate would still find a difference between models and database.
    command.check(alembic_config(backend.database_url))
    db.upgrade()  # a second upgrade is a no-op
    db.dispose()


def test_upgrading_a_database_in_use_keeps_every_row(backend: Backend) -> None:
    # Batch mode rebuilds SQLite tables; with foreign keys on, dropping the old athletes table
    # would cascade into tokens and runs. An upgrade must never lose a runner's data.
    config = alembic_config(backend.database_url)
    command.upgrade(config, "0004")
    engine = create_engine(backend.database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO athletes (id, units, scope, notes_enabled, connected_at, note_target,"
                " advice_overrides, backfill_status, backfill_runs)"
                " VALUES (7, 'km', '', TRUE, CURRENT_TIMESTAMP, 'description', '{}', 'none', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO tokens (athlete_id, access_token, refresh_token, expires_at, version)"
                " VALUES (7, :sealed, :sealed, 0, 0)"
            ),
            {"sealed": b"sealed"},
        )
        conn.execute(
            text(
                "INSERT INTO activities (id, athlete_id, local_date, distance_m, moving_time_s,"
                " sport_type) VALUES (70, 7, '2026-11-02', 5000, 1500, 'Run')"
            )
        )
    db = Database(backend.database_url)
    db.upgrade()
    with engine.connect() as conn:
        for table in ("athletes", "tokens", "activities"):
            assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 1, table  # noqa: S608
        assert conn.scalar(text("SELECT clinic_id FROM athletes")) is None
    engine.dispose()
    db.dispose()


def test_a_cooldown_override_becomes_the_two_session_gaps(backend: Backend) -> None:
    """0006 turns cooldown_days into session_gap_days and a peak gap of at most 7, and back."""
    config = alembic_config(backend.database_url)
    command.upgrade(config, "0005")
    engine = create_engine(backend.database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO athletes (id, units, scope, notes_enabled, connected_at, note_target,"
                " advice_overrides, backfill_status, backfill_runs) VALUES"
                " (7, 'km', '', TRUE, CURRENT_TIMESTAMP, 'description', :ten, 'none', 0),"
                " (8, 'km', '', TRUE, CURRENT_TIMESTAMP, 'description', :five, 'none', 0),"
                " (9, 'km', '', TRUE, CURRENT_TIMESTAMP, 'description', '{}', 'none', 0)"
            ),
            {
                "ten": '{"cooldown_days": 10}',
                "five": '{"cooldown_days": 5, "cooldown_exempt": ["post_race"], "peak_weeks": 8}',
            },
        )
        conn.execute(
            text(
                "INSERT INTO clinics (id, slug, name, advice_overrides, note_templates, created_at)"
                " VALUES (1, 'knead', 'Knead', :ten, '{}', CURRENT_TIMESTAMP)"
            ),
            {"ten": '{"cooldown_days": 10}'},
        )

    def overrides() -> dict[str, Any]:
        """Each row's stored overrides, runners by id, then the clinic."""
        with engine.connect() as conn:
            found = {
                f"athlete {i}": _json(o)
                for i, o in conn.execute(text("SELECT id, advice_overrides FROM athletes"))
            }
            found["clinic"] = _json(conn.scalar(text("SELECT advice_overrides FROM clinics")))
        return found

    command.upgrade(config, "head")
    assert overrides() == {
        "athlete 7": {"session_gap_days": 10, "peak_session_gap_days": 7},
        "athlete 8": {"session_gap_days": 5, "peak_session_gap_days": 5, "peak_weeks": 8},
        "athlete 9": {},
        "clinic": {"session_gap_days": 10, "peak_session_gap_days": 7},
    }
    command.downgrade(config, "0005")
    assert overrides() == {
        "athlete 7": {"cooldown_days": 10},
        "athlete 8": {"cooldown_days": 5, "peak_weeks": 8},
        "athlete 9": {},
        "clinic": {"cooldown_days": 10},
    }
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("athletes")}
    assert "niggle_area" not in columns and "niggle_on" not in columns
    engine.dispose()


def _json(stored: Any) -> Any:
    """A JSON column read as plain text: SQLite hands back the text, PostgreSQL the value."""
    return json.loads(stored) if isinstance(stored, str) else stored

"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

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

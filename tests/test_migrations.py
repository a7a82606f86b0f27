"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command

from strava_massage.db import Database, alembic_config

from .conftest import Backend


def test_migrations_match_the_models(backend: Backend) -> None:
    db = Database(backend.database_url)
    db.upgrade()
    # Raises if autogenerate would still find a difference between models and database.
    command.check(alembic_config(backend.database_url))
    db.upgrade()  # a second upgrade is a no-op
    db.dispose()

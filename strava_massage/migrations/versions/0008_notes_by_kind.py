"""notes by kind and by id: indexes on notes (athlete_id, kind, local_date) and (athlete_id, id)

The last note of a kind and the wording each rule used last are then one index lookup per
kind, and a page of the dashboard's notes (newest id first) one index range, however long the
runner's history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_notes_athlete_kind_date", "notes", ["athlete_id", "kind", "local_date"], unique=False
    )
    op.create_index("ix_notes_athlete_id", "notes", ["athlete_id", "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_notes_athlete_id", table_name="notes")
    op.drop_index("ix_notes_athlete_kind_date", table_name="notes")

"""clinics, their staff and wording; runners' clinic, consent and its record

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _clinic_fk(table: str) -> sa.Column:  # type: ignore[type-arg]
    """A nullable clinic column whose reference is declared inline.

    Inline, SQLite adds it with ALTER TABLE; a separate create_foreign_key would make batch mode
    rebuild the table, and dropping the old athletes table would cascade into tokens and runs.
    """
    return sa.Column(
        "clinic_id",
        sa.Integer(),
        sa.ForeignKey("clinics.id", name=f"fk_{table}_clinic_id", ondelete="SET NULL"),
        nullable=True,
    )


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "clinics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("booking_url", sa.String(length=300), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=32), nullable=True),
        sa.Column("advice_overrides", sa.JSON(), nullable=False),
        sa.Column("note_templates", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "clinic_staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("reset_hash", sa.String(length=64), nullable=True),
        sa.Column("reset_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "consent_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("athlete_id", sa.BigInteger(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["athlete_id"], ["athletes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_changes_athlete_id", "consent_changes", ["athlete_id"])

    with op.batch_alter_table("athletes", schema=None) as batch_op:
        batch_op.add_column(_clinic_fk("athletes"))
        batch_op.add_column(sa.Column("clinic_joined_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("clinic_consent_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("clinic_display_name", sa.String(length=80)))
        batch_op.create_index("ix_athletes_clinic_id", ["clinic_id"], unique=False)

    with op.batch_alter_table("massage_sessions", schema=None) as batch_op:
        batch_op.add_column(_clinic_fk("massage_sessions"))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("massage_sessions", schema=None) as batch_op:
        batch_op.drop_column("clinic_id")
    with op.batch_alter_table("athletes", schema=None) as batch_op:
        batch_op.drop_index("ix_athletes_clinic_id")
        batch_op.drop_column("clinic_display_name")
        batch_op.drop_column("clinic_consent_at")
        batch_op.drop_column("clinic_joined_at")
        batch_op.drop_column("clinic_id")
    op.drop_index("ix_consent_changes_athlete_id", table_name="consent_changes")
    op.drop_table("consent_changes")
    op.drop_table("clinic_staff")
    op.drop_table("clinics")

"""sessions and logins: a session generation per runner and staff login, login tries by source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    for table in ("athletes", "clinic_staff"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
            )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("free_at", sa.Float(), nullable=True),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_login_throttle_last_at", "login_throttle", ["last_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_throttle_last_at", table_name="login_throttle")
    op.drop_table("login_throttle")
    for table in ("clinic_staff", "athletes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_version")

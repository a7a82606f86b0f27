"""advice v2: a runner's niggle, a note's wording, session gaps in place of one cooldown

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The peak-week gap this revision introduced, as it was then: a migration never follows later
# changes of the defaults.
PEAK_SESSION_GAP_DAYS = 7

Overrides = dict[str, Any]


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("athletes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("niggle_area", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("niggle_on", sa.Date(), nullable=True))
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wording_id", sa.String(length=64), nullable=True))
    _rewrite_overrides(_gap_from_cooldown)


def downgrade() -> None:
    """Revert this revision."""
    _rewrite_overrides(_cooldown_from_gap)
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_column("wording_id")
    with op.batch_alter_table("athletes", schema=None) as batch_op:
        batch_op.drop_column("niggle_on")
        batch_op.drop_column("niggle_area")


def _gap_from_cooldown(overrides: Overrides) -> Overrides:
    """One cooldown for every session suggestion becomes the gap, and at most 7 in a peak week.

    `cooldown_exempt` (the rules that ignored the cooldown) has no meaning any more: dropped.
    """
    new = {k: v for k, v in overrides.items() if k not in ("cooldown_days", "cooldown_exempt")}
    if "cooldown_days" in overrides:
        days = overrides["cooldown_days"]
        new.setdefault("session_gap_days", days)
        peak = min(days, PEAK_SESSION_GAP_DAYS) if isinstance(days, int | float) else days
        new.setdefault("peak_session_gap_days", peak)
    return new


def _cooldown_from_gap(overrides: Overrides) -> Overrides:
    """The gap goes back to being the one cooldown; the peak-week gap had no equal before."""
    new = {
        k: v for k, v in overrides.items() if k not in ("session_gap_days", "peak_session_gap_days")
    }
    if "session_gap_days" in overrides:
        new.setdefault("cooldown_days", overrides["session_gap_days"])
    return new


def _rewrite_overrides(change: Callable[[Overrides], Overrides]) -> None:
    """Apply `change` to the stored advice overrides of every runner and every clinic."""
    conn = op.get_bind()
    for name in ("athletes", "clinics"):
        # A lightweight table with the JSON type, so both databases hand back and take dicts.
        table = sa.table(
            name, sa.column("id", sa.Integer()), sa.column("advice_overrides", sa.JSON())
        )
        rows = conn.execute(sa.select(table.c.id, table.c.advice_overrides)).all()
        for row_id, overrides in rows:
            if not isinstance(overrides, dict):
                continue
            changed = change(overrides)
            if changed != overrides:
                conn.execute(
                    table.update().where(table.c.id == row_id).values(advice_overrides=changed)
                )

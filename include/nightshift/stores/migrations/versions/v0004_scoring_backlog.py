"""`scoring_backlog`: nights that were left without predictions, why, and which command scores them.

A night whose scoring found no champion gets a row with status `unscored`, its reason and the command that scores
it. When the night is scored and re-measured (by the first nightly run that finds a champion, by
`nightshift score-backlog`, or by a rerun of the night), the row turns `scored` and names the version and run, so
the history of a late night is kept. The primary key (model, dt) serves every query.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_backlog",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("dt", sa.Date, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("scored_version", sa.String(32)),
        sa.Column("scored_run_id", sa.String(250)),
    )

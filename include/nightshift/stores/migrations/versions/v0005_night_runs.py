"""`night_runs`: every run's validation, drift and retrain decision of a night, appended, never replaced.

`validation_runs`, `drift_nights` and `retrain_decisions` keep one current row per night (a rerun replaces it); each
of their writers now also appends a row here in the same transaction, so a night rerun keeps what every run found:
the stage, the run, its type, the model version it used, the row it wrote (`details`, JSON) and the address of its
report or result. `ix_night_runs_model_dt` (model, dt) serves "the history of one night".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "night_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dt", sa.Date, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("run_type", sa.String(32)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stage IN ('validation', 'drift', 'decision')", name="ck_night_runs_stage"),
    )
    op.create_index("ix_night_runs_model_dt", "night_runs", ["model", "dt"])

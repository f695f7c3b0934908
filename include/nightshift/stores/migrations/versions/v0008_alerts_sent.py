"""Alerts: `alerts_sent`, one row per alert delivered per channel (see `nightshift.stores.warehouse.tables`).

A retried alert task reads it to send only what was not delivered yet. Downgrading drops it and what it held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts_sent",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("dt", sa.Date, primary_key=True),
        sa.Column("event", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alerts_sent")
